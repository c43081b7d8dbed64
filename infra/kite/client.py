"""Kite Connect through the official `kiteconnect` client: `KiteBroker` (the `Broker` port), the login
helpers (login URL, request-token exchange) and the error mapping onto `commands.brokers` errors.

`root` may point at a stub (tests): the client joins routes onto it with `urljoin`, so a stub must
answer at the host root.

`kiteconnect` is imported when a broker is made, not with this module: its package imports its ticker and
with it Twisted (a third of a second), which every process serving the paper default would pay for nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlencode

import requests

from commands.brokers import (
    BrokerAuthError,
    BrokerError,
    BrokerInputError,
    BrokerRateLimited,
    BrokerUnavailable,
    GttLeg,
)

log = logging.getLogger(__name__)
T = TypeVar("T")


def login_url(api_key: str, login_root: str = "https://kite.zerodha.com/connect/login") -> str:
    """Where the user signs in to Kite (`KiteConnect.login_url()` for the default root)."""
    return f"{login_root}?{urlencode({'api_key': api_key, 'v': 3})}"


def map_error(exc: Exception) -> BrokerError:
    """A kiteconnect / requests exception as one of the Broker errors, keeping Kite's message."""
    if isinstance(exc, BrokerError):
        return exc
    if isinstance(exc, requests.RequestException):
        return BrokerUnavailable(f"Kite could not be reached: {type(exc).__name__}")
    from kiteconnect import exceptions as kex  # (loaded already: the exception came from it)

    if isinstance(exc, kex.KiteException):
        code = getattr(exc, "code", None)
        message = str(exc) or type(exc).__name__
        if code == 429:
            return BrokerRateLimited(message, 429)
        if isinstance(exc, kex.TokenException):
            return BrokerAuthError(message, code)
        if isinstance(exc, kex.InputException | kex.OrderException | kex.PermissionException):
            return BrokerInputError(message, code)
        return BrokerUnavailable(message, code)
    return BrokerError(f"{type(exc).__name__}: {exc}")


def _call(fn: Callable[[], T]) -> T:
    from kiteconnect.exceptions import KiteException  # (loaded already by KiteBroker)

    try:
        return fn()
    except (KiteException, requests.RequestException) as exc:
        raise map_error(exc) from None


def _jsonable(value: Any) -> Any:
    """kiteconnect turns some fields into datetimes; the proxy passes Kite's shapes on as JSON."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return value


class KiteBroker:
    """The `Broker` port on `kiteconnect.KiteConnect` with one account's api_key and access token."""

    def __init__(self, api_key: str, access_token: str | None, root: str | None = None, timeout: float = 7.0) -> None:
        from kiteconnect import KiteConnect

        self.kite = KiteConnect(api_key, access_token=access_token, root=root, timeout=timeout)

    # --- read -------------------------------------------------------------------------------
    def holdings(self) -> list[dict[str, Any]]:
        return list(_jsonable(_call(self.kite.holdings)))

    def positions(self) -> dict[str, list[dict[str, Any]]]:
        return dict(_jsonable(_call(self.kite.positions)))

    def orders(self) -> list[dict[str, Any]]:
        return list(_jsonable(_call(self.kite.orders)))

    def margins(self) -> dict[str, Any]:
        return dict(_jsonable(_call(self.kite.margins)))

    def profile(self) -> dict[str, Any]:
        return dict(_jsonable(_call(self.kite.profile)))

    def instruments(self, exchange: str = "NSE") -> list[dict[str, Any]]:
        return list(_call(lambda: self.kite.instruments(exchange)))

    def gtts(self) -> list[dict[str, Any]]:
        return list(_jsonable(_call(self.kite.get_gtts)))

    # --- write (the agent only) ----------------------------------------------------------------
    def place_gtt(self, exchange: str, symbol: str, last_price: float, legs: Sequence[GttLeg],
                  product: str = "CNC") -> str:
        kind = self.kite.GTT_TYPE_SINGLE if len(legs) == 1 else self.kite.GTT_TYPE_OCO
        orders = [{"transaction_type": leg.transaction_type, "quantity": leg.quantity, "order_type": "LIMIT",
                   "product": product, "price": leg.price} for leg in legs]
        result = _call(lambda: self.kite.place_gtt(kind, symbol, exchange, [leg.trigger for leg in legs],
                                                   last_price, orders))
        return str(result["trigger_id"])

    def modify_gtt(self, trigger_id: str, exchange: str, symbol: str, last_price: float, legs: Sequence[GttLeg],
                   product: str = "CNC") -> None:
        kind = self.kite.GTT_TYPE_SINGLE if len(legs) == 1 else self.kite.GTT_TYPE_OCO
        orders = [{"transaction_type": leg.transaction_type, "quantity": leg.quantity, "order_type": "LIMIT",
                   "product": product, "price": leg.price} for leg in legs]
        _call(lambda: self.kite.modify_gtt(int(trigger_id), kind, symbol, exchange, [leg.trigger for leg in legs],
                                           last_price, orders))

    def delete_gtt(self, trigger_id: str) -> None:
        _call(lambda: self.kite.delete_gtt(trigger_id))

    def place_order(self, exchange: str, symbol: str, transaction_type: str, quantity: int, order_type: str,  # noqa: PLR0913
                    price: float | None, tag: str, product: str = "CNC", market_protection: float | None = None,
                    algo_id: str | None = None) -> str:
        """`market_protection` goes with MARKET orders only (Kite: 0-100 percent, -1 automatic); `algo_id`,
        when given, with every order."""
        protection: float | None = None
        if order_type == self.kite.ORDER_TYPE_MARKET and market_protection is not None:
            protection = int(market_protection) if market_protection == int(market_protection) else market_protection
        return str(_call(lambda: self.kite.place_order(
            self.kite.VARIETY_REGULAR, exchange, symbol, transaction_type, quantity, product, order_type,
            price=price, validity=self.kite.VALIDITY_DAY, tag=tag, market_protection=protection,
            algo_id=algo_id or None)))

    def order_history(self, order_id: str) -> list[dict[str, Any]]:
        return list(_jsonable(_call(lambda: self.kite.order_history(order_id))))

    def order_trades(self, order_id: str) -> list[dict[str, Any]]:
        return list(_jsonable(_call(lambda: self.kite.order_trades(order_id))))

    def ltp(self, instruments: Sequence[str]) -> dict[str, float]:
        data = _call(lambda: self.kite.ltp(list(instruments)))
        return {k: float(v["last_price"]) for k, v in dict(data).items() if v and v.get("last_price") is not None}

    # --- login -----------------------------------------------------------------------------------
    def exchange_request_token(self, request_token: str, *, api_secret: str | None = None,
                               checksum: str | None = None) -> dict[str, Any]:
        """POST /session/token: with the api_secret (the client computes the checksum) or with a checksum
        the server computed (the secret then never leaves the server). Returns Kite's session data."""
        if api_secret is not None:
            data = _call(lambda: self.kite.generate_session(request_token, api_secret))
        elif checksum is not None:
            params = {"api_key": self.kite.api_key, "request_token": request_token, "checksum": checksum}
            data = _call(lambda: self.kite._post("api.token", params=params))
            self.kite.set_access_token(data["access_token"])
        else:
            raise ValueError("give the api_secret or the checksum")
        return dict(_jsonable(data))


def gtt_summary(gtt: dict[str, Any]) -> str:
    cond = gtt.get("condition") or {}
    return json.dumps({"id": gtt.get("id"), "status": gtt.get("status"), "symbol": cond.get("tradingsymbol"),
                       "triggers": cond.get("trigger_values")})
