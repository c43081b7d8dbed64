"""The statuses of a model portfolio, its signals and its positions: one vocabulary for every layer.

`StrEnum`s, so a status is its text wherever it goes (events, read-model columns, JSON answers,
comparisons with stored rows) and the stored values are unchanged.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["LIVE_SIGNAL_STATUSES", "PortfolioStatus", "PositionStatus", "SignalStatus"]


class PortfolioStatus(StrEnum):
    NEW = "new"  # being deployed (never shown: a deployed portfolio is active)
    ACTIVE = "active"
    PAUSED = "paused"
    RETIRED = "retired"


class SignalStatus(StrEnum):
    PENDING_APPROVAL = "pending_approval"
    IN_CART = "in_cart"
    PLACED = "placed"
    EXECUTED = "executed"
    FAILED = "failed"
    REJECTED = "rejected"
    EXPIRED = "expired"


class PositionStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    RESET = "reset"  # open when its paper portfolio was reset


# A signal still in play: waiting for a person, in the cart, or placed at the broker.
LIVE_SIGNAL_STATUSES = (SignalStatus.PENDING_APPROVAL, SignalStatus.IN_CART, SignalStatus.PLACED)
