"""A Kite Connect stub on loopback: the REST API (answers at the host root, as `kiteconnect` needs) with
Kite's JSON envelopes, errors and GTT endpoints; and a ticker WebSocket emitting real binary packets.

The REST stub keeps an account: holdings, today's orders, GTTs. GTTs trigger when the test says so
(`trigger_all`) or, with `auto_trigger`, on the next GTT listing: the leg fires, a COMPLETE order at the
leg's limit price appears in the order book and the holdings move. Faults: `rate_limit_next` (429s),
`revoke()` (TokenException), `delay` per request.
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
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

INSTRUMENTS = {  # symbol -> (instrument_token, last price)
    "INFY": (408065, 1500.0), "RELIANCE": (738561, 2500.0), "SBIN": (779521, 800.0), "TCS": (2953217, 3500.0),
    "HDFCBANK": (341249, 1600.0), "ICICIBANK": (1270529, 1100.0),
}


def token_of(symbol: str) -> int:
    known = INSTRUMENTS.get(symbol)
    if known is not None:
        return known[0]
    return int(hashlib.sha256(symbol.encode()).hexdigest()[:6], 16) << 8 | 1  # segment 1: NSE


def envelope(data: Any) -> bytes:
    return json.dumps({"status": "success", "data": data}).encode()


def error(message: str, error_type: str) -> bytes:
    return json.dumps({"status": "error", "message": message, "error_type": error_type, "data": None}).encode()


class KiteState:
    def __init__(self, api_key: str = "stubkey", api_secret: str = "stub-secret-0123456789abcdef") -> None:
        self.api_key = api_key
        self.api_secret = api_secret
        self.lock = threading.RLock()
        self.request_tokens: set[str] = set()
        self.access_tokens: set[str] = set()
        self.gtts: dict[int, dict[str, Any]] = {}
        self.orders: dict[str, dict[str, Any]] = {}
        self.holdings: dict[str, dict[str, Any]] = {}
        self.ids = itertools.count(1001)
        self.order_ids = itertools.count(250_000_000_000_001)
        self.calls: dict[str, int] = {}
        self.rate_limit_next = 0
        self.auto_trigger = False
        self.delay = 0.0
        self.placements: list[dict[str, Any]] = []  # every accepted GTT / order placement, in order
        self.refuse_symbols: set[str] = set()  # placements for these answer InputException
        self.deletions: list[int] = []  # GTTs deleted (DELETE /gtt/triggers/{id}), in order

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

    def add_holding(self, symbol: str, quantity: int, average_price: float) -> None:
        with self.lock:
            self.holdings[symbol] = _holding(symbol, quantity, average_price)

    def trigger_all(self) -> int:
        with self.lock:
            return sum(self._trigger(g) for g in list(self.gtts.values()) if g["status"] == "active")

    def count(self, route: str) -> int:
        return self.calls.get(route, 0)

    # --- behaviour ----------------------------------------------------------------------------
    def _trigger(self, g: dict[str, Any]) -> int:
        cond = g["condition"]
        triggers = cond["trigger_values"]
        leg = 0 if len(triggers) == 1 else max(range(len(triggers)), key=lambda i: triggers[i])  # OCO: the target
        o = g["orders"][leg]
        oid = self._complete(o["tradingsymbol"], o["transaction_type"], o["quantity"], o["price"], None)
        o["result"] = {"order_result": {"status": "success", "order_id": oid, "rejection_reason": ""},
                       "triggered_at": triggers[leg], "timestamp": _now()}
        g["status"] = "triggered"
        g["updated_at"] = _now()
        return 1

    def _complete(self, symbol: str, side: str, qty: int, price: float, tag: str | None) -> str:
        oid = str(next(self.order_ids))
        token = token_of(symbol)
        self.orders[oid] = {
            "placed_by": "AB1234", "order_id": oid, "exchange_order_id": str(int(oid) + 7), "parent_order_id": None,
            "status": "COMPLETE", "status_message": None, "status_message_raw": None, "order_timestamp": _now(),
            "exchange_update_timestamp": _now(), "exchange_timestamp": _now(), "variety": "regular",
            "modified": False, "exchange": "NSE", "tradingsymbol": symbol, "instrument_token": token,
            "order_type": "LIMIT", "transaction_type": side, "validity": "DAY", "validity_ttl": 0,
            "product": "CNC", "quantity": qty, "disclosed_quantity": 0, "price": price, "trigger_price": 0,
            "average_price": price, "filled_quantity": qty, "pending_quantity": 0, "cancelled_quantity": 0,
            "market_protection": 0, "meta": {}, "tag": tag, "tags": [tag] if tag else [], "guid": oid,
        }
        h = self.holdings.get(symbol)
        held = 0 if h is None else int(h["quantity"])
        new = held + (qty if side == "BUY" else -qty)
        if new > 0:
            self.holdings[symbol] = _holding(symbol, new, price if h is None else float(h["average_price"]))
        else:
            self.holdings.pop(symbol, None)
        return oid


def _now() -> str:
    return datetime.now().strftime("%Y-%m-%d %H:%M:%S")


def _holding(symbol: str, qty: int, avg: float) -> dict[str, Any]:
    token, last = token_of(symbol), INSTRUMENTS.get(symbol, (0, avg))[1]
    return {"tradingsymbol": symbol, "exchange": "NSE", "instrument_token": token, "isin": "INE000000000",
            "product": "CNC", "price": 0, "quantity": qty, "used_quantity": 0, "t1_quantity": 0,
            "realised_quantity": qty, "authorised_quantity": 0, "authorised_date": "2025-01-17 00:00:00",
            "authorisation": {}, "opening_quantity": qty, "short_quantity": 0, "collateral_quantity": 0,
            "collateral_type": "", "discrepancy": False, "average_price": avg, "last_price": last,
            "close_price": last, "pnl": round((last - avg) * qty, 2), "day_change": 0.0,
            "day_change_percentage": 0.0,
            "mtf": {"quantity": 0, "used_quantity": 0, "average_price": 0, "value": 0, "initial_margin": 0}}


def _handler(state: KiteState) -> type[BaseHTTPRequestHandler]:
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
                return self._data(method, path, url.query, form)

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

        def _data(self, method: str, path: str, query: str, form: dict[str, str]) -> None:
            parts = path.strip("/").split("/")
            if method == "GET" and path == "/portfolio/holdings":
                return self._send(200, envelope(list(state.holdings.values())))
            if method == "GET" and path == "/portfolio/positions":
                return self._send(200, envelope({"net": [], "day": []}))
            if method == "GET" and path == "/orders":
                return self._send(200, envelope(list(state.orders.values())))
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
                return self._send(200, envelope({"user_id": "AB1234", "user_name": "Stub User"}))
            if method == "GET" and path == "/instruments/NSE":
                lines = ["instrument_token,exchange_token,tradingsymbol,name,last_price,expiry,strike,tick_size,"
                         "lot_size,instrument_type,segment,exchange"]
                lines += [f"{tok},{tok >> 8},{sym},{sym},0.0,,0.0,0.05,1,EQ,NSE,NSE"
                          for sym, (tok, _) in INSTRUMENTS.items()]
                return self._send(200, ("\n".join(lines) + "\n").encode(), "text/csv")
            if path == "/gtt/triggers" and method == "GET":
                if state.auto_trigger:
                    for g in list(state.gtts.values()):
                        if g["status"] == "active":
                            state._trigger(g)
                return self._send(200, envelope(list(state.gtts.values())))
            if path == "/gtt/triggers" and method == "POST":
                return self._place_gtt(form)
            if parts[:2] == ["gtt", "triggers"] and len(parts) == 3:
                g = state.gtts.get(int(parts[2])) if parts[2].isdigit() else None
                if g is None:
                    return self._send(400, error("Invalid GTT id", "InputException"))
                if method == "DELETE":
                    if g["status"] != "active":  # a triggered (or deleted, expired) GTT cannot be deleted
                        return self._send(400, error(f"Trigger is {g['status']}; only an active trigger can be "
                                                     "deleted.", "InputException"))
                    g["status"] = "deleted"
                    g["updated_at"] = _now()
                    state.deletions.append(g["id"])
                    return self._send(200, envelope({"trigger_id": g["id"]}))
                return self._send(200, envelope(g))
            if parts[:1] == ["orders"] and len(parts) == 2 and method == "POST":
                return self._place_order(form)
            return self._send(404, error(f"Route not found: {method} {path}", "GeneralException"))

        def _place_gtt(self, form: dict[str, str]) -> None:
            try:
                cond = json.loads(form["condition"])
                orders = json.loads(form["orders"])
                kind = form["type"]
            except (KeyError, ValueError):
                return self._send(400, error("Invalid `condition` or `orders`.", "InputException"))
            need = 1 if kind == "single" else 2
            if len(cond.get("trigger_values") or []) != need or len(orders) != need:
                return self._send(400, error("Invalid trigger values.", "InputException"))
            if cond.get("tradingsymbol") in state.refuse_symbols:
                return self._send(400, error("Invalid `tradingsymbol`.", "InputException"))
            gid = next(state.ids)
            state.gtts[gid] = {
                "id": gid, "user_id": "AB1234", "parent_trigger": None, "type": kind, "created_at": _now(),
                "updated_at": _now(), "expires_at": _now(), "status": "active",
                "condition": {**cond, "instrument_token": token_of(cond["tradingsymbol"])},
                "orders": [{**o, "result": None} for o in orders], "meta": {}}
            state.placements.append({"kind": "gtt", "id": gid, "symbol": cond["tradingsymbol"],
                                     "triggers": cond["trigger_values"],
                                     "side": orders[0]["transaction_type"], "quantity": orders[0]["quantity"]})
            return self._send(200, envelope({"trigger_id": gid}))

        def _place_order(self, form: dict[str, str]) -> None:
            sym = form.get("tradingsymbol", "")
            if sym in state.refuse_symbols:
                return self._send(400, error("Invalid `tradingsymbol`.", "InputException"))
            price = float(form.get("price") or 0) or INSTRUMENTS.get(sym, (0, 100.0))[1]
            oid = state._complete(sym, form.get("transaction_type", "BUY"), int(form.get("quantity") or 0), price,
                                  form.get("tag"))
            state.placements.append({"kind": "order", "id": oid, "symbol": sym, "tag": form.get("tag"),
                                     "side": form.get("transaction_type"), "quantity": int(form.get("quantity") or 0)})
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
