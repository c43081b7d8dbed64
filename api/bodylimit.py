"""Every request body is bounded before anything reads it (Starlette's RequestBodyLimitMiddleware: a 413 on
the declared Content-Length, or as soon as a streamed body passes the limit). The limit depends on the path,
so that middleware reading bodies early (api/acks.py spools keyed bodies) sees the right one: uploads
(api/routers/uploads.py applies the configured, smaller per-file limit itself), the agent's snapshots, inbound
alerts (64 KB), and `TRADERTAPE_BODY_MAX_KB` for everything else."""

from __future__ import annotations

from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

MB = 1024 * 1024
UPLOAD_CEILING = 4 * 1024 * MB  # uploads: their route reads at most upload_max_mb x upload_max_files
SNAPSHOT_MAX = 8 * MB  # a snapshot of 5000 holdings in Kite's shape is ~3 MB
WEBHOOK_MAX = 64 * 1024  # an inbound alert (a Chartink alert of 200 stocks is ~4 KB)


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, default_bytes: int) -> None:
        self.limits = [
            ("/api/uploads/", RequestBodyLimitMiddleware(app, UPLOAD_CEILING)),
            ("/api/agent/sync-", RequestBodyLimitMiddleware(app, SNAPSHOT_MAX)),
            ("/api/webhooks/", RequestBodyLimitMiddleware(app, WEBHOOK_MAX)),
        ]
        self.default = RequestBodyLimitMiddleware(app, default_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        for prefix, limited in self.limits:
            if path.startswith(prefix):
                await limited(scope, receive, send)
                return
        await self.default(scope, receive, send)
