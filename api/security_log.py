"""Security events in the log (`tradertape.security`): every 401, 403 and 429 answer with the client's
address and user agent, beside the events the routes log themselves (failed sign-ins, lockouts, key and
session revocations). Never a secret: no cookie, token, key, password or code is written, and the user agent
is cut short."""

from __future__ import annotations

import logging
from typing import Any

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("tradertape.security")

_LOGGED = {401: "unauthorized", 403: "forbidden", 429: "rate_limited"}


def client_of(scope: Scope) -> tuple[str, str]:
    """(client IP, user agent): the IP as the trusted-proxy setting resolved it (api/app.py)."""
    client = scope.get("client") or ("unknown", 0)
    agent = Headers(scope=scope).get("user-agent", "")
    return str(client[0]), agent[:120].replace("\n", " ").replace("\r", " ")


def security_event(request: Request | Any, event: str, **fields: Any) -> None:
    """Log one security event of this request: `event` plus fields (never pass a secret)."""
    ip, agent = client_of(request.scope)
    extra = " ".join(f"{k}={str(v)[:120]!r}" for k, v in fields.items())
    log.warning("%s ip=%s ua=%r %s", event, ip, agent, extra)


class SecurityLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] in _LOGGED:
                ip, agent = client_of(scope)
                log.warning("%s status=%d method=%s path=%s ip=%s ua=%r", _LOGGED[message["status"]],
                            message["status"], scope["method"], scope["path"][:200], ip, agent)
            await send(message)

        await self.app(scope, receive, watch)
