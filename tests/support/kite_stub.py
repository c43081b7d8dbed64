"""A Kite Connect stub on loopback that behaves as Kite does, for the official `kiteconnect` client: the REST
API (answers at the host root, as the client needs) in the shapes of Zerodha's published mock responses
(the public `zerodha/kiteconnect-mocks`: orders, order history, trades, GTTs with their legs' `result`,
LTP quotes, holdings with `isin`/`t1_quantity`, margins, the login exchange), and a ticker WebSocket
emitting real binary packets.

It refuses what Kite refuses, with Kite's error envelope (`InputException`, HTTP 400):
  * a MARKET order without `market_protection` (or with a value other than -1 or 0 < p <= 100);
  * a price, trigger price or GTT trigger off the instrument's tick size;
  * a GTT trigger closer to the last price than Kite allows (0.25%, at least 9 paise below Rs 50), and a
    two-leg (OCO) GTT whose triggers are not one below and one above the last price;
  * modifying or deleting a GTT that is not active (triggered, deleted, expired ...).
A delivery (CNC) SELL for more shares than are held and unsold is accepted and then REJECTED by the RMS,
as at Kite (so two sales of the same shares can never both fill).

The account: holdings, today's orders (`GET /orders` lists only these), orders of earlier days (answered
by `GET /orders/{id}` and `/orders/{id}/trades` while `keep_history`), trades, GTTs, last prices. Scripts
for the situations the agent must survive: `move` (the price crosses GTT triggers), `trigger` (one GTT,
optionally `days_ago`, a `rejected` leg or a partial fill), `fill_partially`, `end_day` (today's orders
become yesterday's: gone from the order book), `trigger_all`. Faults: `rate_limit_next` (429s),
`revoke()` (TokenException), `fail_places` / `fail_deletes` (503s), `delay` per request.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

INSTRUMENTS = {  # symbol -> (instrument_token, last price)
    "INFY": (408065, 1500.0), "RELIANCE": (738561, 2500.0), "SBIN": (779521, 800.0), "TCS": (2953217, 3500.0),
    "HDFCBANK": (341249, 1600.0), "ICICIBANK": (1270529, 1100.0),
}
# NSE's equity tick sizes by price band since 15 Apr 2025 (reviewed monthly on the close): an instrument's
# tick follows its last price here (Kite's instruments CSV column `tick_size`)
TICK_BANDS = ((250.0, 0.01), (1000.0, 0.05), (5000.0, 0.10), (10000.0, 0.50), (20000.0, 1.00))


def band_tick(price: float) -> float:
    return next((tick for upper, tick in TICK_BANDS if price <= upper), 5.00)
GTT_FAILED = ("rejected", "cancelled", "deleted", "expired", "disabled")


def token_of(symbol: str) -> int:
    known = INSTRUMENTS.get(symbol)
    if known is not None:
        return known[0]
    return int(hashlib.sha256(symbol.encode()).hexdigest()[:6], 16) << 8 | 1  # segment 1: NSE


def isin_of(symbol: str) -> str:
    return "INE" + hashlib.sha256(symbol.encode()).hexdigest()[:6].upper() + "01010"


def envelope(data: Any) -> bytes:
    return json.dumps({"status": "success", "data": data}).encode()


def error(message: str, error_type: str) -> bytes:
    return json.dumps({"status": "error", "message": message, "error_type": error_type, "data": None}).encode()


class Refused(Exception):
    """What Kite answers with HTTP 400 / InputException (or another type)."""

    def __init__(self, message: str, error_type: str = "InputException", status: int = 400) -> None:
        super().__init__(message)
        self.message, self.error_type, self.status = message, error_type, status


def on_tick(price: float, tick: float) -> bool:
    return Decimal(str(price)) % Decimal(str(tick)) == 0


def min_gap(last: float) -> float:
    """How far a GTT trigger must be from the last price (Kite: 0.25%, at least 9 paise below Rs 50)."""
    return 0.09 if last < 50 else last * 0.0025


class KiteState:
    def __init__(self, api_key: str = "stubkey", api_secret: str = "stub-secret-0123456789abcdef") -> None:
        self.api_key = api_key
        self.api_secret = api_secret
        self.lock = threading.RLock()
        self.request_tokens: set[str] = set()
        self.access_tokens: set[str] = set()
        self.gtts: dict[int, dict[str, Any]] = {}
        self.orders: dict[str, dict[str, Any]] = {}  # today's order book (GET /orders)
        self.past_orders: dict[str, dict[str, Any]] = {}  # earlier days: not in GET /orders
        self.histories: dict[str, list[dict[str, Any]]] = {}  # order id -> its states (GET /orders/{id})
        self.trades: dict[str, list[dict[str, Any]]] = {}  # order id -> its trades
        self.keep_history = True  # answer /orders/{id} and /orders/{id}/trades for earlier days' orders
        self.holdings: dict[str, dict[str, Any]] = {}  # settled and T+1 shares (GET /portfolio/holdings)
        self.positions: dict[str, dict[str, float]] = {}  # today's CNC buys and sells per symbol
        self.last_prices: dict[str, float] = {sym: last for sym, (_, last) in INSTRUMENTS.items()}
        self.ids = itertools.count(1001)
        self.order_ids = itertools.count(250_000_000_000_001)
        self.trade_ids = itertools.count(70_000_001)
        self.calls: dict[str, int] = {}
        self.requests: list[str] = []  # every request, "METHOD /path", in order
        self.rate_limit_next = 0
        self.auto_trigger = False
        self.delay = 0.0
        self.placements: list[dict[str, Any]] = []  # every accepted GTT / order placement, in order
        self.modifications: list[dict[str, Any]] = []  # every accepted GTT modification, in order
        self.refusals: list[str] = []  # every refusal's message, in order
        self.refuse_symbols: set[str] = set()  # placements for these answer InputException
        self.deletions: list[int] = []  # GTTs deleted (DELETE /gtt/triggers/{id}), in order
        self.fail_deletes = 0  # the next n GTT deletions answer 503 NetworkException (nothing deleted)
        self.fail_places = 0  # the next n placements (orders, GTTs) answer 503 NetworkException (nothing placed)
        self.holdings_exchange = "NSE"  # the exchange end_day's holdings are listed under (Kite may say BSE)

    # --- test controls ------------------------------------------------------------------------
    def issue_request_token(self) -> str:
        token = f"rt{next(self.ids)}"
        with self.lock:
            self.request_tokens.add(token)
        return token

    def grant(self, token: str = "stub-access-token") -> str:
        with self.lock:
            self.access_tokens.add(token)
        return token

    def revoke(self) -> None:
        with self.lock:
            self.access_tokens.clear()

    def add_holding(self, symbol: str, quantity: int, average_price: float, exchange: str = "NSE",
                    t1_quantity: int = 0) -> None:
        with self.lock:
            self.holdings[symbol] = _holding(self, symbol, quantity, average_price, exchange, t1_quantity)

    def ltp(self, symbol: str) -> float:
        return self.last_prices.get(symbol, 100.0)

    def move(self, symbol: str, price: float) -> int:
        """The last price moves to `price`: active GTTs on `symbol` whose trigger it crosses fire (a
        two-leg GTT fires its lower leg at or under it, its upper leg at or over it). Returns how many."""
        with self.lock:
            self.last_prices[symbol] = price
            fired = 0
            for g in list(self.gtts.values()):
                cond = g["condition"]
                if g["status"] != "active" or cond["tradingsymbol"] != symbol:
                    continue
                triggers = cond["trigger_values"]
                if len(triggers) == 2:
                    leg = 0 if price <= triggers[0] else 1 if price >= triggers[1] else None
                else:
                    below = triggers[0] < cond["last_price"]
                    leg = 0 if (price <= triggers[0] if below else price >= triggers[0]) else None
                if leg is not None:
                    fired += self.trigger(g["id"], leg)
            return fired

    def trigger(self, gid: int, leg: int | None = None, *, days_ago: int = 0, rejected: str | None = None,
                filled: int | None = None) -> int:
        """Fire GTT `gid` (default leg: the target of a two-leg GTT, the only leg of a single one):
        `days_ago` dates it (and its order) on an earlier day, off today's order book; `rejected` makes
        Kite refuse the leg's order (the GTT ends `rejected`, the leg's result says why); `filled` fills
        only that many shares (the rest is cancelled at the day's end)."""
        with self.lock:
            g = self.gtts[gid]
            cond = g["condition"]
            triggers = cond["trigger_values"]
            leg = (0 if len(triggers) == 1 else 1) if leg is None else leg
            o = g["orders"][leg]
            self.last_prices[cond["tradingsymbol"]] = float(triggers[leg])  # the price crossed the trigger
            when = datetime.now() - timedelta(days=days_ago)
            result: dict[str, Any] = {
                "account_id": "AB1234", "exchange": o["exchange"], "meta": "", "order_type": o["order_type"],
                "price": o["price"], "product": o["product"], "quantity": o["quantity"],
                "timestamp": _ts(when), "tradingsymbol": o["tradingsymbol"],
                "transaction_type": o["transaction_type"], "triggered_at": triggers[leg], "validity": "DAY"}
            if rejected is not None:
                result["order_result"] = {"order_id": "", "rejection_reason": rejected, "status": "failed"}
                g["status"] = "rejected"
            else:
                oid = self._order(o["tradingsymbol"], o["transaction_type"], o["quantity"], "LIMIT", o["price"],
                                  None, when=when, fill=filled, variety="regular", exchange=o["exchange"])
                result["order_result"] = {"order_id": oid, "rejection_reason": "", "status": "success"}
                g["status"] = "triggered"
                if days_ago:
                    self.past_orders[oid] = self.orders.pop(oid)
            o["result"] = result
            g["updated_at"] = _ts(when)
            return 1

    def trigger_all(self) -> int:
        with self.lock:
            return sum(self.trigger(g["id"]) for g in list(self.gtts.values()) if g["status"] == "active")

    def fill_partially(self, order_id: str, quantity: int) -> None:
        """An open order fills `quantity` more shares."""
        with self.lock:
            o = self.orders[order_id]
            self._fill(o, min(quantity, o["pending_quantity"]), float(o["price"] or o["average_price"]))

    def held(self, symbol: str) -> int:
        """Delivery shares the account holds now: settled + T+1 + today's net CNC buys (less sales)."""
        h = self.holdings.get(symbol)
        p = self.positions.get(symbol) or {}
        base = 0 if h is None else int(h["quantity"]) + int(h["t1_quantity"])
        return base + int(p.get("buy_quantity", 0)) - int(p.get("sell_quantity", 0))

    def end_day(self) -> None:
        """The trading day ends: open orders are cancelled (what filled stays filled) and the order book
        empties (Kite lists only the day's orders); T+1 shares settle, today's net buys become T+1
        holdings, today's sales leave the holdings, and the day's positions are gone."""
        with self.lock:
            for oid, o in list(self.orders.items()):
                if o["status"] in ("OPEN", "TRIGGER PENDING"):
                    o["cancelled_quantity"], o["pending_quantity"] = o["pending_quantity"], 0
                    self._state(o, "CANCELLED")
                self.past_orders[oid] = self.orders.pop(oid)
            for symbol in set(self.holdings) | set(self.positions):
                p = self.positions.get(symbol) or {}
                total = self.held(symbol)
                fresh = max(0, min(total, int(p.get("buy_quantity", 0)) - int(p.get("sell_quantity", 0))))
                h = self.holdings.get(symbol)
                avg = float(h["average_price"]) if h is not None else float(p.get("buy_price", 0))
                if total <= 0:
                    self.holdings.pop(symbol, None)
                else:
                    self.holdings[symbol] = _holding(self, symbol, total - fresh, avg, t1=fresh,
                                                     exchange=self.holdings_exchange if h is None else h["exchange"])
            self.positions.clear()

    def forget_history(self) -> None:
        """Kite no longer answers for earlier days' orders (history and trades)."""
        with self.lock:
            self.keep_history = False

    def count(self, route: str) -> int:
        return self.calls.get(route, 0)

    def any_order(self, order_id: str) -> dict[str, Any] | None:
        return self.orders.get(order_id) or self.past_orders.get(order_id)

    # --- behaviour ----------------------------------------------------------------------------
    def _state(self, o: dict[str, Any], status: str, message: str | None = None) -> None:
        o["status"] = status
        o["status_message"] = message
        o["status_message_raw"] = message
        o["exchange_update_timestamp"] = o["order_timestamp"]
        self.histories.setdefault(o["order_id"], []).append(dict(o))

    def _available(self, symbol: str) -> int:
        """Delivery shares that may still be sold: held (settled, T+1 and today's net buys) less what open
        SELL orders hold."""
        held = self.held(symbol)
        pending = sum(int(o["pending_quantity"]) for o in self.orders.values()
                      if o["tradingsymbol"] == symbol and o["transaction_type"] == "SELL"
                      and o["status"] in ("OPEN", "TRIGGER PENDING"))
        return held - pending

    def _order(self, symbol: str, side: str, qty: int, order_type: str, price: float | None, tag: str | None, *,
               when: datetime | None = None, fill: int | None = None, variety: str = "regular",
               exchange: str = "NSE", market_protection: float = 0, algo_id: str | None = None) -> str:
        """A new order: validated by the RMS (a CNC SELL beyond the shares available is REJECTED), then
        filled (`fill` shares; all when None) at its limit price, or a MARKET order at the last price."""
        oid = str(next(self.order_ids))
        stamp = _ts(when or datetime.now())
        o: dict[str, Any] = {
            "placed_by": "AB1234", "order_id": oid, "exchange_order_id": None, "parent_order_id": None,
            "status": "PUT ORDER REQ RECEIVED", "status_message": None, "status_message_raw": None,
            "order_timestamp": stamp, "exchange_update_timestamp": None, "exchange_timestamp": None,
            "variety": variety, "modified": False, "exchange": exchange, "tradingsymbol": symbol,
            "instrument_token": token_of(symbol), "order_type": order_type, "transaction_type": side,
            "validity": "DAY", "validity_ttl": 0, "product": "CNC", "quantity": qty, "disclosed_quantity": 0,
            "price": price or 0, "trigger_price": 0, "average_price": 0, "filled_quantity": 0,
            "pending_quantity": qty, "cancelled_quantity": 0, "market_protection": market_protection,
            "meta": {}, "tag": tag, "tags": [tag] if tag else [], "guid": f"stub{oid}"}
        if algo_id:
            o["algo_id"] = algo_id
        self.orders[oid] = o
        self._state(o, "VALIDATION PENDING")
        if side == "SELL" and qty > self._available(symbol):
            reason = (f"RMS:Rule: Check holdings for {symbol} across exchange across segment across product: "
                      "insufficient holdings")
            self._state(o, "REJECTED", reason)
            return oid
        o["exchange_order_id"] = str(int(oid) + 7)
        o["exchange_timestamp"] = stamp
        self._state(o, "OPEN PENDING")
        self._state(o, "OPEN")
        fill_price = float(price) if order_type == "LIMIT" and price else self.ltp(symbol)
        self._fill(o, qty if fill is None else fill, fill_price)
        return oid

    def _fill(self, o: dict[str, Any], qty: int, price: float) -> None:
        if qty <= 0:
            return
        done = int(o["filled_quantity"])
        o["average_price"] = round((float(o["average_price"]) * done + price * qty) / (done + qty), 2)
        o["filled_quantity"] = done + qty
        o["pending_quantity"] = int(o["quantity"]) - o["filled_quantity"]
        stamp = o["order_timestamp"]
        self.trades.setdefault(o["order_id"], []).append({
            "trade_id": str(next(self.trade_ids)), "order_id": o["order_id"], "exchange": o["exchange"],
            "tradingsymbol": o["tradingsymbol"], "instrument_token": o["instrument_token"], "product": o["product"],
            "average_price": price, "quantity": qty, "exchange_order_id": o["exchange_order_id"],
            "transaction_type": o["transaction_type"], "fill_timestamp": stamp, "order_timestamp": stamp[11:],
            "exchange_timestamp": stamp})
        self._state(o, "COMPLETE" if o["pending_quantity"] == 0 else "OPEN")
        symbol, side = o["tradingsymbol"], o["transaction_type"]
        p = self.positions.setdefault(symbol, {"buy_quantity": 0, "buy_value": 0.0, "sell_quantity": 0,
                                               "sell_value": 0.0})
        leg = "buy" if side == "BUY" else "sell"
        p[f"{leg}_quantity"] += qty
        p[f"{leg}_value"] = round(p[f"{leg}_value"] + price * qty, 2)
        p[f"{leg}_price"] = round(p[f"{leg}_value"] / p[f"{leg}_quantity"], 2)
        h = self.holdings.get(symbol)
        if side == "SELL" and h is not None:  # sold from the holdings (Kite shows it as used_quantity)
            h["used_quantity"] = min(int(h["quantity"]) + int(h["t1_quantity"]), int(h["used_quantity"]) + qty)

    def position_rows(self) -> list[dict[str, Any]]:
        """Today's CNC positions in Kite's shape (net and day are the same for delivery trades)."""
        rows = []
        for symbol, p in self.positions.items():
            last = self.ltp(symbol)
            bq, sq = int(p["buy_quantity"]), int(p["sell_quantity"])
            bv, sv = float(p["buy_value"]), float(p["sell_value"])
            bp, sp = float(p.get("buy_price", 0)), float(p.get("sell_price", 0))
            qty, value = bq - sq, round(sv - bv, 2)
            pnl = round(value + qty * last, 2)
            rows.append({
                "tradingsymbol": symbol, "exchange": "NSE", "instrument_token": token_of(symbol), "product": "CNC",
                "quantity": qty, "overnight_quantity": 0, "multiplier": 1,
                "average_price": bp if qty >= 0 else sp, "close_price": 0, "last_price": last, "value": value,
                "pnl": pnl, "m2m": pnl, "unrealised": pnl, "realised": 0, "buy_quantity": bq, "buy_price": bp,
                "buy_value": bv, "buy_m2m": bv, "sell_quantity": sq, "sell_price": sp, "sell_value": sv,
                "sell_m2m": sv, "day_buy_quantity": bq, "day_buy_price": bp, "day_buy_value": bv,
                "day_sell_quantity": sq, "day_sell_price": sp, "day_sell_value": sv})
        return rows

    def tick_of(self, symbol: str) -> float:
        return band_tick(self.ltp(symbol))

    def check_price(self, symbol: str, what: str, price: float) -> None:
        tick = self.tick_of(symbol)
        if not on_tick(price, tick):
            raise Refused(f"Tick size for this script is {tick:.2f}. Kindly enter {what} in the multiple of tick "
                          "size for this script")

    def check_gtt(self, kind: str, cond: dict[str, Any], orders: list[dict[str, Any]]) -> None:
        need = 1 if kind == "single" else 2 if kind == "two-leg" else 0
        triggers = cond.get("trigger_values") or []
        if not need or len(triggers) != need or len(orders) != need:
            raise Refused("Invalid trigger values.")
        symbol = str(cond.get("tradingsymbol") or "")
        if symbol in self.refuse_symbols:
            raise Refused("Invalid `tradingsymbol`.")
        if symbol not in self.last_prices:  # an instrument the stub has no price for: the caller's last price
            self.last_prices[symbol] = float(cond.get("last_price") or 100.0)
        last = self.ltp(symbol)
        for t in triggers:
            self.check_price(symbol, "trigger price", float(t))
            if abs(float(t) - last) < min_gap(last):
                raise Refused(f"Trigger price {t} is too close to the last price {last}: keep it at least 0.25% "
                              "away.")
        for o in orders:
            self.check_price(symbol, "price", float(o["price"]))
            if o.get("order_type") != "LIMIT":
                raise Refused("GTT orders must be LIMIT orders.")
        if need == 2 and not float(triggers[0]) < last < float(triggers[1]):
            raise Refused(f"For a two-leg (OCO) trigger the stoploss trigger must be below and the target above the "
                          f"last price ({last}).")


def _ts(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S")


def _now() -> str:
    return _ts(datetime.now())


def _holding(state: KiteState, symbol: str, qty: int, avg: float, exchange: str = "NSE",
             t1: int = 0) -> dict[str, Any]:
    token, last = token_of(symbol), state.ltp(symbol)
    return {"tradingsymbol": symbol, "exchange": exchange, "instrument_token": token, "isin": isin_of(symbol),
            "product": "CNC", "price": 0, "quantity": qty, "used_quantity": 0, "t1_quantity": t1,
            "realised_quantity": qty, "authorised_quantity": 0, "authorised_date": "2025-01-17 00:00:00",
            "authorisation": {}, "opening_quantity": qty + t1, "short_quantity": 0, "collateral_quantity": 0,
            "collateral_type": "", "discrepancy": False, "average_price": avg, "last_price": last,
            "close_price": last, "pnl": round((last - avg) * (qty + t1), 2), "day_change": 0.0,
            "day_change_percentage": 0.0,
            "mtf": {"quantity": 0, "used_quantity": 0, "average_price": 0, "value": 0, "initial_margin": 0}}


def _handler(state: KiteState) -> type[BaseHTTPRequestHandler]:  # noqa: C901 (a stub of every Kite route)
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _form(self) -> dict[str, str]:
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(n).decode() if n else ""
            return {k: v[0] for k, v in parse_qs(raw).items()}

        def _authed(self) -> bool:
            auth = self.headers.get("Authorization", "")
            ok = any(auth == f"token {state.api_key}:{t}" for t in state.access_tokens)
            if not ok:
                self._send(403, error("Incorrect `api_key` or `access_token`.", "TokenException"))
            return ok

        def _route(self, method: str) -> None:
            url = urlparse(self.path)
            path = url.path.rstrip("/") or "/"
            key = f"{method} {path}"
            with state.lock:
                state.calls[key] = state.calls.get(key, 0) + 1
                state.requests.append(key)
                limited = state.rate_limit_next > 0
                if limited:
                    state.rate_limit_next -= 1
            if state.delay:
                time.sleep(state.delay)
            form = self._form() if method in ("POST", "PUT") else {}
            if limited:
                return self._send(429, error("Too many requests", "NetworkException"))
            if path == "/session/token" and method == "POST":
                return self._session(form)
            if not self._authed():
                return None
            with state.lock:
                try:
                    return self._data(method, path, url.query, form)
                except Refused as exc:
                    state.refusals.append(exc.message)
                    return self._send(exc.status, error(exc.message, exc.error_type))

        def _session(self, form: dict[str, str]) -> None:
            want = hashlib.sha256((state.api_key + form.get("request_token", "") + state.api_secret).encode())
            if form.get("api_key") != state.api_key or form.get("checksum") != want.hexdigest():
                return self._send(403, error("Invalid `checksum`.", "TokenException"))
            with state.lock:
                if form["request_token"] not in state.request_tokens:
                    return self._send(403, error("Token is invalid or has expired.", "TokenException"))
                state.request_tokens.discard(form["request_token"])
                token = f"at-{next(state.ids)}"
                state.access_tokens.add(token)
            return self._send(200, envelope({
                "user_type": "individual", "email": "xxxyyy@gmail.com", "user_name": "Stub User",
                "user_shortname": "Stub", "broker": "ZERODHA", "exchanges": ["NSE", "BSE"], "products": ["CNC"],
                "order_types": ["MARKET", "LIMIT"], "avatar_url": None, "user_id": "AB1234",
                "api_key": state.api_key, "access_token": token, "public_token": "pt", "enctoken": "",
                "refresh_token": "", "silo": "", "login_time": _now(), "meta": {"demat_consent": "consent"}}))

        def _data(self, method: str, path: str, query: str, form: dict[str, str]) -> None:  # noqa: C901
            parts = path.strip("/").split("/")
            if method == "GET" and path == "/portfolio/holdings":
                return self._send(200, envelope(list(state.holdings.values())))
            if method == "GET" and path == "/portfolio/positions":
                rows = state.position_rows()
                return self._send(200, envelope({"net": rows, "day": [dict(r) for r in rows]}))
            if method == "GET" and path == "/orders":
                return self._send(200, envelope(list(state.orders.values())))
            if method == "GET" and path == "/trades":
                return self._send(200, envelope([t for oid in state.orders for t in state.trades.get(oid, [])]))
            if method == "GET" and parts[0] == "orders" and len(parts) in (2, 3):
                return self._order_info(parts[1], trades=len(parts) == 3 and parts[2] == "trades")
            if method == "GET" and path == "/quote/ltp":
                keys = parse_qs(query).get("i", [])
                data = {k: {"instrument_token": token_of(k.split(":", 1)[-1]),
                            "last_price": state.last_prices[k.split(":", 1)[-1]]}
                        for k in keys if k.split(":", 1)[-1] in state.last_prices}
                return self._send(200, envelope(data))
            if method == "GET" and path == "/user/margins":
                eq = {"enabled": True, "net": 99725.05,
                      "available": {"adhoc_margin": 0, "cash": 245431.6, "opening_balance": 245431.6,
                                    "live_balance": 99725.05, "collateral": 0, "intraday_payin": 0},
                      "utilised": {"debits": 145706.55, "exposure": 38981.25, "m2m_realised": 761.7,
                                   "m2m_unrealised": 0, "option_premium": 0, "payout": 0, "span": 101989,
                                   "holding_sales": 0, "turnover": 0, "liquid_collateral": 0, "stock_collateral": 0,
                                   "delivery": 0}}
                return self._send(200, envelope({"equity": eq, "commodity": {"enabled": False}}))
            if method == "GET" and path == "/user/profile":
                return self._send(200, envelope({
                    "user_id": "AB1234", "user_type": "individual", "email": "xxxyyy@gmail.com",
                    "user_name": "Stub User", "user_shortname": "Stub", "broker": "ZERODHA",
                    "exchanges": ["NSE", "BSE"], "products": ["CNC"], "order_types": ["MARKET", "LIMIT"],
                    "avatar_url": None, "meta": {"demat_consent": "consent"}}))
            if method == "GET" and path == "/instruments/NSE":
                lines = ["instrument_token,exchange_token,tradingsymbol,name,last_price,expiry,strike,tick_size,"
                         "lot_size,instrument_type,segment,exchange"]
                lines += [f"{tok},{tok >> 8},{sym},{sym},0.0,,0.0,{state.tick_of(sym)},1,EQ,NSE,NSE"
                          for sym, (tok, _) in INSTRUMENTS.items()]
                return self._send(200, ("\n".join(lines) + "\n").encode(), "text/csv")
            if path == "/gtt/triggers" and method == "GET":
                if state.auto_trigger:
                    state.trigger_all()
                return self._send(200, envelope(list(state.gtts.values())))
            if method == "POST" and (path == "/gtt/triggers" or parts[0] == "orders") and state.fail_places > 0:
                state.fail_places -= 1
                raise Refused("Gateway timed out", "NetworkException", 503)
            if path == "/gtt/triggers" and method == "POST":
                return self._place_gtt(form)
            if parts[:2] == ["gtt", "triggers"] and len(parts) == 3:
                g = state.gtts.get(int(parts[2])) if parts[2].isdigit() else None
                if g is None:
                    raise Refused("Invalid GTT id", "InputException")
                if method in ("DELETE", "PUT") and g["status"] != "active":
                    raise Refused(f"Trigger is {g['status']}; only an active trigger can be "
                                  f"{'deleted' if method == 'DELETE' else 'modified'}.")
                if method == "DELETE" and state.fail_deletes > 0:
                    state.fail_deletes -= 1
                    raise Refused("Gateway timed out", "NetworkException", 503)
                if method == "DELETE":
                    g["status"] = "deleted"
                    g["updated_at"] = _now()
                    state.deletions.append(g["id"])
                    return self._send(200, envelope({"trigger_id": g["id"]}))
                if method == "PUT":
                    return self._place_gtt(form, g)
                return self._send(200, envelope(g))
            if parts[:1] == ["orders"] and len(parts) == 2 and method == "POST":
                return self._place_order(parts[1], form)
            return self._send(404, error(f"Route not found: {method} {path}", "GeneralException"))

        def _order_info(self, oid: str, trades: bool) -> None:
            known = oid in state.orders or (state.keep_history and oid in state.past_orders)
            if not known:
                raise Refused("Couldn't find that `order_id`.", "GeneralException", 404)
            if trades:
                return self._send(200, envelope(state.trades.get(oid, [])))
            return self._send(200, envelope(state.histories.get(oid, [])))

        def _place_gtt(self, form: dict[str, str], existing: dict[str, Any] | None = None) -> None:
            try:
                cond = json.loads(form["condition"])
                orders = json.loads(form["orders"])
                kind = form["type"]
            except (KeyError, ValueError):
                raise Refused("Invalid `condition` or `orders`.") from None
            state.check_gtt(kind, cond, orders)
            symbol = cond["tradingsymbol"]
            cond = {"exchange": cond.get("exchange", "NSE"), "last_price": float(cond.get("last_price") or 0),
                    "tradingsymbol": symbol, "trigger_values": [float(t) for t in cond["trigger_values"]],
                    "instrument_token": token_of(symbol)}
            legs = [{"exchange": o.get("exchange", "NSE"), "tradingsymbol": o.get("tradingsymbol", symbol),
                     "product": o["product"], "order_type": o["order_type"], "transaction_type": o["transaction_type"],
                     "quantity": int(o["quantity"]), "price": float(o["price"]), "result": None} for o in orders]
            if existing is not None:
                existing.update(type=kind, condition=cond, orders=legs, updated_at=_now())
                state.modifications.append({"id": existing["id"], "symbol": cond["tradingsymbol"],
                                            "triggers": cond["trigger_values"], "quantity": legs[0]["quantity"],
                                            "prices": [o["price"] for o in legs]})
                return self._send(200, envelope({"trigger_id": existing["id"]}))
            gid = next(state.ids)
            created = datetime.now()
            state.gtts[gid] = {
                "id": gid, "user_id": "AB1234", "parent_trigger": None, "type": kind, "created_at": _ts(created),
                "updated_at": _ts(created), "expires_at": _ts(created + timedelta(days=365)), "status": "active",
                "condition": cond, "orders": legs, "meta": {}}
            state.placements.append({"kind": "gtt", "id": gid, "symbol": cond["tradingsymbol"],
                                     "triggers": cond["trigger_values"], "side": legs[0]["transaction_type"],
                                     "quantity": legs[0]["quantity"]})
            return self._send(200, envelope({"trigger_id": gid}))

        def _place_order(self, variety: str, form: dict[str, str]) -> None:
            sym = form.get("tradingsymbol", "")
            if sym in state.refuse_symbols:
                raise Refused("Invalid `tradingsymbol`.")
            order_type = form.get("order_type", "")
            if order_type not in ("MARKET", "LIMIT", "SL", "SL-M"):
                raise Refused("Invalid `order_type`.")
            raw_mp = form.get("market_protection")
            protection = 0.0
            if order_type == "MARKET":
                if raw_mp is None:
                    raise Refused("Market orders without market protection are not allowed via API. Please set "
                                  "market protection or use a Limit order.")
                try:
                    protection = float(raw_mp)
                except ValueError:
                    raise Refused("Invalid `market_protection`.") from None
                if not (protection == -1 or 0 < protection <= 100):
                    raise Refused("Invalid `market_protection`: use -1 (automatic) or a percentage above 0 up to "
                                  "100.")
            price = float(form.get("price") or 0)
            if order_type != "MARKET":
                state.check_price(sym, "price", price)
            qty = int(form.get("quantity") or 0)
            if qty < 1:
                raise Refused("Invalid `quantity`.")
            tag = form.get("tag")
            if tag is not None and (len(tag) > 20 or not tag.replace("_", "").isalnum()):
                raise Refused("Invalid `tag`: alphanumeric, at most 20 characters.")
            oid = state._order(sym, form.get("transaction_type", "BUY"), qty, order_type, price or None, tag,
                               variety=variety, exchange=form.get("exchange", "NSE"),
                               market_protection=int(protection) if protection == int(protection) else protection,
                               algo_id=form.get("algo_id"))
            state.placements.append({"kind": "order", "id": oid, "symbol": sym, "tag": tag, "order_type": order_type,
                                     "side": form.get("transaction_type"), "quantity": qty,
                                     "market_protection": raw_mp, "algo_id": form.get("algo_id")})
            return self._send(200, envelope({"order_id": oid}))

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

        def do_PUT(self) -> None:
            self._route("PUT")

        def do_DELETE(self) -> None:
            self._route("DELETE")

    return Handler


@contextmanager
def kite_stub(state: KiteState | None = None) -> Iterator[tuple[str, KiteState]]:
    """Yields (root URL, state) of a running stub on 127.0.0.1."""
    state = state or KiteState()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------------------------------------- the ticker stub


def quote_packet(token: int, ltp: float, close: float, volume: int = 1000) -> bytes:
    """A 44-byte quote packet (prices in paise, big-endian)."""
    p = round(ltp * 100)
    c = round(close * 100)
    return struct.pack(">11I", token, p, 10, p, volume, 500, 600, c, max(p, c) + 100, min(p, c) - 100, c)


def ltp_packet(token: int, ltp: float) -> bytes:
    return struct.pack(">II", token, round(ltp * 100))


def full_packet(token: int, ltp: float, close: float, volume: int = 1000) -> bytes:
    head = quote_packet(token, ltp, close, volume)
    ts = int(time.time())
    extra = struct.pack(">5I", ts, 0, 0, 0, ts)
    depth = b"".join(struct.pack(">IIHxx", 5 + i, round((ltp - 0.05 * (i + 1)) * 100), 1) for i in range(5))
    depth += b"".join(struct.pack(">IIHxx", 7 + i, round((ltp + 0.05 * (i + 1)) * 100), 2) for i in range(5))
    return head + extra + depth


def frame(packets: list[bytes]) -> bytes:
    return struct.pack(">H", len(packets)) + b"".join(struct.pack(">H", len(p)) + p for p in packets)


class TickerStub:
    """Kite's ticker protocol on ws://127.0.0.1:PORT: checks api_key/access_token in the query, takes
    subscribe/unsubscribe/mode text frames, sends binary frames of packets in each token's mode every
    `interval` seconds (prices walk up by 0.05), a 1-byte heartbeat when nothing is subscribed."""

    def __init__(self, api_key: str = "stubkey", tokens: set[str] | None = None, interval: float = 0.05) -> None:
        self.api_key = api_key
        self.tokens = tokens if tokens is not None else {"stub-access-token"}
        self.interval = interval
        self.connections = 0
        self.subscribed: dict[int, str] = {}  # token -> mode (latest connection)
        self.messages: list[Any] = []
        self.loop: asyncio.AbstractEventLoop | None = None
        self._server: Any = None
        self._conns: set[Any] = set()
        self.port = 0
        self._ready = threading.Event()

    def start(self) -> TickerStub:
        threading.Thread(target=self._run, daemon=True).start()
        assert self._ready.wait(10)
        return self

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def _run(self) -> None:
        import websockets

        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            self._server = await websockets.serve(self._serve, "127.0.0.1", 0)
            self.port = self._server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._server.wait_closed()

        asyncio.run(main())

    async def _serve(self, ws: Any) -> None:
        q = parse_qs(urlparse(ws.request.path).query)
        if q.get("api_key", [""])[0] != self.api_key or q.get("access_token", [""])[0] not in self.tokens:
            await ws.close(1008, "invalid api_key or access_token")
            return
        self.connections += 1
        self._conns.add(ws)
        subs: dict[int, str] = {}
        self.subscribed = subs
        prices: dict[int, float] = {}

        async def reader() -> None:
            async for raw in ws:
                msg = json.loads(raw)
                self.messages.append(msg)
                if msg.get("a") == "subscribe":
                    for t in msg["v"]:
                        subs[int(t)] = "quote"
                elif msg.get("a") == "unsubscribe":
                    for t in msg["v"]:
                        subs.pop(int(t), None)
                elif msg.get("a") == "mode":
                    mode, toks = msg["v"]
                    for t in toks:
                        subs[int(t)] = mode

        task = asyncio.create_task(reader())
        try:
            while not task.done():
                if subs:
                    packets = []
                    for token, mode in list(subs.items()):
                        base = next((p for t, p in INSTRUMENTS.values() if t == token), 100.0)
                        price = prices[token] = round(prices.get(token, base) + 0.05, 2)
                        packets.append(ltp_packet(token, price) if mode == "ltp" else
                                       full_packet(token, price, base) if mode == "full" else
                                       quote_packet(token, price, base))
                    await ws.send(frame(packets))
                else:
                    await ws.send(b"\x00")
                await asyncio.sleep(self.interval)
        except Exception:  # the client went away
            pass
        finally:
            task.cancel()
            self._conns.discard(ws)

    def drop_all(self) -> None:
        """Close every connection (an upstream drop)."""
        loop = self.loop
        assert loop is not None
        for ws in list(self._conns):
            asyncio.run_coroutine_threadsafe(ws.close(1011, "dropped by the test"), loop)

    def stop(self) -> None:
        if self.loop is not None and self._server is not None:
            self.loop.call_soon_threadsafe(self._server.close)
