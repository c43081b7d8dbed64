"""Commands of the broker connection and the agent (Kite credentials, login, session, results, snapshots)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SaveKiteCredentials:
    account_id: int
    api_key: str
    api_secret: str


@dataclass(frozen=True)
class RecordKiteLogin:
    """Kite redirected back to /api/auth/kite/callback: keep the request token for the agent."""

    account_id: int
    request_token: str
    status: str


@dataclass(frozen=True)
class TakePendingToken:
    """The agent collects the pending request token (single use)."""

    account_id: int


@dataclass(frozen=True)
class ConnectBrokerSession:
    account_id: int
    access_token: str
    user_id: str | None = None
    expires_at: str | None = None  # ISO 8601; default 06:00 IST next day


@dataclass(frozen=True)
class DisconnectBrokerSession:
    account_id: int
    reason: str


@dataclass(frozen=True)
class ReportSignalResult:
    account_id: int
    portfolio_id: int
    signal_id: int
    status: str  # placed | executed | failed | expired (a live entry withdrawn from the broker)
    order_id: str | None = None
    gtt_id: str | None = None
    fill_price: float | None = None
    filled_quantity: int | None = None
    error: str | None = None
    idempotency_key: str | None = None
    signal_reason: str = ""  # the exit signal's reason (read model), to name the exit


@dataclass(frozen=True)
class SyncBrokerHoldings:
    account_id: int
    holdings: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class SyncBrokerPositions:
    account_id: int
    net: tuple[dict[str, Any], ...]
    day: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class SyncBrokerOrders:
    """The agent's view of the broker's GTTs (Kite's GTT objects) and the fills it could not resolve."""

    account_id: int
    gtts: tuple[dict[str, Any], ...]
    unresolved: tuple[dict[str, Any], ...]
