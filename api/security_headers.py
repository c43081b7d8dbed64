"""Standard security headers on every response: the web app's Content-Security-Policy (no inline script,
nothing from another origin, no framing), `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`
(sign-in and invitation links carry tokens), and `Cache-Control: no-store` on JSON answered to a request that
carried credentials (a cookie or `Authorization`), so a shared or back-button cache never keeps account data.
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'self'; form-action 'self'")

_ALWAYS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_headers = Headers(scope=scope)
        credentials = "cookie" in request_headers or "authorization" in request_headers

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _ALWAYS.items():
                    if name not in headers:
                        headers[name] = value
                json_body = headers.get("content-type", "").startswith("application/json")
                if credentials and json_body and "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)
