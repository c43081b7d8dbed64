"""Commands of inbound alert hooks (TradingView, Chartink): manage a hook, receive an alert."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CreateWebhook:
    account_id: int
    portfolio_id: int
    source: str  # tradingview | chartink
    name: str


@dataclass(frozen=True)
class RotateWebhookToken:
    account_id: int
    hook_id: int


@dataclass(frozen=True)
class DeleteWebhook:
    account_id: int
    hook_id: int


@dataclass(frozen=True)
class AlertItem:
    """One stock of an alert, normalised: an NSE symbol, buy or sell, and the price the alert gave."""

    symbol: str
    action: str  # buy | sell
    price: float | None = None


@dataclass(frozen=True)
class ReceiveAlert:
    """An alert posted to a hook's URL. The token is the credential (its hash is checked against the hook's);
    `key` de-duplicates it within `window_seconds`; `label` names the alert in the signals' reason."""

    hook_id: int
    token_hash: str
    key: str
    items: tuple[AlertItem, ...]
    label: str
    window_seconds: float


@dataclass(frozen=True)
class IssuedHook:
    """What creating or rotating a hook answers: the token, shown this once."""

    hook_id: int
    token: str
    token_prefix: str


@dataclass(frozen=True)
class AlertOutcome:
    hook_id: int
    portfolio_id: int
    account_id: int
    duplicate: bool
    signal_ids: tuple[int, ...]
    exit_signal_ids: tuple[int, ...]
    ignored: tuple[dict[str, object], ...]
