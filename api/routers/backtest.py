"""Backtests: run synchronously (in a worker process), record every completed run, list/get/delete them.

The HTTP side only: running and recording (the worker pool, the detail archive, undoing the detail when
recording fails) is the `RunBacktest` service (commands/backtest_runs.py) over the `BacktestRunner` and
`BacktestArchive` ports, which the app builds at start-up. A completed run is a `BacktestCompleted` event
(parameters, data fingerprint, summary); its per-trade rows and equity curve are in the archive; the run
list is a projection.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool

from api.deps import IdPath, PageDep, PlatformDep, Principal, Reader, SessionUser, dispatch, resource_router
from api.public.backtests import BacktestRunPublic, BacktestRunSummaryPublic
from api.public.base import answers, as_built
from api.strategy_lookup import strategy_lookup
from backtest.requests import BacktestRequest, InlineStrategy, prepare_run
from commands.backtest_runs import RunBacktest, Send
from domain.backtests import BacktestRun
from domain.errors import NotFound
from infra.bars.store import MissingSymbolsError
from infra.bootstrap import Platform
from projections.backtests import get_backtest_run, list_backtest_runs

__all__ = ["BacktestRequest", "InlineStrategy", "router"]

router = resource_router("/api/backtest", ["backtest"])

# ---------------------------------------------------------------- recording


def backtest_runs(request: Request) -> RunBacktest:
    runs: RunBacktest = request.app.state.backtest_runs
    return runs


BacktestRuns = Annotated[RunBacktest, Depends(backtest_runs)]


def _sender(request: Request, platform: Platform, user: Principal) -> Send:
    """Commands sent as this request (read-your-writes, its principal)."""
    return functools.partial(dispatch, request, platform, principal=user)


def _record(request: Request, platform: Platform, runs: RunBacktest, user: Principal, params: dict[str, Any],
            out: dict[str, Any]) -> dict[str, Any]:
    result = runs.record(_sender(request, platform, user), user.account_id, params, out)
    run_id = int(result.value)
    if result.caught_up:
        return _detail(platform, runs, run_id, user.account_id)
    found = platform.store.load_with_times(BacktestRun, BacktestRun.uuid_for(run_id))
    created_at = found[1] if found else ""
    return {"id": run_id, "params": params, "status": "completed", "summary": out["summary"],
            "data_fingerprint": out["data_fingerprint"], "created_at": created_at,
            "diagnostics": out["diagnostics"], "monthly_returns": out["monthly_returns"],
            "open_positions": out["open_positions"], "trades": out["trades"],
            "refused_entries": out.get("refused_entries", []), "equity_curve": out["equity_curve"]}


def _detail(platform: Platform, runs: RunBacktest, run_id: int, account_id: int) -> dict[str, Any]:
    with platform.db.read() as conn:
        run = get_backtest_run(conn, run_id, account_id)
    if run is None:
        raise NotFound(f"Backtest run {run_id} not found")
    run.update(runs.detail(run.pop("detail_ref")))
    return run


# ---------------------------------------------------------------- preparing a run


def _prepare(platform: Platform, req: BacktestRequest, account_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
    return prepare_run(platform.settings.data_dir, req, strategy_lookup(platform), account_id)


# ---------------------------------------------------------------- endpoints


@router.post("/run", **answers(BacktestRunPublic),
             summary="Run a backtest synchronously, record it, return the full result")
async def run(req: BacktestRequest, request: Request, user: SessionUser, platform: PlatformDep,
              runs: BacktestRuns) -> Response:
    """A saved strategy (`strategy_id`) or an inline one over a universe or a symbol list, between two stored
    days; runs in a worker process and answers the recorded run: summary metrics, trades, open positions,
    refused entries, equity curve, monthly returns and diagnostics. Symbols with no stored bars are a 400."""
    try:
        kwargs, params = await run_in_threadpool(_prepare, platform, req, user.account_id)
        out = await runs.execute(kwargs)
    except MissingSymbolsError as exc:
        raise HTTPException(400, str(exc)) from None
    return as_built(await run_in_threadpool(_record, request, platform, runs, user, params, out))


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
def get_run(run_id: IdPath, user: Reader, platform: PlatformDep, runs: BacktestRuns) -> Response:
    """The run as POST /api/backtest/run answered it; another user's run is a 404."""
    return as_built(_detail(platform, runs, run_id, user.account_id))


@router.delete("/runs/{run_id}", status_code=204, summary="Delete one of your runs")
def delete_run(run_id: IdPath, request: Request, user: SessionUser, platform: PlatformDep,
               runs: BacktestRuns) -> Response:
    """The run leaves the list and its trades and curve are removed from the analytics store."""
    runs.delete(_sender(request, platform, user), user.account_id, run_id)
    return Response(status_code=204)
