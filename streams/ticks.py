"""The tick hub behind `/api/ws/ticks`: one upstream feed shared by every client, reference-counted
subscriptions, and per-client mailboxes where the latest tick of each symbol wins (a slow client
never stalls the others, and its memory is bounded by the symbols it subscribed).

Upstreams: `SimulatedFeed` (a random walk around the bar store's last close, moving only in NSE
trading hours unless `always_open`) or `KiteTickerFeed` (infra.kite.ticker, Kite's binary ticker)
while some account has a broker session. Both call `hub.publish(ticks)` and `hub.set_status(bool)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from typing import Any, Protocol

from domain.market_hours import IST, SESSION_CLOSE, SESSION_OPEN

log = logging.getLogger(__name__)
MODES = ("ltp", "quote", "full")
QUOTE_KEYS = ("ltp", "open", "high", "low", "close", "volume", "change", "timestamp")


class Companion(Protocol):
    """Something that runs beside the upstream (e.g. paper fills on ticks): started after it, stopped before."""

    def start(self, hub: TickHub) -> None: ...

    async def stop(self) -> None: ...


class PeriodicCompanion:
    """A companion that runs one `step` every `interval` seconds until the hub stops it. A failing step is
    logged with `failure` and tried again at the next interval (the database may be briefly away).
    `step_first` runs a step before the first sleep; `prepare` runs once when the hub starts."""

    interval: float = 1.0
    step_first = False
    failure = "periodic companion step failed"
    _task: asyncio.Task[None] | None = None

    def prepare(self, hub: TickHub) -> None:
        return None

    async def step(self, hub: TickHub) -> None:
        raise NotImplementedError

    def start(self, hub: TickHub) -> None:
        self.prepare(hub)
        self._task = asyncio.get_running_loop().create_task(self._run(hub))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self, hub: TickHub) -> None:
        if not self.step_first:
            await asyncio.sleep(self.interval)
        while True:
            try:
                await self.step(hub)
            except Exception:
                log.warning(self.failure, exc_info=True)
            await asyncio.sleep(self.interval)


class Upstream(Protocol):
    def start(self, hub: TickHub) -> None: ...

    def subscribe(self, symbols: list[str]) -> None: ...

    def unsubscribe(self, symbols: list[str]) -> None: ...

    async def stop(self) -> None: ...


def shape(tick: dict[str, Any], mode: str) -> dict[str, Any]:
    """What a client in `mode` receives of a full tick."""
    if mode == "ltp":
        return {"ltp": tick["ltp"], "timestamp": tick.get("timestamp")}
    if mode == "quote":
        return {k: tick[k] for k in QUOTE_KEYS if k in tick}
    return tick


class Encoded:
    """A tick shaped for one mode, with its JSON fragment `"SYMBOL":{...}` encoded once for every client."""

    __slots__ = ("fragment", "tick")

    def __init__(self, symbol: str, tick: dict[str, Any]) -> None:
        self.tick = tick
        self.fragment = json.dumps(symbol) + ":" + json.dumps(tick, separators=(",", ":"))

    def __getitem__(self, key: str) -> Any:
        return self.tick[key]


def encode_variants(symbol: str, tick: dict[str, Any]) -> dict[str, Encoded]:
    return {m: Encoded(symbol, shape(tick, m)) for m in MODES}


class ClientClosed(Exception):
    """The server closes this client's connection (its credential was revoked): `code`, `reason`."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class Client:
    """One WebSocket connection's mailbox: latest tick per symbol, plus control messages in order.
    `credential` names what authenticated it (("agent_key", account_id) or ("session", token hash)), so a
    revocation can close it."""

    def __init__(self, max_control: int = 256, credential: tuple[str, Any] | None = None) -> None:
        self.credential = credential
        self.closing: ClientClosed | None = None
        self.modes: dict[str, str] = {}
        self.pending: dict[str, Encoded] = {}
        self.control: list[dict[str, Any]] = []
        self.max_control = max_control
        self.wake = asyncio.Event()
        self.dropped_control = 0

    def offer(self, symbol: str, variants: dict[str, Encoded]) -> None:
        mode = self.modes.get(symbol)
        if mode is not None:
            self.pending[symbol] = variants[mode]
            self.wake.set()

    def say(self, message: dict[str, Any]) -> None:
        if len(self.control) >= self.max_control:  # a client that reads nothing loses old control messages
            self.control.pop(0)
            self.dropped_control += 1
        self.control.append(message)
        self.wake.set()

    async def next_messages(self) -> list[dict[str, Any]]:
        """Wait for something to send: control messages first, then one `ticks` message."""
        while not self.control and not self.pending:
            self.wake.clear()
            await self.wake.wait()
        out, self.control = self.control, []
        if self.pending:
            data, self.pending = self.pending, {}
            out.append({"type": "ticks", "data": {k: v.tick for k, v in data.items()}})
        return out

    def close(self, code: int, reason: str) -> None:
        self.closing = ClientClosed(code, reason)
        self.wake.set()

    async def next_frames(self) -> list[str]:
        """`next_messages`, as JSON text frames; tick fragments are joined, not re-encoded per client.
        Raises ClientClosed once the server closes the client."""
        while not self.control and not self.pending and self.closing is None:
            self.wake.clear()
            await self.wake.wait()
        if self.closing is not None:
            raise self.closing
        out = [json.dumps(m, separators=(",", ":")) for m in self.control]
        self.control = []
        if self.pending:
            data, self.pending = self.pending, {}
            out.append('{"type":"ticks","data":{' + ",".join(v.fragment for v in data.values()) + "}}")
        return out


class TickHub:
    def __init__(self, known: Callable[[str], bool], make_upstream: Callable[[], Awaitable[Upstream]]) -> None:
        self.known = known
        self.make_upstream = make_upstream
        self.clients: set[Client] = set()
        self.refs: dict[str, int] = {}
        self.subscribers: dict[str, set[Client]] = {}
        self.connected = False
        self.upstream: Upstream | None = None
        self.last: dict[str, dict[str, Any]] = {}
        self.published = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self.companions: list[Companion] = []
        # extra fields of every `status` message (the API adds market_open and next_open)
        self.status_info: Callable[[], dict[str, Any]] = dict

    # --- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        upstream = await self.make_upstream()
        self.upstream = upstream
        upstream.start(self)
        if self.refs:
            upstream.subscribe(list(self.refs))
        for companion in self.companions:
            companion.start(self)

    async def stop(self) -> None:
        for companion in self.companions:
            await companion.stop()
        if self.upstream is not None:
            await self.upstream.stop()
            self.upstream = None

    async def switch(self) -> None:
        """Rebuild the upstream (a broker session appeared or ended)."""
        await self.stop()
        await self.start()

    def broker_changed(self) -> None:
        """Thread-safe nudge from the API: re-evaluate which upstream to use."""
        loop = self.loop
        if loop is not None:
            asyncio.run_coroutine_threadsafe(self.switch(), loop)

    # --- clients --------------------------------------------------------------------------------
    def attach(self, credential: tuple[str, Any] | None = None) -> Client:
        client = Client(credential=credential)
        self.clients.add(client)
        client.say(self.status_message())
        return client

    def status_message(self) -> dict[str, Any]:
        return {"type": "status", "connected": self.connected, **self.status_info()}

    def close_clients(self, credential: tuple[str, Any], code: int, reason: str) -> int:
        """Close every client authenticated by `credential` (call on the hub's loop)."""
        hit = [c for c in self.clients if c.credential == credential]
        for client in hit:
            client.close(code, reason)
        return len(hit)

    def revoke(self, credential: tuple[str, Any], code: int, reason: str) -> None:
        """Thread-safe `close_clients` (the API's handlers run in worker threads)."""
        loop = self.loop
        if loop is not None:
            loop.call_soon_threadsafe(self.close_clients, credential, code, reason)

    def detach(self, client: Client) -> None:
        self.clients.discard(client)
        self.unsubscribe(client, list(client.modes))

    def subscribe(self, client: Client, symbols: Iterable[str], mode: str) -> tuple[list[str], list[str]]:
        """(subscribed, unknown)."""
        ok, unknown, new = [], [], []
        for sym in symbols:
            if not self.known(sym):
                unknown.append(sym)
                continue
            if sym not in client.modes:
                self.refs[sym] = self.refs.get(sym, 0) + 1
                self.subscribers.setdefault(sym, set()).add(client)
                if self.refs[sym] == 1:
                    new.append(sym)
            client.modes[sym] = mode
            ok.append(sym)
            last = self.last.get(sym)
            if last is not None:  # a snapshot at once, so a quiet market still shows a price
                client.offer(sym, encode_variants(sym, last))
        if new and self.upstream is not None:
            self.upstream.subscribe(new)
        return ok, unknown

    def unsubscribe(self, client: Client, symbols: Iterable[str]) -> list[str]:
        gone, done = [], []
        for sym in symbols:
            if client.modes.pop(sym, None) is None:
                continue
            client.pending.pop(sym, None)
            done.append(sym)
            subs = self.subscribers.get(sym)
            if subs is not None:
                subs.discard(client)
            self.refs[sym] -= 1
            if self.refs[sym] == 0:
                del self.refs[sym]
                self.subscribers.pop(sym, None)
                gone.append(sym)
        if gone and self.upstream is not None:
            self.upstream.unsubscribe(gone)
        return done

    # --- from the upstream ------------------------------------------------------------------------
    def publish(self, ticks: dict[str, dict[str, Any]]) -> None:
        for sym, tick in ticks.items():
            self.last[sym] = tick
            subs = self.subscribers.get(sym)
            if not subs:
                continue
            variants = encode_variants(sym, tick)
            for client in subs:
                client.offer(sym, variants)
        self.published += len(ticks)

    def set_status(self, connected: bool) -> None:
        if connected == self.connected:
            return
        self.connected = connected
        message = self.status_message()
        for client in self.clients:
            client.say(message)


class Heartbeat(PeriodicCompanion):
    """A `status` message to every client each `interval` seconds: outside market hours no tick moves,
    and a client's read loop must still hear from the server (and learn when the market opens)."""

    failure = "tick status unavailable"  # a status that cannot be worked out this time: try at the next beat

    def __init__(self, interval: float = 15.0) -> None:
        self.interval = interval

    async def step(self, hub: TickHub) -> None:
        if not hub.clients:
            return
        message = hub.status_message()
        for client in list(hub.clients):
            client.say(message)


# ---------------------------------------------------------------------------------------------- simulated feed


def nse_open(now: datetime, is_trading_day: Callable[[datetime], bool]) -> bool:
    local = now.astimezone(IST)
    return is_trading_day(local) and SESSION_OPEN <= local.time() <= SESSION_CLOSE


def next_nse_open(now: datetime, is_trading_day: Callable[[datetime], bool]) -> datetime | None:
    """The next session's 09:15 IST strictly after `now` (None if no trading day in the next 30 days)."""
    local = now.astimezone(IST)
    for ahead in range(31):
        start = datetime.combine(local.date() + timedelta(days=ahead), SESSION_OPEN, IST)
        if start > local and is_trading_day(start):
            return start
    return None


class SimulatedFeed:
    """A random walk (sigma `vol` per tick) around each symbol's last stored close; one batch of ticks for
    every subscribed symbol each `interval` seconds. Outside NSE hours (unless `always_open`) prices hold
    still and only the snapshot on subscription is sent."""

    def __init__(self, last_close: Callable[[list[str]], dict[str, float]], interval: float = 0.5,
                 always_open: bool = False, is_trading_day: Callable[[datetime], bool] | None = None,
                 vol: float = 0.0008, seed: int | None = None) -> None:
        self.last_close = last_close
        self.interval = interval
        self.always_open = always_open
        self.is_trading_day = is_trading_day or (lambda d: d.weekday() < 5)
        self.vol = vol
        self.rng = random.Random(seed)
        self.state: dict[str, dict[str, Any]] = {}
        self.symbols: set[str] = set()
        self.hub: TickHub | None = None
        self.task: asyncio.Task[None] | None = None

    def start(self, hub: TickHub) -> None:
        self.hub = hub
        hub.set_status(True)
        self.task = asyncio.get_running_loop().create_task(self._run())

    def _seed(self, symbols: list[str]) -> None:
        fresh = [s for s in symbols if s not in self.state]
        if not fresh:
            return
        closes = self.last_close([s.split(":", 1)[1] for s in fresh])
        for sym in fresh:
            close = float(closes.get(sym.split(":", 1)[1]) or 100.0)
            self.state[sym] = {"ltp": close, "open": close, "high": close, "low": close, "close": close,
                               "volume": 0}

    def subscribe(self, symbols: list[str]) -> None:
        self._seed(symbols)
        self.symbols.update(symbols)
        if self.hub is not None:
            now = datetime.now(IST).isoformat(timespec="milliseconds")
            self.hub.publish({s: self._tick(s, now) for s in symbols})

    def unsubscribe(self, symbols: list[str]) -> None:
        self.symbols.difference_update(symbols)

    def _tick(self, sym: str, ts: str) -> dict[str, Any]:
        st = self.state[sym]
        change = round((st["ltp"] - st["close"]) / st["close"] * 100, 2) if st["close"] else 0.0
        return {"ltp": round(st["ltp"], 2), "open": round(st["open"], 2), "high": round(st["high"], 2),
                "low": round(st["low"], 2), "close": round(st["close"], 2), "volume": st["volume"],
                "change": change, "timestamp": ts}

    def step(self) -> dict[str, dict[str, Any]]:
        now = datetime.now(IST)
        if not self.always_open and not nse_open(now, self.is_trading_day):
            return {}
        ts = now.isoformat(timespec="milliseconds")
        out = {}
        gauss, rng = self.rng.gauss, self.rng
        for sym in self.symbols:
            st = self.state[sym]
            price = max(0.05, round(st["ltp"] * (1 + gauss(0, self.vol)) / 0.05) * 0.05)
            st["ltp"] = price
            st["high"] = max(st["high"], price)
            st["low"] = min(st["low"], price)
            st["volume"] += rng.randint(1, 500)
            out[sym] = self._tick(sym, ts)
        return out

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            next_at += self.interval
            ticks = self.step()
            if ticks and self.hub is not None:
                self.hub.publish(ticks)
            await asyncio.sleep(max(0.0, next_at - loop.time()))

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
