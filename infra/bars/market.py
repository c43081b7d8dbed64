"""The live side's view of the bar store (the `MarketData` port): latest day, a day's bars, and the
after-close scan -- the same evaluation (`domain.evaluate.evaluate_strategy`) the backtest engine runs.

The scan reads bars from the portfolio's warm-up anchor (where a backtest starting on the deployment
day would start its warm-up) up to the scanned day and nothing later, so a paper portfolio sees at each
close exactly the indicator values the backtest saw on that day.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from commands.ports import ScanResult
from domain.bars import WARMUP_TRADING_DAYS
from domain.calendar import TradingCalendar, nse_calendar
from domain.errors import DomainError
from domain.evaluate import describe_conditions, evaluate_strategy
from domain.indicators import IndicatorCache
from domain.sizing import Candidate
from infra.bars.store import BarStore
from infra.bars.universes import Universe, load_universe

__all__ = ["BarStoreMarket"]


class BarStoreMarket:
    def __init__(self, data_dir: Path, calendar: TradingCalendar | None = None) -> None:
        self.store = BarStore(data_dir)
        self.calendar = calendar or nse_calendar()
        self._universes: dict[str, Universe] = {}

    def _universe(self, name: str) -> Universe:
        found = self._universes.get(name)
        if found is None:
            try:
                found = load_universe(name)
            except ValueError as exc:
                raise DomainError(str(exc)) from None
            self._universes[name] = found
        return found

    def latest_day(self) -> str | None:
        last = self.store.last_date()
        return None if last is None or self.store.is_empty() else last.isoformat()

    def trading_days(self, after: str, until: str) -> list[str]:
        last = self.store.last_date()
        if last is None:
            return []
        end = min(date.fromisoformat(until), last)
        start = self.calendar.next_trading_day(date.fromisoformat(after))
        if end < start:
            return []
        return [d.isoformat() for d in self.calendar.trading_days(start, end)]

    def check_universe(self, name: str) -> None:
        universe = self._universe(name)
        stored = set(self.store.symbols())
        absent = [s for s in universe.symbols if s not in stored]
        if absent:
            raise DomainError(f"No bars stored for {len(absent)} member(s) of {name}: {', '.join(absent[:5])}; "
                              "import or generate them first")

    def warmup_start(self, day: str) -> str:
        first = self.store.first_date()
        anchor = self.calendar.add_trading_days(date.fromisoformat(day), -WARMUP_TRADING_DAYS)
        return max(anchor, first).isoformat() if first is not None else anchor.isoformat()

    def bars_on(self, day: str, symbols: Sequence[str]) -> dict[str, tuple[float, float, float, float]]:
        if not symbols:
            return {}
        names = list(dict.fromkeys(symbols))
        m = self.store.read(names, day, day, missing="nan")
        if m.dates.size == 0 or str(m.dates[-1]) != day:
            return {}
        out: dict[str, tuple[float, float, float, float]] = {}
        for i, sym in enumerate(m.symbols):
            row = (float(m.open[i, -1]), float(m.high[i, -1]), float(m.low[i, -1]), float(m.close[i, -1]))
            if row[3] == row[3]:  # NaN: no bar that day
                out[sym] = row
        return out

    def last_prices(self, symbols: Sequence[str], day: str) -> dict[str, float]:
        nxt = self.calendar.next_trading_day(date.fromisoformat(day))
        return {s: float(bar["close"]) for s, bar in self.store.last_bars(symbols, before=nxt).items()}

    def real_marks(self, symbols: Sequence[str], day: str) -> dict[str, tuple[float, str]]:
        """(close, its date) of each of `symbols` with real bars (imported with `data import-csv` /
        `import-kite`, or any symbol of a store that holds no synthetic history): its latest real close on or
        before `day`. Synthetic demo bars never value a user's holdings, not even those stored after the
        imported ones (the demo history runs to today; `sim advance` goes further)."""
        until = self.store.real_until()
        nxt = self.calendar.next_trading_day(date.fromisoformat(day))
        limits: dict[date, list[str]] = {}
        for s in dict.fromkeys(symbols):
            if until is None:
                limits.setdefault(nxt, []).append(s)
            elif s in until:
                last = until[s]
                limit = nxt if last is None else min(nxt, date.fromisoformat(last) + timedelta(days=1))
                limits.setdefault(limit, []).append(s)
        out: dict[str, tuple[float, str]] = {}
        for limit, names in limits.items():
            for s, bar in self.store.last_bars(names, before=limit).items():
                out[s] = (float(bar["close"]), bar["date"].isoformat())
        return out

    def sectors(self, universe: str, symbols: Sequence[str]) -> dict[str, str]:
        members = {m.symbol: m.sector for m in self._universe(universe).members}
        return {s: members[s] for s in symbols if s in members}

    def scan(self, strategy: Mapping[str, Any], universe: str, anchor: str, day: str) -> ScanResult:
        members = self._universe(universe)
        bars = self.store.read(list(members.symbols), anchor, day, sectors=list(members.sectors), missing="nan")
        if bars.dates.size == 0 or str(bars.dates[-1]) != day:
            return ScanResult(day, [], {})
        col = bars.dates.size - 1
        cache = IndicatorCache(bars)
        signals = evaluate_strategy(strategy, cache)
        entry, conv = signals.entry[:, col], signals.conviction[:, col]
        close = bars.close[:, col]
        candidates = [
            Candidate(bars.symbols[i], bars.sector_of(i), float(conv[i]), float(close[i]),
                      describe_conditions(signals.entry_rules, cache, i, col))
            for i in np.flatnonzero(entry & np.isfinite(close)).tolist()
        ]
        exits: dict[str, str] = {}
        if signals.exit_rules is not None and signals.exit is not None:
            for i in np.flatnonzero(signals.exit[:, col]).tolist():
                exits[bars.symbols[i]] = describe_conditions(signals.exit_rules, cache, i, col)
        return ScanResult(day, candidates, exits)
