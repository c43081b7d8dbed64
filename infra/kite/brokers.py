"""Broker adapters beside `infra.kite.client.KiteBroker`: the live-data proxy the API serves
`/api/portfolio/*` from (per-user cache with single flight), and `PaperBroker`, the agent's local
simulated broker for `tradertape agent --paper`."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from commands.brokers import (
    Broker,
    BrokerAuthError,
    BrokerError,
    BrokerInputError,
    BrokerRateLimited,
    BrokerSecrets,
    GttLeg,
)
from commands.handlers.agent import ACCESS_TOKEN

log = logging.getLogger(__name__)

ENDPOINTS = ("holdings", "positions", "orders", "margins")


class BrokerProxyError(Exception):
    """An error the API answers with `status` and `detail`."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class BrokerDataProxy:
    """Live broker data per account through a `Broker` built for the account's access token.

    Answers are cached for `ttl` seconds per (account, endpoint); concurrent requests for the same key
    wait for the one upstream call in flight (single flight), so a burst makes one call. Errors are not
    cached. A token error (Kite TokenException) calls `on_token_error` (which marks the broker session
    disconnected) and never touches the user's own session."""

    def __init__(self, secrets: BrokerSecrets, api_key_of: Callable[[int], str | None],
                 make_broker: Callable[[str, str], Broker], on_token_error: Callable[[int, str], None],
                 ttl: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.secrets = secrets
        self.api_key_of = api_key_of
        self.make_broker = make_broker
        self.on_token_error = on_token_error
        self.ttl = ttl
        self.clock = clock
        self._cache: dict[tuple[int, str], tuple[float, str, Any]] = {}
        self._locks: dict[tuple[int, str], threading.Lock] = {}
        self._guard = threading.Lock()
        self.upstream_calls = 0

    def _lock(self, key: tuple[int, str]) -> threading.Lock:
        with self._guard:
            lock = self._locks.get(key)
            if lock is None:
                lock = self._locks[key] = threading.Lock()
            return lock

    def forget(self, account_id: int) -> None:
        with self._guard:
            for key in [k for k in self._cache if k[0] == account_id]:
                self._cache.pop(key, None)

    def fetch(self, account_id: int, endpoint: str) -> Any:
        if endpoint not in ENDPOINTS:
            raise ValueError(endpoint)
        token = self.secrets.get(account_id, ACCESS_TOKEN, datetime.now(UTC))
        api_key = self.api_key_of(account_id)
        if token is None or api_key is None:
            raise BrokerProxyError(400, "Broker session not connected: log in to Kite (GET /api/auth/kite/login-url) "
                                        "and keep your agent running so it can complete the login")
        key = (account_id, endpoint)
        with self._lock(key):
            hit = self._cache.get(key)
            if hit is not None and hit[1] == token and self.clock() - hit[0] < self.ttl:
                return hit[2]
            broker = self.make_broker(api_key, token)
            try:
                self.upstream_calls += 1
                data = getattr(broker, endpoint)()
            except BrokerAuthError as exc:
                self.forget(account_id)
                self.on_token_error(account_id, exc.message)
                raise BrokerProxyError(502, f"Kite rejected the access token: {exc.message}. The broker session "
                                            "is now disconnected; log in to Kite again") from None
            except BrokerRateLimited as exc:
                raise BrokerProxyError(429, f"Kite rate limit reached: {exc.message}; retry in a few seconds") \
                    from None
            except BrokerError as exc:
                raise BrokerProxyError(502, f"Kite error: {exc.message}") from None
            self._cache[key] = (self.clock(), token, data)
            return data


# ---------------------------------------------------------------------------------------------- the paper broker


class PaperBroker:
    """A simulated broker for a trial run of the agent (`--paper`): GTTs trigger on the next `gtts()` call
    (a two-leg GTT fires the leg nearer the last price), the triggered order completes at its limit price,
    regular orders complete at once at their price or the last price given with `set_last_price`."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._gtts: dict[str, dict[str, Any]] = {}
        self._orders: dict[str, dict[str, Any]] = {}
        self._holdings: dict[tuple[str, str], dict[str, Any]] = {}
        self.last_prices: dict[str, float] = {}

    def set_last_price(self, symbol: str, price: float) -> None:
        self.last_prices[symbol] = price

    def _complete(self, exchange: str, symbol: str, side: str, quantity: int, price: float, tag: str | None) -> str:
        order_id = f"paper-{next(self._ids)}"
        self._orders[order_id] = {
            "order_id": order_id, "status": "COMPLETE", "exchange": exchange, "tradingsymbol": symbol,
            "transaction_type": side, "quantity": quantity, "filled_quantity": quantity, "pending_quantity": 0,
            "average_price": price, "price": price, "order_type": "LIMIT", "product": "CNC", "tag": tag,
            "order_timestamp": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"), "status_message": None,
        }
        h = self._holdings.setdefault((exchange, symbol), {"exchange": exchange, "tradingsymbol": symbol,
                                                           "quantity": 0, "average_price": 0.0, "product": "CNC"})
        h["quantity"] += quantity if side == "BUY" else -quantity
        if side == "BUY":
            h["average_price"] = price
        return order_id

    def holdings(self) -> list[dict[str, Any]]:
        return [dict(h) for h in self._holdings.values() if h["quantity"]]

    def positions(self) -> dict[str, list[dict[str, Any]]]:
        return {"net": [], "day": []}

    def orders(self) -> list[dict[str, Any]]:
        return [dict(o) for o in self._orders.values()]

    def margins(self) -> dict[str, Any]:
        return {"equity": {"enabled": True, "net": 0.0, "available": {"cash": 0.0}, "utilised": {}}}

    def place_gtt(self, exchange: str, symbol: str, last_price: float, legs: Sequence[GttLeg],
                  product: str = "CNC") -> str:
        gid = str(next(self._ids))
        self._gtts[gid] = {
            "id": int(gid), "type": "single" if len(legs) == 1 else "two-leg", "status": "active",
            "condition": {"exchange": exchange, "tradingsymbol": symbol, "last_price": last_price,
                          "trigger_values": [leg.trigger for leg in legs]},
            "orders": [{"exchange": exchange, "tradingsymbol": symbol, "transaction_type": leg.transaction_type,
                        "quantity": leg.quantity, "price": leg.price, "order_type": "LIMIT", "product": product,
                        "result": None} for leg in legs],
        }
        return gid

    def gtts(self) -> list[dict[str, Any]]:
        for g in self._gtts.values():
            if g["status"] != "active":
                continue
            cond = g["condition"]
            triggers = cond["trigger_values"]
            leg = min(range(len(triggers)), key=lambda i: abs(triggers[i] - cond["last_price"]))
            o = g["orders"][leg]
            oid = self._complete(o["exchange"], o["tradingsymbol"], o["transaction_type"], o["quantity"], o["price"],
                                 None)
            o["result"] = {"order_result": {"status": "success", "order_id": oid, "rejection_reason": ""},
                           "triggered_at": triggers[leg]}
            g["status"] = "triggered"
        return [dict(g) for g in self._gtts.values()]

    def delete_gtt(self, trigger_id: str) -> None:
        """Delete an active GTT; a GTT that is unknown or no longer active is refused (as Kite refuses it)."""
        g = self._gtts.get(str(trigger_id))
        if g is None or g["status"] != "active":
            raise BrokerInputError(f"paper broker: GTT {trigger_id} is {'unknown' if g is None else g['status']}; "
                                   "only an active GTT can be deleted")
        g["status"] = "deleted"

    def modify_gtt(self, trigger_id: str, exchange: str, symbol: str, last_price: float, legs: Sequence[GttLeg],
                   product: str = "CNC") -> None:
        g = self._gtts.get(str(trigger_id))
        if g is None or g["status"] != "active":
            raise BrokerInputError(f"paper broker: GTT {trigger_id} is {'unknown' if g is None else g['status']}; "
                                   "only an active GTT can be modified")
        g["condition"].update(last_price=last_price, trigger_values=[leg.trigger for leg in legs])
        g["orders"] = [{"exchange": exchange, "tradingsymbol": symbol, "transaction_type": leg.transaction_type,
                        "quantity": leg.quantity, "price": leg.price, "order_type": "LIMIT", "product": product,
                        "result": None} for leg in legs]

    def place_order(self, exchange: str, symbol: str, transaction_type: str, quantity: int, order_type: str,  # noqa: PLR0913
                    price: float | None, tag: str, product: str = "CNC", market_protection: float | None = None,
                    algo_id: str | None = None) -> str:
        if order_type == "MARKET" and market_protection is None:
            raise BrokerInputError("paper broker: a MARKET order needs market_protection (as Kite requires)")
        fill = price if price else self.last_prices.get(symbol)
        if not fill:
            raise BrokerError(f"paper broker: no price for {symbol}")
        return self._complete(exchange, symbol, transaction_type, quantity, float(fill), tag)

    def order_history(self, order_id: str) -> list[dict[str, Any]]:
        order = self._orders.get(order_id)
        return [] if order is None else [dict(order)]

    def order_trades(self, order_id: str) -> list[dict[str, Any]]:
        return []

    def ltp(self, instruments: Sequence[str]) -> dict[str, float]:
        out = {}
        for key in instruments:
            price = self.last_prices.get(key.split(":", 1)[-1])
            if price:
                out[key] = price
        return out
