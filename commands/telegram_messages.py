"""Commands of the Telegram link: a one-time code, `/start CODE` from a chat, unlinking, and a pressed
Approve/Reject button (it acts through the same `DecideSignal` code as the API)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IssueTelegramLinkCode:
    account_id: int


@dataclass(frozen=True)
class LinkTelegramChat:
    """`/start CODE` arrived from `chat_id`: link that chat to the code's account."""

    code: str
    chat_id: int
    username: str = ""


@dataclass(frozen=True)
class UnlinkTelegram:
    account_id: int


@dataclass(frozen=True)
class PlaceCartFromTelegram:
    """The Place cart button pressed in `chat_id` (its signature already checked): place the portfolio's
    cart, once, as `POST /api/model/cart/place` does (each signal passes the risk rules again)."""

    account_id: int
    chat_id: int
    portfolio_id: int
    nonce: str
    issued_at: str


@dataclass(frozen=True)
class DecideFromTelegram:
    """A button pressed in `chat_id` (its signature already checked): approve or reject a signal, once."""

    account_id: int
    chat_id: int
    portfolio_id: int
    signal_id: int
    action: str  # approve | reject
    nonce: str
    issued_at: str


@dataclass(frozen=True)
class IssuedCode:
    code: str
    expires_at: str
