"""Every request body is bounded before anything reads it (Starlette's RequestBodyLimitMiddleware: a 413 on
the declared Content-Length, or as soon as a streamed body passes the limit). The limit depends on the path,
so that middleware reading bodies early (api/acks.py spools keyed bodies) sees the right one: uploads
(api/routers/uploads.py applies the configured, smaller per-file limit itself), the agent's snapshots, inbound
alerts (64 KB), and `TRADERTAPE_BODY_MAX_KB` for everything else. Its plain-text 413 is answered as every
other error is, `{"detail": ...}` in JSON, saying the limit."""

from __future__ import annotations

import json

from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MB = 1024 * 1024
UPLOAD_CEILING = 4 * 1024 * MB  # uploads: their route reads at most upload_max_mb x upload_max_files
SNAPSHOT_MAX = 8 * MB  # a snapshot of 5000 holdings in Kite's shape is ~3 MB
WEBHOOK_MAX = 64 * 1024  # an inbound alert (a Chartink alert of 200 stocks is ~4 KB)


def _size(limit: int) -> str:
    return f"{limit // MB} MB" if limit >= MB else f"{limit // 1024} KB"


def _json_413(send: Send, limit: int) -> Send:
    """`send`, with the middleware's own plain-text 413 turned into `{"detail": ...}`."""
    replacing = False

    async def sending(message: Message) -> None:
        nonlocal replacing
        if message["type"] == "http.response.start" and message["status"] == 413:
            kind = dict(message.get("headers", [])).get(b"content-type", b"")
            replacing = kind.startswith(b"text/plain")
            if replacing:
                return
        elif replacing and message["type"] == "http.response.body":
            body = json.dumps({"detail": f"Request body too large (at most {_size(limit)})"}).encode()
            await send({"type": "http.response.start", "status": 413,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await send(message)

    return sending


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, default_bytes: int) -> None:
        self.limits = [
            ("/api/uploads/", UPLOAD_CEILING, RequestBodyLimitMiddleware(app, UPLOAD_CEILING)),
            ("/api/agent/sync-", SNAPSHOT_MAX, RequestBodyLimitMiddleware(app, SNAPSHOT_MAX)),
            ("/api/webhooks/", WEBHOOK_MAX, RequestBodyLimitMiddleware(app, WEBHOOK_MAX)),
        ]
        self.default = ("", default_bytes, RequestBodyLimitMiddleware(app, default_bytes))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        _, limit, limited = next((entry for entry in self.limits if path.startswith(entry[0])), self.default)
        await limited(scope, receive, _json_413(send, limit) if scope["type"] == "http" else send)
