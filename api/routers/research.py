"""Research jobs under /api/research: sweeps, walk-forward (and any other registered kind).

For each kind (`backtest/research/kinds.py`) at `/api/research/<route>`: `POST` validates the body and
queues a job (202 `{"id"}`), `GET /{id}` answers its status, progress and -- once done -- its results,
`DELETE /{id}` cancels a queued or running job and deletes a finished one. `GET /api/research/jobs` lists
the caller's jobs of every kind. Another user's job is a 404. One queued or running job per user (409),
at most `TRADERTAPE_RESEARCH_MAX_COMBINATIONS` backtests per job (400).
"""

# no `from __future__ import annotations`: the routes are built per kind, with the kind's body model as a
# real annotation FastAPI reads

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from api.deps import IdPath, PageDep, PlatformDep, Principal, Reader, SessionUser, dispatch, resource_router
from api.public.base import answers
from api.public.research import HeatmapPublic, JobQueuedPublic, ResearchJobPublic, SweepParameterPublic
from api.strategy_lookup import strategy_lookup
from backtest.requests import MAX_ID, readable_strategy
from backtest.research.jobs import JobKind, PlanContext, ResultQuery
from backtest.research.kinds import KINDS
from backtest.research.service import ResearchService
from backtest.research.sweeps import SWEEP, sweep_parameters
from commands import research_messages as rm
from domain.errors import DomainError, NotFound
from domain.strategies import SpecError, normalize_spec
from infra.bootstrap import Platform
from projections.backtests import get_backtest_run

router = resource_router("/api/research", ["research"])


def service(request: Request) -> ResearchService:
    found: ResearchService | None = getattr(request.app.state, "research", None)
    if found is None:
        raise RuntimeError("the research service starts with the app")
    return found


def _public(job: dict[str, Any]) -> dict[str, Any]:
    out = dict(job)
    out.pop("results_ref", None)
    kind = KINDS.get(str(job["kind"]))
    if kind is not None:
        out["url"] = f"/api/research/{kind.route}/{job['id']}"
    return out


def _job(request: Request, kind: JobKind | None, job_id: int, account_id: int) -> dict[str, Any]:
    job = service(request).get(job_id, account_id)
    if job is None or (kind is not None and job["kind"] != kind.name):
        raise NotFound(f"Research job {job_id} not found")
    return job


def _run_loader(platform: Platform, account_id: int) -> Callable[[int], dict[str, Any] | None]:
    """The caller's recorded backtest run with its trades and equity curve (None for another's)."""

    def load(run_id: int) -> dict[str, Any] | None:
        with platform.db.read() as conn:
            run = get_backtest_run(conn, run_id, account_id)
        if run is not None:
            run.update(platform.backtests.read(run.pop("detail_ref")))
        return run

    return load


def _submit(request: Request, platform: Platform, user: Principal, kind: JobKind, body: Any) -> dict[str, Any]:
    settings = platform.settings
    ctx = PlanContext(settings.data_dir, user.account_id, strategy_lookup(platform), settings.research_max_combinations,
                      _run_loader(platform, user.account_id))
    plan = kind.plan(ctx, body)
    if plan.total > settings.research_max_combinations:
        raise DomainError(f"this job would run {plan.total:,} backtests; at most "
                          f"{settings.research_max_combinations:,} per job: narrow it")
    runner = service(request).runner  # this process runs it; its heartbeat keeps other processes off it
    job_id = int(dispatch(request, platform, rm.SubmitResearchJob(user.account_id, kind.name, plan.params, plan.total,
                                                                  runner), user).value)
    service(request).start(kind, user.account_id, job_id, plan)
    return {"id": job_id, "status": "queued"}


def _routes(r: APIRouter, kind: JobKind) -> None:
    model = kind.request_model
    path = f"/{kind.route}"

    async def submit(req: model, request: Request, response: Response, user: SessionUser,  # type: ignore[valid-type]
                     platform: PlatformDep) -> dict[str, Any]:
        response.status_code = 202
        return await run_in_threadpool(_submit, request, platform, user, kind, req)

    def read(job_id: IdPath, request: Request, user: Reader,
             limit: int | None = Query(default=None, ge=1, le=1_000_000, description="results on this page"),
             offset: int = Query(default=0, ge=0, le=1_000_000)) -> dict[str, Any]:
        tables = service(request).tables
        for attempt in range(3):
            job = _job(request, kind, job_id, user.account_id)
            extra: dict[str, Any] = {"results": [], "results_total": 0}
            try:
                if job["status"] == "done" and job["results_ref"]:
                    extra = kind.present(tables, job["results_ref"], ResultQuery(limit, offset))
                elif job["status"] == "running" and tables.path(tables.partial_ref(job_id), "results") is not None:
                    # the results finished so far, best first (a snapshot taken every few seconds)
                    extra = kind.present(tables, tables.partial_ref(job_id), ResultQuery(limit, offset))
            except FileNotFoundError:
                # the job ended (dropping its snapshot) or was deleted between reading its state and its tables:
                # read both again, so the answer is its state now (a deleted job is a 404); tables still missing
                # the third time are lost, not an empty result
                if attempt == 2:
                    raise
                continue
            break
        return {**_public(job), **extra, "partial": job["status"] == "running"}

    def delete(job_id: IdPath, request: Request, user: SessionUser, platform: PlatformDep) -> Response:
        _job(request, kind, job_id, user.account_id)
        outcome = dispatch(request, platform, rm.CancelOrDeleteResearchJob(
            user.account_id, job_id, platform.settings.research_notify_after), user).value
        service(request).cancel_or_delete(outcome, job_id)
        return Response(status_code=204)

    label = kind.name.replace("_", "-")
    r.add_api_route(path, submit, methods=["POST"], status_code=202, name=f"submit_{kind.name}",
                    summary=f"Queue a {label} job: 202 with its id", **answers(JobQueuedPublic),
                    description=f"Validates the {label} request and queues it; one queued or running job per user "
                                "(else a 409), and at most TRADERTAPE_RESEARCH_MAX_COMBINATIONS backtests per job "
                                "(else a 400).")
    r.add_api_route(f"{path}/{{job_id}}", read, methods=["GET"], name=f"get_{kind.name}",
                    summary=f"A {label} job: status, progress 0-1, results when done", **answers(ResearchJobPublic),
                    description="While it runs, the results finished so far (`partial`: true); paged with `limit` "
                                "and `offset`. Another user's job is a 404.")
    r.add_api_route(f"{path}/{{job_id}}", delete, methods=["DELETE"], status_code=204, name=f"delete_{kind.name}",
                    summary="Cancel the job (queued or running) or delete it (finished)",
                    description="A cancelled job keeps the backtests it recorded.")


@router.get("/jobs", **answers(list[ResearchJobPublic]), summary="Your research jobs of every kind, newest first",
            responses={200: {"headers": {"X-Total-Count": {"description": "your jobs in total"}}}})
def list_jobs(request: Request, user: Reader, page: PageDep, response: Response) -> list[dict[str, Any]]:
    """Each with its status, progress and summary, and the `url` of its results (`/api/research/<route>/{id}`)."""
    rows, total = service(request).list(user.account_id, page.limit, page.offset)
    response.headers["X-Total-Count"] = str(total)
    return [_public(r) for r in rows]


@router.get("/parameters", **answers(list[SweepParameterPublic]),
            summary="What a sweep or walk-forward of a saved strategy can vary, each named in words")
def sweep_parameters_of(platform: PlatformDep, user: Reader,
                        strategy_id: int = Query(ge=1, le=MAX_ID, description="a strategy you may read")
                        ) -> list[dict[str, Any]]:
    """The portfolio settings, the exits, the base model's parameters and every number in the strategy's rules by
    its dotted path, each with its label (`entry: rsi(14) < x`) and the strategy's own value. Another user's
    private strategy is a 404."""
    body, _ = readable_strategy(strategy_lookup(platform), strategy_id, user.account_id)
    try:
        spec = normalize_spec(body["base_model"], body["entry_rules"], body["exit_rules"], body["params"])
    except SpecError as exc:
        raise DomainError(str(exc)) from None
    return sweep_parameters(spec.to_json())


@router.get("/sweeps/{job_id}/heatmap", **answers(HeatmapPublic),
            summary="Heatmap data of a finished sweep for two of its parameters")
def sweep_heatmap(job_id: IdPath, request: Request, user: Reader,
                  x: str = Query(max_length=200, description="a swept parameter (columns)"),
                  y: str = Query(max_length=200, description="another swept parameter (rows)"),
                  metric: str | None = Query(default=None, max_length=64,
                                             description="a metric of the best combination per cell; "
                                                         "default: the objective")) -> dict[str, Any]:
    """For each (x, y) cell, the metric of its best combination; a sweep not done, a parameter it did not sweep
    or an unknown metric is a 400."""
    job = _job(request, SWEEP, job_id, user.account_id)
    if job["status"] != "done":
        raise DomainError(f"Research job {job_id} is {job['status']}; its heatmap is ready when it is done")
    swept = list(job["params"].get("grid") or job["params"].get("random") or {})
    names = [n for n in swept if n not in ("samples", "seed")]
    for field, axis in (("x", x), ("y", y)):
        if axis not in names:  # the field is named, its value not echoed
            raise DomainError(f"{field} is not a parameter of this sweep; choose from {', '.join(names)}")
    if x == y:
        raise DomainError("x and y must be two different parameters")
    if metric is not None and metric not in SUMMARY_METRICS:
        raise DomainError(f"unknown metric; choose from {', '.join(SUMMARY_METRICS)}")
    return service(request).tables.heatmap(job["results_ref"], "results", x, y, metric)


SUMMARY_METRICS = (
    "cagr", "total_return", "final_equity", "sharpe", "sortino", "calmar", "max_drawdown", "max_drawdown_days",
    "volatility", "win_rate", "profit_factor", "expectancy", "avg_win", "avg_loss", "best_trade", "worst_trade",
    "max_consecutive_wins", "max_consecutive_losses", "total_trades", "avg_holding_days", "exposure_pct",
    "total_charges", "benchmark_return", "alpha", "beta",
)

for _kind in KINDS.values():
    _routes(router, _kind)
