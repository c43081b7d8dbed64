"""Health: store, transport and projection lag, set-aside events.

The public answer is only `{"status": "ok" | "lagging" | "degraded", "version"}`; the detail (positions, lags,
errors, dead letters) is for admins (a signed-in admin session) and for the operator's scrape token
(`TRADERTAPE_METRICS_TOKEN`, as `Authorization: Bearer ...`)."""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import HTTPException, Request, Response

from api.deps import PlatformDep, current_principal, resource_router
from infra.version import VERSION
from streams.status import pipeline_status

router = resource_router("/api", ["health"])


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


@router.get("/health", summary="Status for everyone; detail (lags, errors, set-aside events) for admins")
async def health(request: Request, response: Response, platform: PlatformDep) -> dict[str, Any]:
    from starlette.concurrency import run_in_threadpool

    runner = getattr(request.app.state, "projector", None)
    out = await run_in_threadpool(pipeline_status, platform, runner)
    if not await is_operator(request, response):
        return {"status": out["status"], "version": VERSION}
    out = {"status": out["status"], "version": VERSION, **out}
    scheduler = getattr(request.app.state, "scheduler", None)
    out["scheduler"] = {"enabled": scheduler is not None}
    if scheduler is not None:
        out["scheduler"].update(next_run=scheduler.due.isoformat(), last_run=scheduler.last_run,
                                last_error=scheduler.last_error)
    return out
