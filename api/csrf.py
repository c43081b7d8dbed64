"""Cross-site request forgery: a page on another site can make a browser send a form post (or a `fetch` with
a simple content type) carrying the user's session cookie. Such a request cannot set a custom header, a
JSON content type, nor forge `Origin`/`Sec-Fetch-Site`, so a cookie-authenticated unsafe request (POST, PUT,
PATCH, DELETE) is accepted only with one of:

- an `X-Requested-With` header (the web app sends `X-Requested-With: tradertape` on every request),
- a JSON `Content-Type` (`application/json`, `application/*+json`),
- `Sec-Fetch-Site: same-origin` or `none` (the browser says the request did not come from another site),
- an `Origin` equal to the server's own (its configured base URL, or the Host it was reached at).

Requests without the session cookie (sign-in, the agent's `Authorization: Bearer zt_...`) are not at risk
and pass, and so do inbound alerts (`/api/webhooks/{token}`: the token is the credential, no cookie is read).
A refused request is a 403 that says what to send.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from api.guards import UNSAFE_METHODS, is_json_type

log = logging.getLogger("tradertape.security")

REFUSED = ("Cross-site request refused: send the header 'X-Requested-With: tradertape' (or a JSON body) "
           "with requests authenticated by the session cookie")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def own_origin(origin: str, scope: Scope, base_url: str) -> bool:
    """`origin` (an `Origin` header) is this server's own: its configured base URL, or the scheme and Host
    it was reached at (a WebSocket's ws/wss count as http/https). No Origin, or "null", is not."""
    origin = origin.strip().lower()
    if not origin or origin == "null":
        return False
    own = {_origin(base_url)}
    host = Headers(scope=scope).get("host")
    if host:
        scheme = str(scope.get("scheme", "http"))
        own.add(f"{_HTTP_SCHEME.get(scheme, scheme)}://{host}".lower())
    return origin in own


def from_this_site(scope: Scope, base_url: str) -> bool:
    """The browser says this request came from one of our own pages: `Sec-Fetch-Site: same-origin` or
    `none`, or an `Origin` of ours. (What another site's form or script cannot make a browser send.)"""
    headers = Headers(scope=scope)
    if headers.get("sec-fetch-site", "").lower() in ("same-origin", "none"):
        return True
    return own_origin(headers.get("origin", ""), scope, base_url)


_HTTP_SCHEME = {"ws": "http", "wss": "https"}
WEBHOOKS = "/api/webhooks/"  # inbound alerts (api/routers/hooks.py): authenticated by the token in the URL


class CsrfMiddleware:
    def __init__(self, app: ASGIApp, cookie_name: str, base_url: str) -> None:
        self.app = app
        self.cookie_name = cookie_name
        self.base_url = base_url

    def allowed(self, scope: Scope) -> bool:
        if str(scope.get("path", "")).startswith(WEBHOOKS):
            return True  # the hook's token in the URL is the credential; the route never reads a cookie
        headers = Headers(scope=scope)
        if not cookie_parser(headers.get("cookie", "")).get(self.cookie_name):
            return True
        if headers.get("authorization", "").lower().startswith("bearer "):
            return True  # authenticated by the key alone (api/deps.py ignores the cookie then)
        if headers.get("x-requested-with") or is_json_type(headers.get("content-type")):
            return True
        return from_this_site(scope, self.base_url)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in UNSAFE_METHODS and not self.allowed(scope):
            client = scope.get("client") or ("unknown", 0)
            log.warning("csrf_refused method=%s path=%s ip=%s origin=%r", scope["method"], scope["path"],
                        client[0], Headers(scope=scope).get("origin", "")[:100])
            await JSONResponse({"detail": REFUSED}, status_code=403)(scope, receive, send)
            return
        await self.app(scope, receive, send)
