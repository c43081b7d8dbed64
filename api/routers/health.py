"""Health: store, transport and projection lag."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import Request

from api.deps import PlatformDep, resource_router
from projections.base import projection_tracking
from streams.relay import relay_positions

router = resource_router("/api", ["health"])


@router.get("/health")
def health(request: Request, platform: PlatformDep) -> dict[str, Any]:
    out: dict[str, Any] = {"status": "ok"}
    try:
        head = platform.store.max_position()
        out["store"] = {"ok": True, "position": head,
                        "backend": "sqlite" if platform.settings.is_sqlite else "postgres"}
    except Exception as exc:
        out["status"] = "degraded"
        out["store"] = {"ok": False, "error": type(exc).__name__}
        return out
    with platform.db.read() as conn:
        rows = conn.execute(sa.select(projection_tracking)).all()
        relay = None
        if not platform.settings.embedded_transport:
            try:
                relay = conn.execute(sa.select(relay_positions.c.position)
                                     .where(relay_positions.c.name == "kafka")).scalar_one_or_none()
            except sa.exc.DBAPIError:
                relay = None
    projections: dict[str, int] = {}
    for r in rows:
        projections[r.projection] = max(projections.get(r.projection, 0), int(r.position))
    lag = max((head - p for p in projections.values()), default=head)
    out["projections"] = projections
    out["projection_lag"] = max(lag, 0)
    if platform.settings.embedded_transport:
        out["transport"] = {"kind": "embedded"}
    else:
        out["transport"] = {"kind": "kafka", "topic": platform.settings.kafka_topic,
                            "relay_position": int(relay or 0), "relay_lag": max(head - int(relay or 0), 0)}
    if out["projection_lag"] > 1000:
        out["status"] = "lagging"
    scheduler = getattr(request.app.state, "scheduler", None)
    out["scheduler"] = {"enabled": scheduler is not None}
    if scheduler is not None:
        out["scheduler"].update(next_run=scheduler.due.isoformat(), last_run=scheduler.last_run,
                                last_error=scheduler.last_error)
    runner = getattr(request.app.state, "projector", None)
    if runner is not None and runner.loop.last_error:
        out["status"] = "degraded"
        out["projector_error"] = runner.loop.last_error
    return out
