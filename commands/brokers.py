"""Broker ports: the `Broker` (Kite through the official client, or the paper broker), its errors, and
the encrypted store of broker secrets (Kite api_secret, request tokens, access tokens)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


class BrokerError(Exception):
    """The broker refused or failed a call; `message` is the broker's own text."""

    kind = "error"

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class BrokerAuthError(BrokerError):
    """The access token is invalid, expired or revoked (Kite TokenException): log in again."""

    kind = "token"


class BrokerRateLimited(BrokerError):
    """Too many requests (HTTP 429): back off."""

    kind = "rate_limit"


class BrokerInputError(BrokerError):
    """The broker rejected the request's parameters (Kite InputException / OrderException ...)."""

    kind = "input"


class BrokerUnavailable(BrokerError):
    """The broker could not be reached, or answered with a server/network error."""

    kind = "unavailable"


@dataclass(frozen=True)
class GttLeg:
    trigger: float
    transaction_type: str  # BUY | SELL
    quantity: int
    price: float


class Broker(Protocol):
    """A brokerage account, as both the server (read-only data proxy) and the agent (orders) use it.
    Answers keep Kite's shapes (see the reference: holdings, positions {net, day}, orders, margins, GTTs)."""

    def holdings(self) -> list[dict[str, Any]]: ...

    def positions(self) -> dict[str, list[dict[str, Any]]]: ...

    def orders(self) -> list[dict[str, Any]]: ...

    def margins(self) -> dict[str, Any]: ...

    def place_gtt(self, exchange: str, symbol: str, last_price: float, legs: Sequence[GttLeg],
                  product: str = "CNC") -> str:
        """A single-leg (one leg) or two-leg OCO GTT; returns the trigger id."""
        ...

    def gtts(self) -> list[dict[str, Any]]: ...

    def delete_gtt(self, trigger_id: str) -> None: ...

    def modify_gtt(self, trigger_id: str, exchange: str, symbol: str, last_price: float, legs: Sequence[GttLeg],
                   product: str = "CNC") -> None:
        """Change an active GTT's triggers and orders (Kite refuses a triggered one)."""
        ...

    def place_order(self, exchange: str, symbol: str, transaction_type: str, quantity: int, order_type: str,  # noqa: PLR0913
                    price: float | None, tag: str, product: str = "CNC", market_protection: float | None = None,
                    algo_id: str | None = None) -> str:
        """A regular order; returns the order id. A MARKET order needs `market_protection` (Kite refuses
        API market orders without it: 0-100 percent, or -1 for automatic)."""
        ...

    def order_history(self, order_id: str) -> list[dict[str, Any]]:
        """An order's states, oldest first (Kite `GET /orders/{id}`)."""
        ...

    def order_trades(self, order_id: str) -> list[dict[str, Any]]:
        """An order's trades (Kite `GET /orders/{id}/trades`)."""
        ...

    def ltp(self, instruments: Sequence[str]) -> dict[str, float]:
        """Last prices by "EXCHANGE:SYMBOL" (Kite `GET /quote/ltp`); unknown instruments are left out."""
        ...


class BrokerSecrets(Protocol):
    """Encrypted per-account secrets (plain table; never in events)."""

    def put(self, account_id: int, kind: str, value: str, now: datetime, expires_at: datetime | None = None) -> None:
        ...

    def get(self, account_id: int, kind: str, now: datetime) -> str | None:
        """The decrypted secret, None when absent or expired."""
        ...

    def take(self, account_id: int, kind: str, now: datetime) -> str | None:
        """Read and delete (single use)."""
        ...

    def delete(self, account_id: int, kind: str) -> None: ...

    def expires_at(self, account_id: int, kind: str) -> datetime | None: ...


class NoBrokerSecrets:
    """Stands in until the composition root connects the encrypted store."""

    def __getattr__(self, name: str) -> object:
        raise RuntimeError("no broker secret store is configured in this process")


def kite_checksum(api_key: str, request_token: str, api_secret: str) -> str:
    """Kite's login checksum: sha256(api_key + request_token + api_secret), hex."""
    import hashlib

    return hashlib.sha256((api_key + request_token + api_secret).encode()).hexdigest()


def as_dicts(rows: Any) -> list[dict[str, Any]]:
    """A JSON list of objects, or a ValueError naming what is wrong."""
    if not isinstance(rows, list) or not all(isinstance(r, Mapping) for r in rows):
        raise ValueError("expected a list of objects")
    return [dict(r) for r in rows]
