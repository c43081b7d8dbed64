"""Kite's ticker as the hub's upstream: one WebSocket to `wss://ws.kite.trade?api_key=..&access_token=..`
(asyncio `websockets`; kiteconnect's own KiteTicker runs a Twisted reactor that cannot restart inside a
server), `subscribe`/`mode` text frames, binary frames parsed per Kite's packet layouts, reconnects
with exponential backoff and `status` messages to the clients."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import struct
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from domain.market_hours import IST

log = logging.getLogger(__name__)


class TickSink(Protocol):
    """Where the feed delivers (the tick hub, `streams.ticks.TickHub`)."""

    def set_status(self, connected: bool) -> None: ...

    def publish(self, ticks: dict[str, dict[str, Any]]) -> None: ...


def _divisor(token: int) -> float:
    segment = token & 0xFF
    return 10_000_000.0 if segment == 3 else 10_000.0 if segment in (6, 11) else 100.0  # CDS; BCD/NCO


def parse_packet(p: bytes) -> dict[str, Any] | None:
    """One packet as a dict with kiteconnect's key names (prices in rupees)."""
    if len(p) < 8:
        return None
    token, ltp_raw = struct.unpack(">II", p[:8])
    d = _divisor(token)
    tick: dict[str, Any] = {"instrument_token": token, "last_price": ltp_raw / d, "tradable": (token & 0xFF) != 9}
    if len(p) == 8:
        tick["mode"] = "ltp"
        return tick
    if len(p) in (28, 32):  # index quote / full: high, low, open, close
        high, low, open_, close = (v / d for v in struct.unpack(">4I", p[8:24]))
        tick.update(mode="quote" if len(p) == 28 else "full", ohlc={"open": open_, "high": high, "low": low,
                                                                     "close": close})
        if len(p) == 32:
            tick["exchange_timestamp"] = struct.unpack(">I", p[28:32])[0]
    elif len(p) in (44, 184):
        f = struct.unpack(">11I", p[:44])
        tick.update(mode="quote" if len(p) == 44 else "full", last_traded_quantity=f[2],
                    average_traded_price=f[3] / d, volume_traded=f[4], total_buy_quantity=f[5],
                    total_sell_quantity=f[6], ohlc={"open": f[7] / d, "high": f[8] / d, "low": f[9] / d,
                                                    "close": f[10] / d})
        if len(p) == 184:
            ltt, oi, oi_high, oi_low, ets = struct.unpack(">5I", p[44:64])
            depth: dict[str, list[dict[str, Any]]] = {"buy": [], "sell": []}
            for i in range(10):
                qty, price, orders = struct.unpack(">IIH", p[64 + i * 12: 74 + i * 12])
                depth["buy" if i < 5 else "sell"].append({"quantity": qty, "price": price / d, "orders": orders})
            tick.update(last_trade_time=ltt, oi=oi, oi_day_high=oi_high, oi_day_low=oi_low, exchange_timestamp=ets,
                        depth=depth)
    else:
        return None
    close = tick["ohlc"]["close"]
    tick["change"] = (tick["last_price"] - close) * 100 / close if close else 0.0
    return tick


def parse_frame(frame: bytes) -> list[dict[str, Any]]:
    """A binary frame: int16 packet count, then (int16 length, packet) each. Heartbeats (1 byte) -> []."""
    if len(frame) < 2:
        return []
    (n,) = struct.unpack(">H", frame[:2])
    out, at = [], 2
    for _ in range(n):
        if at + 2 > len(frame):
            break
        (size,) = struct.unpack(">H", frame[at:at + 2])
        tick = parse_packet(frame[at + 2:at + 2 + size])
        if tick is not None:
            out.append(tick)
        at += 2 + size
    return out


def to_wire(tick: dict[str, Any]) -> dict[str, Any]:
    """A parsed Kite tick in the API's tick shape."""
    ohlc = tick.get("ohlc") or {}
    ts = tick.get("exchange_timestamp")
    stamp = datetime.fromtimestamp(ts, IST) if ts else datetime.now(IST)
    out: dict[str, Any] = {"ltp": round(tick["last_price"], 2), "timestamp": stamp.isoformat(timespec="milliseconds")}
    if ohlc:
        out.update(open=ohlc["open"], high=ohlc["high"], low=ohlc["low"], close=ohlc["close"],
                   volume=tick.get("volume_traded", 0), change=round(tick.get("change", 0.0), 2))
    if "depth" in tick:
        out.update(depth=tick["depth"], oi=tick.get("oi"), average_price=tick.get("average_traded_price"),
                   buy_quantity=tick.get("total_buy_quantity"), sell_quantity=tick.get("total_sell_quantity"),
                   last_quantity=tick.get("last_traded_quantity"))
    return out


class KiteTickerFeed:
    """The hub's upstream over Kite's ticker. `tokens_of` maps "NSE:SYMBOL" -> instrument token (from the
    instruments dump); subscriptions are sent in `full` mode (the hub shapes what each client sees)."""

    def __init__(self, url: str, api_key: str, access_token: str, tokens: dict[str, int],
                 max_backoff: float = 30.0, on_auth_failure: Callable[[], None] | None = None) -> None:
        self.url = f"{url}?api_key={api_key}&access_token={access_token}"
        self.tokens = tokens
        self.symbols_by_token = {t: s for s, t in tokens.items()}
        self.max_backoff = max_backoff
        self.on_auth_failure = on_auth_failure
        self.wanted: set[int] = set()
        self.hub: TickSink | None = None
        self.ws: Any = None
        self.task: asyncio.Task[None] | None = None
        self.connects = 0

    def start(self, hub: TickSink) -> None:
        self.hub = hub
        self.task = asyncio.get_running_loop().create_task(self._run())

    def _send(self, message: dict[str, Any]) -> None:
        ws = self.ws
        if ws is not None:
            asyncio.get_running_loop().create_task(self._safe_send(ws, json.dumps(message)))

    @staticmethod
    async def _safe_send(ws: Any, text: str) -> None:
        with contextlib.suppress(Exception):
            await ws.send(text)

    def subscribe(self, symbols: list[str]) -> None:
        toks = [self.tokens[s] for s in symbols if s in self.tokens]
        self.wanted.update(toks)
        if toks:
            self._send({"a": "subscribe", "v": toks})
            self._send({"a": "mode", "v": ["full", toks]})

    def unsubscribe(self, symbols: list[str]) -> None:
        toks = [self.tokens[s] for s in symbols if s in self.tokens]
        self.wanted.difference_update(toks)
        if toks:
            self._send({"a": "unsubscribe", "v": toks})

    async def _run(self) -> None:
        import websockets

        backoff = 0.5
        hub = self.hub
        assert hub is not None
        while True:
            try:
                async with websockets.connect(self.url, additional_headers={"X-Kite-Version": "3"},
                                              open_timeout=10, max_size=2**22) as ws:
                    self.ws = ws
                    self.connects += 1
                    hub.set_status(True)
                    backoff = 0.5
                    if self.wanted:
                        toks = sorted(self.wanted)
                        await ws.send(json.dumps({"a": "subscribe", "v": toks}))
                        await ws.send(json.dumps({"a": "mode", "v": ["full", toks]}))
                    async for message in ws:
                        if isinstance(message, bytes):
                            ticks = parse_frame(message)
                            if ticks:
                                hub.publish({self.symbols_by_token[t["instrument_token"]]: to_wire(t) for t in ticks
                                             if t["instrument_token"] in self.symbols_by_token})
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("Kite ticker connection lost (%s); reconnecting in %.1fs", type(exc).__name__, backoff)
            self.ws = None
            hub.set_status(False)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
