"""Backtests: run synchronously (in a worker process), record every completed run, list/get/delete them.

A run's bars are read by the worker process itself from the data directory (only plain arguments
cross the process boundary, never bar matrices). A completed run is recorded as a `BacktestCompleted`
event (parameters, data fingerprint, summary); its per-trade rows and equity curve go to the analytics
store; the run list is a projection.
"""

from __future__ import annotations

import asyncio
import atexit
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from typing import Any, Literal

from fastapi import HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.concurrency import run_in_threadpool

from api.deps import IdPath, PageDep, PlatformDep, Principal, Reader, SessionUser, dispatch, resource_router
from api.guards import MAX_ID
from backtest.barstore import MissingSymbolsError
from backtest.runner import execute_run, plan_run
from backtest.universes import Universe, custom_universe, load_universe
from commands import messages as m
from domain.backtests import BacktestRun
from domain.errors import DomainError, NotFound
from domain.strategies import SpecError, normalize_spec
from infra.bootstrap import Platform
from projections.backtests import get_backtest_run, list_backtest_runs
from projections.strategies import get_strategy

router = resource_router("/api/backtest", ["backtest"])

POOL_WORKERS = 2

# ---------------------------------------------------------------- request schema


class InlineStrategy(BaseModel):
    """A strategy body used only for this run (validated like a saved strategy)."""

    model_config = ConfigDict(extra="ignore")

    base_model: str
    entry_rules: dict[str, Any] | None = None
    exit_rules: dict[str, Any] | None = None
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _valid(self) -> InlineStrategy:
        try:
            spec = normalize_spec(self.base_model, self.entry_rules, self.exit_rules, self.params)
        except SpecError as exc:
            raise ValueError(f"strategy.{exc}") from None
        self.entry_rules, self.exit_rules, self.params = spec.entry_rules, spec.exit_rules, spec.params
        return self


class BacktestRequest(BaseModel):
    """`strategy_id` or an inline `strategy`; `universe` or `symbols` (a custom universe)."""

    model_config = ConfigDict(extra="forbid")

    strategy_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    strategy: InlineStrategy | None = None
    universe: str | None = Field(default=None, max_length=64, description="nifty_50 or nifty_100")
    symbols: list[str] | None = Field(default=None, min_length=1, max_length=500)
    start_date: date
    end_date: date
    starting_capital: float = Field(gt=0, le=1e12)
    position_size_pct: float = Field(default=10.0, gt=0, le=100)
    max_positions: int = Field(default=20, ge=1, le=500)
    max_per_sector: int | None = Field(default=None, ge=1, le=500)
    slippage_bps: float = Field(default=0.0, ge=0, le=1000)
    charges: Literal["zerodha_delivery", "none"] = "zerodha_delivery"
    benchmark: str | None = Field(default=None, max_length=64, description="default: the universe's index")

    @model_validator(mode="after")
    def _one_of_each(self) -> BacktestRequest:
        if (self.strategy_id is None) == (self.strategy is None):
            raise ValueError("give exactly one of strategy_id or strategy (an inline strategy body)")
        if self.universe is None and self.symbols is None:
            raise ValueError("give a universe (nifty_50, nifty_100) or a list of symbols")
        if self.universe is not None and self.symbols is not None:
            raise ValueError("give either universe or symbols, not both")
        return self


# ---------------------------------------------------------------- the worker process


_POOL: dict[str, ProcessPoolExecutor] = {}
_POOL_LOCK = threading.Lock()


def _pool() -> ProcessPoolExecutor:
    """The shared worker pool, created at first use (spawned children: no forked threads or sockets)."""
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


# ---------------------------------------------------------------- recording


def _record(request: Request, platform: Platform, user: Principal, params: dict[str, Any],
            out: dict[str, Any]) -> dict[str, Any]:
    ref = platform.backtests.write(out["trades"], out["equity_curve"], out.get("refused_entries"))
    try:
        result = dispatch(request, platform, m.RecordBacktestRun(
            user.account_id, params, out["summary"], out["diagnostics"], out["monthly_returns"],
            out["open_positions"], out["data_fingerprint"], ref), user)
    except Exception:
        platform.backtests.delete(ref)
        raise
    run_id = int(result.value)
    if result.caught_up:
        return _detail(platform, run_id, user.account_id)
    found = platform.store.load_with_times(BacktestRun, BacktestRun.uuid_for(run_id))
    created_at = found[1] if found else ""
    return {"id": run_id, "params": params, "status": "completed", "summary": out["summary"],
            "data_fingerprint": out["data_fingerprint"], "created_at": created_at,
            "diagnostics": out["diagnostics"], "monthly_returns": out["monthly_returns"],
            "open_positions": out["open_positions"], "trades": out["trades"],
            "refused_entries": out.get("refused_entries", []), "equity_curve": out["equity_curve"]}


def _detail(platform: Platform, run_id: int, account_id: int) -> dict[str, Any]:
    with platform.db.read() as conn:
        run = get_backtest_run(conn, run_id, account_id)
    if run is None:
        raise NotFound(f"Backtest run {run_id} not found")
    run.update(platform.backtests.read(run.pop("detail_ref")))
    return run


# ---------------------------------------------------------------- preparing a run


def _strategy_body(platform: Platform, req: BacktestRequest, account_id: int) -> tuple[dict[str, Any], str | None]:
    if req.strategy is not None:
        return req.strategy.model_dump(), None
    with platform.db.read() as conn:
        row = get_strategy(conn, int(req.strategy_id or 0))
    if row is None or not (row["is_template"] or row["is_public"] or row["owner_id"] == account_id):
        raise NotFound(f"Strategy {req.strategy_id} not found")
    body = {k: row[k] for k in ("base_model", "entry_rules", "exit_rules", "params")}
    return body, str(row["name"])


def _universe(req: BacktestRequest) -> Universe:
    try:
        if req.symbols is not None:
            return custom_universe(req.symbols)
        return load_universe(str(req.universe))
    except ValueError as exc:
        raise DomainError(str(exc)) from None


def _prepare(platform: Platform, req: BacktestRequest, account_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validate everything the worker will need (`plan_run` checks the dates); returns (worker kwargs,
    normalised params)."""
    strategy, strategy_name = _strategy_body(platform, req, account_id)
    universe = _universe(req)
    config = {
        "start_date": req.start_date.isoformat(), "end_date": req.end_date.isoformat(),
        "starting_capital": float(req.starting_capital), "position_size_pct": float(req.position_size_pct),
        "max_positions": req.max_positions, "max_per_sector": req.max_per_sector,
        "slippage_bps": float(req.slippage_bps), "charges": req.charges,
    }
    plan = plan_run(platform.settings.data_dir, universe, req.start_date, req.end_date, strategy, config,
                    req.benchmark)
    params = {
        "strategy_id": req.strategy_id, "strategy_name": strategy_name, "strategy": strategy,
        "universe": universe.name if req.symbols is None else None,
        "symbols": list(universe.symbols) if req.symbols is not None else None,
        "benchmark": plan.benchmark, **config,
    }
    return plan.kwargs, params


# ---------------------------------------------------------------- endpoints


@router.post("/run", summary="Run a backtest synchronously, record it, return the full result")
async def run(req: BacktestRequest, request: Request, user: SessionUser, platform: PlatformDep) -> dict[str, Any]:
    try:
        kwargs, params = await run_in_threadpool(_prepare, platform, req, user.account_id)
        loop = asyncio.get_running_loop()
        out = await loop.run_in_executor(_pool(), _call_execute, kwargs)
    except MissingSymbolsError as exc:
        raise HTTPException(400, str(exc)) from None
    return await run_in_threadpool(_record, request, platform, user, params, out)


def _call_execute(kwargs: dict[str, Any]) -> dict[str, Any]:
    return execute_run(**kwargs)


@router.get("/runs", summary="Your backtest runs, newest first (summaries only)",
            responses={200: {"headers": {"X-Total-Count": {"description": "your runs in total"}}}})
def list_runs(user: Reader, page: PageDep, response: Response, platform: PlatformDep) -> list[dict[str, Any]]:
    with platform.db.read() as conn:
        rows, total = list_backtest_runs(conn, user.account_id, page.limit, page.offset)
    response.headers["X-Total-Count"] = str(total)
    return rows


@router.get("/runs/{run_id}", summary="One run with its equity curve and per-trade detail")
def get_run(run_id: IdPath, user: Reader, platform: PlatformDep) -> dict[str, Any]:
    return _detail(platform, run_id, user.account_id)


@router.delete("/runs/{run_id}", status_code=204)
def delete_run(run_id: IdPath, request: Request, user: SessionUser, platform: PlatformDep) -> Response:
    ref = dispatch(request, platform, m.DeleteBacktestRun(user.account_id, run_id), user).value
    platform.backtests.delete(ref)
    return Response(status_code=204)
