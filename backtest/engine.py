"""The backtest engine: replays a BarMatrix through the domain Portfolio, in memory.

Everything a trade depends on -- rules, conviction, ranking, sizing, limits, fills, exits, charges --
is decided by `domain` code that paper portfolios run too. This module only prepares the data
(rule and conviction matrices computed up front with numpy) and feeds the Portfolio one trading day
at a time, in the order a live day happens:

  for each trading day t in [start_date, end_date]:
    Portfolio.process_bars(t, bars of bar_symbols(), closes of held + pending)  # exits, entries, the close
    Portfolio.record_exit_signals(t, symbols whose exit rules hold at t's close)
    Portfolio.record_signals(t, candidates at t's close)        # auto-approved and placed (not on the last day)

The per-day Python work touches only symbols with candidates, open positions or pending orders; whole bars
only for those an exit or an entry may fill on (`Portfolio.bar_symbols`), the close alone for the others.

Choices:
- Bars before `start_date` are warm-up for indicators only; bars after `end_date` are dropped before
  anything is computed (so nothing can look ahead of the window).
- No signals are generated at the close of the last day: they could never be filled in the window.
- Positions still open at the end are marked to market at the last close and reported in
  `open_positions` (not closed, no exit charges); `trades` holds closed trades only; `final_equity`
  includes the open positions at their marks. Orders still pending at the end are dropped
  (`diagnostics.pending_at_end`).
- pnl = (exit - entry) x quantity - entry charges - exit charges; pnl_pct = pnl / (entry x quantity)
  x 100; charges = entry + exit charges; holding_days = trading days from entry to exit.
- Deterministic: no randomness, no clocks except the elapsed-time diagnostic.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import time
from collections import Counter
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

import numpy as np
import numpy.typing as npt

from domain.bars import BarMatrix
from domain.calendar import nse_calendar
from domain.charges import SCHEDULES
from domain.errors import DomainError
from domain.evaluate import evaluate_strategy
from domain.events import DomainEvent
from domain.indicators import IndicatorCache
from domain.metrics import drawdowns, monthly_returns, summarize
from domain.portfolio.aggregate import INSUFFICIENT_CASH, NOT_FILLED, Portfolio
from domain.portfolio.events import EntryExpired, OrderFailed
from domain.portfolio.state import PositionState, ScanOutcome
from domain.rounding import round2, round4
from domain.sizing import Candidate, check_limits
from domain.strategies import SpecError, normalize_spec
from infra.runtime.heap import collector_paused


@dataclass(frozen=True)
class BacktestConfig:
    """The run's window, capital and limits (the API request minus strategy and universe)."""

    start_date: str
    end_date: str
    starting_capital: float
    position_size_pct: float = 10.0
    max_positions: int = 20
    max_per_sector: int | None = None
    slippage_bps: float = 0.0
    charges: str = "zerodha_delivery"


@dataclass
class BacktestResult:
    """A run's JSON-ready parts (`to_dict`) plus, with `run_backtest(keep_events=True)`, the in-memory domain
    events (not serialised)."""

    summary: dict[str, Any]
    equity_curve: list[dict[str, Any]]
    trades: list[dict[str, Any]]
    open_positions: list[dict[str, Any]]
    monthly_returns: dict[str, float]
    diagnostics: dict[str, Any]
    events: dict[str, Any]
    strategy: dict[str, Any]
    config: dict[str, Any]
    domain_events: list[DomainEvent] = field(default_factory=list, repr=False)
    refused_entries: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary,
            "equity_curve": self.equity_curve,
            "trades": self.trades,
            "refused_entries": self.refused_entries,
            "open_positions": self.open_positions,
            "monthly_returns": self.monthly_returns,
            "diagnostics": self.diagnostics,
            "events": self.events,
            "strategy": self.strategy,
            "config": self.config,
        }


def _parse_day(value: Any, name: str) -> str:
    if isinstance(value, _dt.date):
        return value.isoformat()[:10]
    if isinstance(value, np.datetime64):
        return str(value.astype("datetime64[D]"))
    try:
        return _dt.date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise DomainError(f"{name} must be a date like 2020-01-01, got {value!r}") from None


def validate_config(config: BacktestConfig) -> BacktestConfig:
    """Check a configuration; raise DomainError saying what to change. Returns it with ISO dates."""
    start = _parse_day(config.start_date, "start_date")
    end = _parse_day(config.end_date, "end_date")
    if end < start:
        raise DomainError(f"end_date {end} is before start_date {start}; choose an end on or after the start")
    check_limits(config.starting_capital, config.position_size_pct, config.max_positions, config.max_per_sector)
    if isinstance(config.slippage_bps, bool) or not isinstance(config.slippage_bps, int | float) \
            or not 0 <= config.slippage_bps <= 1000:
        raise DomainError(f"slippage_bps must be a number from 0 to 1000, got {config.slippage_bps!r}")
    if config.charges not in SCHEDULES:
        raise DomainError(f"charges must be one of {', '.join(SCHEDULES)}, got {config.charges!r}")
    return dataclasses.replace(config, start_date=start, end_date=end)


def no_trading_day(start: str, end: str) -> str:
    """The error for a window holding weekends and exchange holidays only."""
    return (f"no trading days between {start} and {end} (only weekends or NSE holidays): choose a range with at "
            "least one trading day")


def _window(bars: BarMatrix, start: str, end: str) -> tuple[int, int]:
    """(first, last) columns of the run's days. With none: a range of holidays and weekends says so; the bars'
    span is named only when the range reaches outside it. (The bars hold the warm-up and the window, not the
    whole stored history: "outside" means outside these bars.)"""
    if bars.n_days == 0:
        raise DomainError("no trading days to run on: there are no bars at all")
    dates = bars.dates.astype("datetime64[D]")
    s = int(np.searchsorted(dates, np.datetime64(start), side="left"))
    e = int(np.searchsorted(dates, np.datetime64(end), side="right")) - 1
    if s > e:
        first, last = dates[0], dates[-1]
        inside = first <= np.datetime64(start) and np.datetime64(end) <= last
        if inside or nse_calendar().count_trading_days(_dt.date.fromisoformat(start),
                                                       _dt.date.fromisoformat(end)) == 0:
            raise DomainError(no_trading_day(start, end))
        raise DomainError(f"no bars between {start} and {end}: the bars cover {first}..{last}; choose dates "
                          "inside them")
    return s, e


def _truncate(bars: BarMatrix, last: int) -> BarMatrix:
    """The bars up to and including column `last` (views, no copy)."""
    if last == bars.n_days - 1:
        return bars
    cut = slice(0, last + 1)
    return BarMatrix(
        symbols=bars.symbols, dates=bars.dates[cut], open=bars.open[:, cut], high=bars.high[:, cut],
        low=bars.low[:, cut], close=bars.close[:, cut], volume=bars.volume[:, cut], sectors=bars.sectors,
    )


def _by_day(mask: npt.NDArray[np.bool_], s: int, e: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp],
                                                                     npt.NDArray[np.intp]]:
    """(start offsets per day, symbol rows, day columns) of the True cells in columns s..e, grouped
    by day so day t's cells are rows[offsets[t-s]:offsets[t-s+1]]."""
    days, rows = np.nonzero(mask[:, s:e + 1].T)
    offsets = np.searchsorted(days, np.arange(e - s + 2))
    return offsets, rows, days + s


def _pick(day_bars: npt.NDArray[np.float64], wanted: list[str], index: dict[str, int],
          complete: bool) -> dict[str, list[float]]:
    """{symbol: its bar (open, high, low, close) as Python floats} for the `wanted` symbols that traded that
    day (a NaN close means no bar; `complete`: every symbol traded)."""
    if not wanted:
        return {}
    if len(wanted) <= 8:  # a few (the usual day): row by row is cheaper than numpy's take
        rows = [day_bars[index[sym]].tolist() for sym in wanted]
    else:
        rows = day_bars.take(np.fromiter(map(index.__getitem__, wanted), np.intp, len(wanted)), axis=0).tolist()
    if complete:
        return dict(zip(wanted, rows, strict=True))
    return {sym: row for sym, row in zip(wanted, rows, strict=True) if row[3] == row[3]}


_FEW_HELD = 16  # up to this many open positions a day's closes are picked for the held and placed symbols alone


def _strategy_spec(strategy: dict[str, Any]) -> dict[str, Any]:
    try:
        spec = normalize_spec(
            strategy.get("base_model", ""), strategy.get("entry_rules"), strategy.get("exit_rules"),
            strategy.get("params"),
        )
    except SpecError as exc:
        raise DomainError(str(exc)) from None
    return spec.to_json()


def _trade_row(pos: PositionState, symbol_sector: str) -> dict[str, Any]:
    value = pos.entry_price * pos.quantity
    pnl = float(pos.realized_pnl or 0.0)
    return {
        "symbol": pos.symbol,
        "sector": symbol_sector,
        "entry_date": pos.entry_day,
        "entry_price": pos.entry_price,
        "exit_date": pos.exit_day,
        "exit_price": pos.exit_price,
        "quantity": pos.quantity,
        "pnl": pnl,
        "pnl_pct": round4(pnl / value * 100.0) if value else 0.0,
        "charges": round2(pos.entry_charges + pos.exit_charges),
        "exit_reason": pos.exit_reason,
        "holding_days": pos.bars_held,
        "conviction": pos.conviction,
    }


def sizing_warnings(config: BacktestConfig) -> list[str]:
    """Configurations that can never fill their slots, said in the answer instead of discovered later."""
    total = config.max_positions * config.position_size_pct
    if total > 100.0 + 1e-9:
        fit = int(100.0 // config.position_size_pct) if config.position_size_pct > 0 else 0
        return [f"max_positions x position_size_pct = {config.max_positions} x {config.position_size_pct:g} % = "
                f"{total:g} % of capital: at most {fit} position(s) can be paid for from cash, so entries past "
                f"that are refused for insufficient cash"]
    return []


_REFUSALS = (OrderFailed, EntryExpired)


def _refused_entries(pf: Portfolio, events: list[Any]) -> list[dict[str, Any]]:
    """Entries whose order was placed but never filled, with the day and the reason: refused at the next
    open for cash (the quantity is fixed at the signal's close, as a broker's fixed-quantity order is), or
    expired unfilled."""
    out: list[dict[str, Any]] = []
    if not (pf.stats["orders_failed"] or pf.stats["entries_expired"]):  # none of either: skip the events
        return out
    for ev in events:
        if type(ev) in _REFUSALS and isinstance(ev, OrderFailed | EntryExpired):
            sig = pf.signals[ev.signal_id]
            if isinstance(ev, EntryExpired):
                reason, code = NOT_FILLED, "expired"
            else:
                reason = ev.reason
                code = "insufficient_cash" if reason.startswith(INSUFFICIENT_CASH) else "order_failed"
            out.append({"symbol": sig.symbol, "sector": sig.sector, "signal_date": sig.day, "date": ev.day,
                        "quantity": sig.quantity, "reference_price": sig.reference_price,
                        "conviction": sig.conviction, "reason_code": code, "reason": reason})
    return out


def run_backtest(
    bars: BarMatrix,
    strategy: dict[str, Any],
    config: BacktestConfig,
    benchmark: npt.NDArray[np.float64] | None = None,
    indicators: IndicatorCache | None = None,
    keep_events: bool = False,
) -> BacktestResult:
    """Backtest `strategy` (an API strategy body: base_model, entry_rules, exit_rules, params) on
    `bars` over [config.start_date, config.end_date]. `benchmark` holds the benchmark's closes on
    `bars.dates` (or None). Raises DomainError for an invalid configuration or strategy.

    `indicators`: an `IndicatorCache` from `indicator_cache(bars, config)` shared by many runs over the
    same bars and window (a research sweep): each distinct indicator series is computed once for all of
    them instead of once per run. The numbers are the same as without it (the cache is built over the
    very bars this run would build its own over).

    `keep_events`: the result keeps the run's domain events (`domain_events`, for comparing runs event by
    event). Off, they are freed with the run: none of the product's callers reads them, and a result holding
    them makes the collector's first pass after the run walk every one of them (about 7 ms of an SMA run).

    The cyclic garbage collector is paused for the run: it allocates many short-lived acyclic objects
    (events, states) that would trigger collections of the whole heap, about a tenth of the run time,
    for nothing to collect; reference counting still frees them."""
    with collector_paused():
        return _run(bars, strategy, config, benchmark, indicators, keep_events)


def indicator_cache(bars: BarMatrix, config: BacktestConfig) -> IndicatorCache:
    """The indicator cache a run of `config` over `bars` computes on (the bars up to the window's last
    day), for `run_backtest(..., indicators=)` to share across runs with the same window end."""
    config = validate_config(config)
    _, e = _window(bars, config.start_date, config.end_date)
    return IndicatorCache(_truncate(bars, e))


def _run(bars: BarMatrix, strategy: dict[str, Any], config: BacktestConfig,
         benchmark: npt.NDArray[np.float64] | None, indicators: IndicatorCache | None = None,
         keep_events: bool = False) -> BacktestResult:
    t_start = time.perf_counter()
    config = validate_config(config)
    spec = _strategy_spec(strategy)
    s, e = _window(bars, config.start_date, config.end_date)
    bars = _truncate(bars, e)  # nothing after the window exists for this run

    if indicators is not None and (indicators.bars.n_days != bars.n_days or indicators.bars.symbols != bars.symbols):
        raise ValueError("the shared indicator cache was built over other bars or another window end")
    signals = evaluate_strategy(spec, indicators if indicators is not None else IndicatorCache(bars))
    entry, exit_sig, conv = signals.entry, signals.exit, signals.conviction

    symbols = bars.symbols
    sectors = [bars.sector_of(i) for i in range(bars.n_symbols)]
    sym_index = {sym: i for i, sym in enumerate(symbols)}
    day_str: list[str] = bars.dates[s:e + 1].astype("datetime64[D]").astype(str).tolist()
    # (days, symbols, 4) and (days, symbols) so one take fetches a day's bars or closes for some symbols
    close_t = np.ascontiguousarray(bars.close[:, s:e + 1].T)
    fields = (bars.open, bars.high, bars.low, bars.close)
    ohlc = np.empty((e - s + 1, bars.n_symbols, 4), np.result_type(*fields))  # field by field: cheaper than a stack
    for j, field_ in enumerate(fields):
        ohlc[:, :, j] = field_[:, s:e + 1].T
    # the days on which every symbol traded (no NaN bar to leave out)
    complete: list[bool] = np.isfinite(bars.close[:, s:e + 1]).all(axis=0).tolist()  # type: ignore[assignment]

    e_off, e_rows, e_days = _by_day(entry, s, e)
    e_conv = conv[e_rows, e_days].tolist()
    e_close = bars.close[e_rows, e_days].tolist()
    e_syms = [symbols[i] for i in e_rows.tolist()]
    e_secs = [sectors[i] for i in e_rows.tolist()]
    e_off_l = e_off.tolist()
    # every candidate of the window built at once (a day's are e_cands[e_off_l[k]:e_off_l[k + 1]])
    e_cands = list(map(Candidate._make, zip(e_syms, e_secs, e_conv, e_close, repeat(""), strict=False)))
    if exit_sig is not None:
        x_off, x_rows, _ = _by_day(exit_sig, s, e)
        x_off_l = x_off.tolist()
        x_syms = [symbols[i] for i in x_rows.tolist()]

    pf = Portfolio.deploy(
        0, name="backtest", mode="backtest", strategy=spec, capital=config.starting_capital,
        position_size_pct=config.position_size_pct, max_positions=config.max_positions,
        max_per_sector=config.max_per_sector, auto_approve=True, slippage_bps=config.slippage_bps,
        charges=config.charges, day=day_str[0], at=day_str[0],
    )

    all_closes = dict.fromkeys(symbols, 0.0)  # the day's closes when many are held (process_bars keeps no reference)
    scans: list[ScanOutcome] = []
    eq_curve: list[float] = []
    cash_curve: list[float] = []
    invested_days = 0
    last = len(day_str) - 1
    for k, day in enumerate(day_str):
        # whole bars for what may exit or fill today; the closes of what may be held at the close
        full = complete[k]
        today = _pick(ohlc[k], pf.bar_symbols(), sym_index, full)
        held = len(pf.open_positions)
        if held > _FEW_HELD:  # every symbol's close, written in C into the same dict each day
            all_closes.update(zip(symbols, close_t[k].tolist(), strict=True))
            closes = all_closes
        elif held or today:  # the closes of the held and the placed alone
            need = pf.symbols_needing_bars()
            row = close_t[k].tolist()
            closes = dict(zip(need, map(row.__getitem__, map(sym_index.__getitem__, need)), strict=True))
        else:
            closes = {}
        if not full and closes:
            closes = {sym: c for sym, c in closes.items() if c == c}  # NaN: no bar today
        pf.process_bars(day, today, day, closes)
        if exit_sig is not None and pf.open_positions:
            lo, hi = x_off_l[k], x_off_l[k + 1]
            if hi > lo:
                pf.record_exit_signals(day, x_syms[lo:hi], day)
        if k < last:
            lo, hi = e_off_l[k], e_off_l[k + 1]
            if hi > lo:
                scans.append(pf.record_signals(day, e_cands[lo:hi], day))
        eq_curve.append(pf.close_equity)  # equity at this close (DayClosed); signals move no cash
        cash_curve.append(pf.cash)
        if pf.open_positions:
            invested_days += 1

    events = pf.collect_events()
    trades = [_trade_row(p, p.sector) for p in pf.closed_positions]
    refused = _refused_entries(pf, events)
    open_rows = [{
        "symbol": p.symbol, "sector": p.sector, "entry_date": p.entry_day, "entry_price": p.entry_price,
        "quantity": p.quantity, "last_price": p.last_price, "unrealized_pnl": p.unrealized_pnl,
        "stop_loss": p.stop_loss, "target": p.target, "charges": p.entry_charges,
        "holding_days": p.bars_held, "conviction": p.conviction,
    } for p in pf.open_positions.values()]
    total_charges = sum(t["charges"] for t in trades) + sum(p.entry_charges for p in pf.open_positions.values())
    bench = None
    if benchmark is not None:
        bench_arr = np.asarray(benchmark, dtype=np.float64)
        if bench_arr.shape[0] < e + 1:
            raise DomainError("benchmark must have one close per bar date")
        bench = bench_arr[s:e + 1]
    summary = summarize(
        dates=day_str, equity=eq_curve, starting_capital=config.starting_capital, trades=trades,
        invested_days=invested_days, total_charges=total_charges, benchmark=bench,
    )
    dd = drawdowns(eq_curve, config.starting_capital)
    curve = [{"date": d, "equity": q, "cash": c, "drawdown_pct": round4(x)}
             for d, q, c, x in zip(day_str, eq_curve, cash_curve, dd.tolist(), strict=True)]
    stats = pf.stats
    valid_bars = int(np.isfinite(bars.close[:, s:e + 1]).sum())
    diagnostics: dict[str, Any] = {
        "signals_generated": sum(out.considered for out in scans),
        "orders_placed": sum(len(out.signal_ids) for out in scans),
        "skipped_max_positions": sum(out.skipped_max_positions for out in scans),
        "skipped_max_per_sector": sum(out.skipped_max_per_sector for out in scans),
        "skipped_zero_quantity": sum(out.skipped_zero_quantity for out in scans),
        "entries_filled": stats["entries_filled"],
        "entries_expired": stats["entries_expired"],
        "skipped_cash": stats["skipped_cash"],
        "pending_at_end": len(pf.live_signals()),
        "exits": stats["exits"],
        "stop_updates": stats["stop_updates"],
        "trading_days": len(day_str),
        "warmup_days": s,
        "bars_processed": valid_bars,
        "refused_entries": len(refused),
        "refused_by_reason": dict(sorted(Counter(r["reason_code"] for r in refused).items())),
        "warnings": sizing_warnings(config),
        "elapsed_ms": round((time.perf_counter() - t_start) * 1000.0, 2),
    }
    by_type = Counter({cls.__name__: n for cls, n in Counter(map(type, events)).items()})
    return BacktestResult(
        summary=summary,
        equity_curve=curve,
        trades=trades,
        refused_entries=refused,
        open_positions=open_rows,
        monthly_returns=monthly_returns(day_str, eq_curve, config.starting_capital),
        diagnostics=diagnostics,
        events={"count": len(events), "by_type": dict(sorted(by_type.items()))},
        strategy=spec,
        config=dataclasses.asdict(config),
        domain_events=events if keep_events else [],
    )
