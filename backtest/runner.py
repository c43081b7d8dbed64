"""Prepare and execute one backtest over the bar store: shared by the API (in a worker process) and the CLI.

`plan_run` validates everything a run needs (dates inside the stored history, every symbol stored, the
benchmark) and returns plain arguments; `execute_run` reads the bars (warm-up included) and runs the
engine. Only plain values cross a process boundary, never bar matrices. `ProcessPoolRunner` is the
`BacktestRunner` port the API runs them through: a shared pool of spawned worker processes.
"""

from __future__ import annotations

import atexit
import math
import multiprocessing
import os
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from backtest.engine import BacktestConfig, no_trading_day, run_backtest
from domain.bars import WARMUP_TRADING_DAYS
from domain.calendar import nse_calendar
from domain.errors import DomainError
from infra.bars.store import BarStore
from infra.bars.universes import MAX_NAMED, Universe, is_symbol, normalize_symbol

__all__ = ["ProcessPoolRunner", "RunPlan", "execute_run", "json_safe", "plan_run"]


@dataclass(frozen=True)
class RunPlan:
    """The worker's arguments (`kwargs`) for `execute_run`, plus the resolved benchmark."""

    kwargs: dict[str, Any]
    benchmark: str | None


def plan_run(data_dir: Path, universe: Universe, start: date, end: date, strategy: dict[str, Any],
             config: dict[str, Any], benchmark: str | None = None) -> RunPlan:
    """Check the window and symbols against the stored history; DomainError says what to change."""
    if end < start:
        raise DomainError(f"end_date {end} is before start_date {start}; choose an end on or after the start")
    store = BarStore(data_dir)
    first, last = store.first_date(), store.last_date()
    if first is None or last is None or store.is_empty():
        raise DomainError("No bar history is stored yet; import or generate bars first")
    if start < first or end > last:
        raise DomainError(f"Dates {start}..{end} are outside the available history "
                          f"{first.isoformat()}..{last.isoformat()}; choose dates inside it")
    if nse_calendar().count_trading_days(start, end) == 0:
        raise DomainError(no_trading_day(start.isoformat(), end.isoformat()))
    stored = set(store.symbols())
    absent = [s for s in universe.symbols if s not in stored]
    if absent:
        more = f" and {len(absent) - MAX_NAMED} more" if len(absent) > MAX_NAMED else ""
        raise DomainError(f"No bars stored for: {', '.join(absent[:MAX_NAMED])}{more}")
    named = normalize_symbol(benchmark) if benchmark else ""
    chosen = named or universe.index_symbol
    if chosen not in stored:
        if named:
            # only a name of the strict symbol form is shown back (errors never echo other input)
            if not is_symbol(named):
                raise DomainError("Unknown benchmark: not a valid symbol (an index such as NIFTY50 or a stock "
                                  "such as INFY)")
            raise DomainError(f"Unknown benchmark {named}: no bars stored for it")
        chosen = ""
    warm_start = max(first, nse_calendar().add_trading_days(start, -WARMUP_TRADING_DAYS))
    kwargs = {
        "data_dir": str(data_dir), "symbols": list(universe.symbols), "sectors": list(universe.sectors),
        "benchmark": chosen or None, "warm_start": warm_start.isoformat(), "strategy": strategy,
        "config": config,
    }
    return RunPlan(kwargs, chosen or None)


def json_safe(value: Any) -> Any:
    """JSON-safe copy: non-finite floats become null, numpy scalars plain numbers."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        return json_safe(value.item())
    return value


def execute_run(data_dir: str, symbols: list[str], sectors: list[str], benchmark: str | None, warm_start: str,
                strategy: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """Read the bars (warm-up included), run, return JSON-ready parts (safe to call in a worker process)."""
    store = BarStore(Path(data_dir))
    names = list(symbols) + ([benchmark] if benchmark else [])
    matrix = store.read(names, warm_start, config["end_date"], sectors=list(sectors) + (["Index"] if benchmark else []))
    bench = None
    if benchmark:
        bench = matrix.close[-1]
        k = len(symbols)
        matrix = type(matrix)(
            symbols=matrix.symbols[:k], dates=matrix.dates, open=matrix.open[:k], high=matrix.high[:k],
            low=matrix.low[:k], close=matrix.close[:k], volume=matrix.volume[:k], sectors=matrix.sectors[:k],
        )
    result = run_backtest(matrix, strategy, BacktestConfig(**config), benchmark=bench)
    out = result.to_dict()
    out["data_fingerprint"] = store.fingerprint()
    return dict(json_safe(out))


# ---------------------------------------------------------------- the worker processes


POOL_WORKERS = 2
_POOL: dict[str, ProcessPoolExecutor] = {}
_POOL_LOCK = threading.Lock()


def _pool() -> ProcessPoolExecutor:
    """The process's one worker pool, created at first use (spawned children: no forked threads or sockets)."""
    with _POOL_LOCK:
        pool = _POOL.get("pool")
        if pool is None:
            pool = ProcessPoolExecutor(POOL_WORKERS, mp_context=multiprocessing.get_context("spawn"),
                                       initializer=_exit_with_parent, initargs=(os.getpid(),))
            _POOL["pool"] = pool
        return pool


def _exit_with_parent(parent: int) -> None:
    """In each worker: leave when the server process is gone (killed without a chance to shut the pool
    down), instead of lingering as an orphan."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


@atexit.register
def _shutdown_pool() -> None:
    pool = _POOL.pop("pool", None)
    if pool is not None:  # wait: idle workers exit at once, and none is left behind as an orphan
        pool.shutdown(wait=True, cancel_futures=True)


def _execute_plan(plan: dict[str, Any]) -> dict[str, Any]:
    return execute_run(**plan)


class ProcessPoolRunner:
    """The `BacktestRunner` port over the process's shared pool of `POOL_WORKERS` spawned workers."""

    def submit(self, plan: Mapping[str, Any]) -> Future[dict[str, Any]]:
        return _pool().submit(_execute_plan, dict(plan))
