"""Paper fills on the live tick feed: while the tick hub runs (simulated feed or Kite's ticker), the paper
portfolios' working GTTs -- placed limit entries, open positions' stop/target -- are watched tick by tick,
and a tick that crosses one dispatches `ApplyTicks` for its portfolio. The Portfolio aggregate decides the
fill with the daily model's tick rules (`domain.fills`); this module only knows which levels to watch.

- Levels come from the aggregates themselves (`Portfolio.tick_levels`), reloaded when a portfolio's read
  model shows a change (a new activity row or a processed day) and every `refresh_seconds`.
- Only ticks in NSE trading hours count (unless the feed is `always_open`, a demo setting), never in
  the closing auction (from 3 Aug 2026, 15:15 IST on: `domain.fills.in_closing_auction`), and only for
  the trading day right after the portfolio's last processed day.
- The watcher holds hub subscriptions like any client (reference counted), so the upstream streams the
  watched symbols even when no browser is connected, and sees every tick (not a latest-wins mailbox).
- Commands run one at a time off the event loop; a version clash with the market clock is retried by
  the bus, and a repeated crossing is a no-op in the aggregate (the order is executed already).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from commands import messages as m
from commands.handlers.ticks import next_session
from commands.ports import CommandMeta
from domain.fills import in_closing_auction
from domain.market_hours import IST
from domain.portfolio.aggregate import Portfolio
from infra.bootstrap import Platform
from projections.portfolios.queries import active_portfolio_rows, activity_marks
from streams.ticks import Client, Encoded, TickHub

log = logging.getLogger(__name__)
PAPER_BROKER = CommandMeta(actor="paper_broker")

Levels = dict[str, tuple[float | None, float | None]]


class TickListener(Client):
    """A hub client that is handed every tick of its symbols at once (no mailbox). The last price the hub
    replays to a new subscription is ignored: it may be hours old, and only a live tick may fill."""

    def __init__(self, on_tick: Callable[[str, dict[str, Any]], None]) -> None:
        super().__init__()
        self.on_tick = on_tick
        self.subscribing = False

    def offer(self, symbol: str, variants: dict[str, Encoded]) -> None:
        if symbol in self.modes and not self.subscribing:
            self.on_tick(symbol, variants["full"].tick)

    def subscribe(self, hub: TickHub, symbols: list[str]) -> list[str]:
        """Subscribe without the replayed last prices; returns the symbols the feed does not know."""
        self.subscribing = True
        try:
            return hub.subscribe(self, symbols, "ltp")[1]
        finally:
            self.subscribing = False


def crosses(price: float, below: float | None, above: float | None) -> bool:
    return (below is not None and price <= below) or (above is not None and price >= above)


class PaperTickFills:
    def __init__(self, platform: Platform, is_open: Callable[[datetime], bool], refresh_seconds: float = 5.0,
                 now: Callable[[], datetime] = lambda: datetime.now(IST), session_rules: bool = True) -> None:
        self.platform = platform
        self.is_open = is_open
        self.session_rules = session_rules  # False: a demo feed that ignores NSE's hours (tick_always_open)
        self.due_at: dict[int, str] = {}  # portfolio -> when its first due tick traded
        self.refresh_seconds = refresh_seconds
        self.now = now
        self.hub: TickHub | None = None
        self.listener = TickListener(self._on_tick)
        self.cache: dict[int, tuple[tuple[Any, ...], Levels]] = {}  # portfolio -> (read-model key, levels)
        self.watch: dict[str, list[tuple[int, float | None, float | None]]] = {}
        self.due: dict[int, dict[str, float]] = {}  # portfolio -> first crossing price per symbol
        self.wake = asyncio.Event()
        self.refreshing = asyncio.Lock()  # one refresh at a time: it owns `cache` while its thread runs
        self.tasks: list[asyncio.Task[None]] = []

    # --- lifecycle ------------------------------------------------------------------------------
    def start(self, hub: TickHub) -> None:
        self.hub = hub
        loop = asyncio.get_running_loop()
        self.tasks = [loop.create_task(self._refresher()), loop.create_task(self._worker())]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.tasks = []
        if self.hub is not None:
            self.hub.unsubscribe(self.listener, list(self.listener.modes))

    def today(self) -> str:
        return self.now().astimezone(IST).date().isoformat()

    # --- the watch list -------------------------------------------------------------------------
    def _levels(self, day: str) -> dict[int, Levels]:
        """Levels per paper portfolio, reloading aggregates whose read model changed (runs in a thread)."""
        with self.platform.db.read() as conn:
            rows = [r for r in active_portfolio_rows(conn) if r["mode"] == "paper"]
            marks = activity_marks(conn, [r["id"] for r in rows])
        out: dict[int, Levels] = {}
        for r in rows:
            pid = int(r["id"])
            key = (day, r["last_day"], r["status"], marks.get(pid))
            hit = self.cache.get(pid)
            if hit is None or hit[0] != key:
                levels: Levels = {}
                if next_session(r["last_day"], day):
                    with self.platform.store.reading(Portfolio, Portfolio.uuid_for(pid)) as pf:
                        if pf is not None and next_session(pf.last_day, day):
                            levels = pf.tick_levels(day)
                hit = self.cache[pid] = (key, levels)
            if hit[1]:
                out[pid] = hit[1]
        for pid in [p for p in self.cache if p not in out and all(int(r["id"]) != p for r in rows)]:
            del self.cache[pid]
        return out

    async def refresh(self) -> None:
        async with self.refreshing:
            await self._refresh()

    async def _refresh(self) -> None:
        levels = await asyncio.to_thread(self._levels, self.today())
        watch: dict[str, list[tuple[int, float | None, float | None]]] = {}
        for pid, per_symbol in levels.items():
            for sym, (below, above) in per_symbol.items():
                watch.setdefault(f"NSE:{sym}", []).append((pid, below, above))
        self.watch = watch
        hub = self.hub
        if hub is None:
            return
        held = set(self.listener.modes)
        gone = [s for s in held if s not in watch]
        if gone:
            hub.unsubscribe(self.listener, gone)
        added = [s for s in watch if s not in held]
        if added:
            for sym in self.listener.subscribe(hub, added):
                log.warning("paper tick fills: %s is not a known symbol of the tick feed", sym)

    async def _refresher(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:
                log.exception("paper tick fills: refreshing the watched orders failed")
            await asyncio.sleep(self.refresh_seconds)

    # --- ticks ----------------------------------------------------------------------------------
    def _on_tick(self, symbol: str, tick: dict[str, Any]) -> None:
        entries = self.watch.get(symbol)
        if not entries:
            return
        price = tick.get("ltp")
        now = self.now()
        if not isinstance(price, int | float) or not self.is_open(now):
            return
        if self.session_rules and in_closing_auction(now):
            return
        plain = symbol.split(":", 1)[1]
        for pid, below, above in entries:
            if crosses(float(price), below, above):
                self.due.setdefault(pid, {}).setdefault(plain, float(price))
                self.due_at.setdefault(pid, now.isoformat())
                self.wake.set()

    def _apply(self, portfolio_id: int, day: str, prices: dict[str, float], at: str | None = None) -> int:
        tick_time = at if self.session_rules else None
        result = self.platform.bus.handle(m.ApplyTicks(portfolio_id, day, tuple(sorted(prices.items())),
                                                       tick_time), PAPER_BROKER)
        return int(result.value)

    async def _worker(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            applied: list[int] = []
            while self.due:
                pid = next(iter(self.due))
                prices = self.due.pop(pid)
                at = self.due_at.pop(pid, None)
                self.watch = {s: [e for e in entries if e[0] != pid] for s, entries in self.watch.items()}
                try:
                    n = await asyncio.to_thread(self._apply, pid, self.today(), prices, at)
                except Exception as exc:
                    log.warning("paper tick fills: portfolio %s at %s failed: %s", pid, prices, exc)
                    n = 0
                if n:
                    log.info("paper tick fills: portfolio %s filled %d order(s) at %s", pid, n, prices)
                applied.append(pid)
            async with self.refreshing:  # their levels changed: reload them, once for all of them
                for pid in applied:
                    self.cache.pop(pid, None)
                await self._refresh()
