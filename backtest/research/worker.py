"""What runs inside a research worker (a local pool process or a Dask worker).

`SharedBars` is shipped to each worker once per job: the bar matrix of the job's symbols from the earliest
warm-up day any of its runs needs to its last day, and the benchmark's closes. A run over a window sees
exactly the bars a standalone backtest of that window reads (columns from its own warm-up day to its end
day), so a combination's numbers here equal a single `POST /api/backtest/run` of it.

Indicator caches are kept per worker and per window view (first and last column): every combination over
the same window shares one `IndicatorCache`, so each distinct indicator series (say RSI(14) or SMA(200))
is computed once per window in a worker, however many combinations read it.
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from backtest.engine import BacktestConfig, BacktestResult, indicator_cache, run_backtest
from backtest.runner import json_safe
from domain.bars import WARMUP_TRADING_DAYS, BarMatrix
from domain.calendar import nse_calendar
from domain.indicators import IndicatorCache

__all__ = ["SharedBars", "cache_stats", "run_combination", "run_curve", "run_window", "warm_start_for"]

# the per-process caches: (bars key, first column, last column) -> cache / view
_CACHES: dict[tuple[str, int, int], IndicatorCache] = {}
_VIEWS: dict[tuple[str, int, int], tuple[BarMatrix, npt.NDArray[np.float64] | None]] = {}
_MAX_CACHED = 64


@dataclass(frozen=True)
class SharedBars:
    """The bars a job's runs read, shipped once per worker. `key` names the content (same key, same bars)."""

    key: str
    bars: BarMatrix
    benchmark: npt.NDArray[np.float64] | None
    first_stored: str  # the store's first day: warm-up never reaches before it


def warm_start_for(start: str, first_stored: str) -> str:
    """The first day a standalone backtest starting on `start` reads (`backtest.runner.plan_run`)."""
    warm = nse_calendar().add_trading_days(_dt.date.fromisoformat(start), -WARMUP_TRADING_DAYS)
    return max(_dt.date.fromisoformat(first_stored), warm).isoformat()


def _view(shared: SharedBars, start: str, end: str) -> tuple[tuple[str, int, int], BarMatrix,
                                                               npt.NDArray[np.float64] | None]:
    dates = shared.bars.dates.astype("datetime64[D]")
    lo = int(np.searchsorted(dates, np.datetime64(warm_start_for(start, shared.first_stored)), side="left"))
    hi = int(np.searchsorted(dates, np.datetime64(end), side="right"))
    key = (shared.key, lo, hi)
    found = _VIEWS.get(key)
    if found is None:
        b = shared.bars
        cut = slice(lo, hi)
        view = BarMatrix(symbols=b.symbols, dates=b.dates[cut], open=b.open[:, cut], high=b.high[:, cut],
                         low=b.low[:, cut], close=b.close[:, cut], volume=b.volume[:, cut], sectors=b.sectors)
        bench = shared.benchmark[cut] if shared.benchmark is not None else None
        if len(_VIEWS) >= _MAX_CACHED:
            _VIEWS.clear()
            _CACHES.clear()
        found = _VIEWS[key] = (view, bench)
    return key, found[0], found[1]


def run_window(shared: SharedBars, strategy: dict[str, Any], config: dict[str, Any]) -> BacktestResult:
    """One backtest of `strategy` with `config` over the shared bars, with the worker's indicator cache
    for its window (built at the first run over that window)."""
    cfg = BacktestConfig(**config)
    key, bars, bench = _view(shared, cfg.start_date, cfg.end_date)
    cache = _CACHES.get(key)
    if cache is None:
        cache = _CACHES[key] = indicator_cache(bars, cfg)
    return run_backtest(bars, strategy, cfg, benchmark=bench, indicators=cache)


def run_combination(shared: SharedBars, item: tuple[dict[str, Any], dict[str, Any]]) -> dict[str, Any]:
    """A task: one combination's summary metrics (JSON-safe)."""
    strategy, config = item
    result = run_window(shared, strategy, config)
    return dict(json_safe(result.summary))


def run_curve(shared: SharedBars, item: tuple[dict[str, Any], dict[str, Any]]) -> dict[str, Any]:
    """A task: one run's summary, daily equity `[(date, equity)]`, closed trades and invested days."""
    strategy, config = item
    result = run_window(shared, strategy, config)
    days = int(result.diagnostics["trading_days"])
    invested = round(float(result.summary.get("exposure_pct") or 0.0) * days / 100.0)
    return dict(json_safe({"summary": result.summary, "trades": result.trades, "invested_days": invested,
                           "curve": [(p["date"], p["equity"]) for p in result.equity_curve]}))


def cache_stats() -> dict[str, int]:
    """This worker's cache figures: windows cached and indicator series computed (for tests and benches)."""
    return {"pid": os.getpid(), "windows": len(_CACHES),
            "series_computed": sum(c.computed for c in _CACHES.values())}
