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
from typing import Any

from fastapi import HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool

from api.deps import IdPath, PageDep, PlatformDep, Principal, Reader, SessionUser, dispatch, resource_router
from api.public.backtests import BacktestRunPublic, BacktestRunSummaryPublic
from api.public.base import answers
from api.strategy_lookup import strategy_lookup
from backtest.requests import BacktestRequest, InlineStrategy, prepare_run
from backtest.runner import execute_run
from commands import messages as m
from domain.backtests import BacktestRun
from domain.errors import NotFound
from infra.bars.store import MissingSymbolsError
from infra.bootstrap import Platform
from projections.backtests import get_backtest_run, list_backtest_runs

__all__ = ["BacktestRequest", "InlineStrategy", "router"]

router = resource_router("/api/backtest", ["backtest"])

POOL_WORKERS = 2

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


def _prepare(platform: Platform, req: BacktestRequest, account_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
    return prepare_run(platform.settings.data_dir, req, strategy_lookup(platform), account_id)


# ---------------------------------------------------------------- endpoints


@router.post("/run", **answers(BacktestRunPublic),
             summary="Run a backtest synchronously, record it, return the full result")
async def run(req: BacktestRequest, request: Request, user: SessionUser, platform: PlatformDep) -> dict[str, Any]:
    """A saved strategy (`strategy_id`) or an inline one over a universe or a symbol list, between two stored
    days; runs in a worker process and answers the recorded run: summary metrics, trades, open positions,
    refused entries, equity curve, monthly returns and diagnostics. Symbols with no stored bars are a 400."""
    try:
        kwargs, params = await run_in_threadpool(_prepare, platform, req, user.account_id)
        loop = asyncio.get_running_loop()
        out = await loop.run_in_executor(_pool(), _call_execute, kwargs)
    except MissingSymbolsError as exc:
        raise HTTPException(400, str(exc)) from None
    return await run_in_threadpool(_record, request, platform, user, params, out)


def _call_execute(kwargs: dict[str, Any]) -> dict[str, Any]:
    return execute_run(**kwargs)


@router.get("/runs", **answers(list[BacktestRunSummaryPublic]),
            summary="Your backtest runs, newest first (summaries only)",
            responses={200: {"headers": {"X-Total-Count": {"description": "your runs in total"}}}})
def list_runs(user: Reader, page: PageDep, response: Response, platform: PlatformDep) -> list[dict[str, Any]]:
    """Each run's parameters and summary metrics, without trades or curve (GET /api/backtest/runs/{id})."""
    with platform.db.read() as conn:
        rows, total = list_backtest_runs(conn, user.account_id, page.limit, page.offset)
    response.headers["X-Total-Count"] = str(total)
    return rows


@router.get("/runs/{run_id}", **answers(BacktestRunPublic),
            summary="One run with its equity curve and per-trade detail")
def get_run(run_id: IdPath, user: Reader, platform: PlatformDep) -> dict[str, Any]:
    """The run as POST /api/backtest/run answered it; another user's run is a 404."""
    return _detail(platform, run_id, user.account_id)


@router.delete("/runs/{run_id}", status_code=204, summary="Delete one of your runs")
def delete_run(run_id: IdPath, request: Request, user: SessionUser, platform: PlatformDep) -> Response:
    """The run leaves the list and its trades and curve are removed from the analytics store."""
    ref = dispatch(request, platform, m.DeleteBacktestRun(user.account_id, run_id), user).value
    platform.backtests.delete(ref)
    return Response(status_code=204)
