"""Health and metrics: store, transport and projection lag, set-aside events.

`/api/health`: the public answer is only `{"status": "ok" | "degraded", "version"}`; the detail
(positions, lags, errors, dead letters) is for admins (a signed-in admin session) and for the operator's
scrape token (`TRADERTAPE_METRICS_TOKEN`, as `Authorization: Bearer ...`). `/metrics`: the same figures
and this process's command counts and latencies in Prometheus' text format, for the same callers."""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import HTTPException, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool

from api.deps import PlatformDep, current_principal, resource_router
from api.public.base import answers
from api.public.operations import HealthPublic
from infra.bootstrap import Platform
from infra.config.version import VERSION
from infra.runtime import telemetry
from streams.status import pipeline_status

router = resource_router("", ["health"])


async def is_operator(request: Request, response: Response) -> bool:
    """An admin's session, or the configured scrape token."""
    token = request.app.state.platform.settings.metrics_token
    auth = request.headers.get("authorization", "")
    if token and auth.lower().startswith("bearer ") and not auth[7:].strip().startswith("zt_"):
        return hmac.compare_digest(auth[7:].strip().encode(), token.encode())
    try:
        principal = await current_principal(request, response)
    except HTTPException:
        return False
    return principal.is_admin and principal.via == "session"


@router.get("/api/health", **answers(HealthPublic),
            summary="Status for everyone; detail (lags, errors, set-aside events) for admins")
async def health(request: Request, response: Response, platform: PlatformDep) -> dict[str, Any]:
    """`status` is ok or degraded (the store does not answer, a projection or the relay lags or keeps failing,
    events were set aside); an admin's session or the metrics token also gets why, and the pipeline's figures."""
    runner = getattr(request.app.state, "projector", None)
    operator = await is_operator(request, response)
    out = await run_in_threadpool(pipeline_status, platform, runner, operator)
    if not operator:
        return {"status": out["status"], "version": VERSION}
    out = {"status": out["status"], "version": VERSION, **out}
    scheduler = getattr(request.app.state, "scheduler", None)
    out["scheduler"] = {"enabled": scheduler is not None}
    if scheduler is not None:
        out["scheduler"].update(next_run=scheduler.due.isoformat(), last_run=scheduler.last_run,
                                last_error=scheduler.last_error)
    return out


class PipelineCollector(Collector):
    """The pipeline's figures (streams.status) as gauges, read when scraped."""

    def __init__(self, platform: Platform, runner: Any) -> None:
        self.platform = platform
        self.runner = runner

    def collect(self) -> Any:
        st = pipeline_status(self.platform, self.runner)

        def gauge(name: str, doc: str, labels: list[str] | None = None) -> GaugeMetricFamily:
            return GaugeMetricFamily(f"tradertape_{name}", doc, labels=labels)

        g = gauge("health_degraded", "1 while /api/health answers degraded")
        g.add_metric([], 1.0 if st["status"] != "ok" else 0.0)
        yield g
        if "shards" not in st:  # the store does not answer
            return
        g = gauge("store_position", "The event store's head (position of the last stored event)")
        g.add_metric([], st["store"]["position"])
        yield g
        lag = gauge("projection_lag_events", "Events not yet applied, per projection and shard",
                    ["projection", "shard"])
        for name, p in st["projections"].items():
            for shard, v in p["shards"].items():
                lag.add_metric([name, shard], v["lag"])
        yield lag
        shard_lag = gauge("shard_lag_events", "Events not yet applied by every projection, per shard", ["shard"])
        age = gauge("shard_oldest_unapplied_age_seconds", "Age of the oldest event not yet applied, per shard",
                    ["shard"])
        for shard, v in st["shards"].items():
            shard_lag.add_metric([shard], v["lag"])
            age.add_metric([shard], v["oldest_unapplied_age_s"] or 0.0)
        yield shard_lag
        yield age
        if st["transport"]["kind"] == "kafka":
            g = gauge("relay_lag_events", "Stored events the relay has not published yet")
            g.add_metric([], st["transport"]["relay_lag"])
            yield g
        dead = gauge("dead_letters", "Events set aside as failing to apply, per projection", ["projection"])
        for name in st["projections"]:
            dead.add_metric([name], st["dead_letters_by_projection"].get(name, 0))
        yield dead
        fails = gauge("worker_failures", "Steps failed in a row, per worker (projector, relay)", ["worker"])
        for name, w in st["workers"].items():
            fails.add_metric([name], w["failures"])
        yield fails


@router.get("/metrics", summary="Prometheus metrics (admins or the scrape token)", include_in_schema=False)
async def metrics(request: Request, response: Response, platform: PlatformDep) -> Response:
    if not await is_operator(request, response):
        if not request.headers.get("authorization") and not request.cookies:
            raise HTTPException(401, "Send the metrics scrape token (Authorization: Bearer ...) or sign in as an admin")
        raise HTTPException(403, "Admins or the metrics scrape token only")
    pipeline = CollectorRegistry(auto_describe=False)
    pipeline.register(PipelineCollector(platform, getattr(request.app.state, "projector", None)))
    body = await run_in_threadpool(lambda: generate_latest(telemetry.REGISTRY) + generate_latest(pipeline))
    return Response(body, media_type=CONTENT_TYPE_LATEST)
