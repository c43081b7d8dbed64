"""The web app: static ES modules served by the API process.

`/` and every client route answer `index.html`; `/assets/...` are the app's own files and the vendored
libraries (assets/vendor/VENDORED.md); `/help/<NAME>.md` are the guides of docs/, read-only (api/web/guides.py).
The client-route fallback is installed as the router's *not-found*
handler, so it answers only when no route matched: it can never shadow `/api`, `/link`, `/metrics` or any
route added later, and those prefixes keep their JSON 404.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from api.web import guides
from domain.errors import NotFound

WEB_DIR = Path(__file__).parent
INDEX = WEB_DIR / "index.html"
NOT_SPA = ("/api", "/link", "/metrics", "/assets", "/health", "/help")
# the CSP and the other security headers come from api/security_headers.py, on every response
PAGE_HEADERS = {"Cache-Control": "no-cache"}


def index_response() -> Response:
    return FileResponse(INDEX, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


def _is_client_route(scope: Scope) -> bool:
    if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
        return False
    path: str = scope["path"]
    if any(path == p or path.startswith(p + "/") for p in NOT_SPA):
        return False
    last = path.rsplit("/", 1)[-1]
    return "." not in last  # /favicon.ico, /robots.txt: a plain 404


def mount_web(app: FastAPI) -> None:
    """Serve the app at `/`, its files at `/assets`, and index.html for client routes nothing else owns."""

    @app.get("/", include_in_schema=False)
    def _root() -> Response:
        return index_response()

    app.mount("/assets", StaticFiles(directory=WEB_DIR / "assets"), name="assets")

    @app.get("/help", include_in_schema=False)
    def _help() -> Response:
        first = next(iter(guides.guides()), None)
        if first is None:
            raise NotFound("The guides are not installed")
        return RedirectResponse(f"/help/{first}", status_code=307)

    @app.get("/help/guides.json", include_in_schema=False)
    def _guide_list() -> list[dict[str, str]]:
        """The Help menu's entries: [{"href": "/help/STRATEGIES.md", "title": "Strategies guide"}, ...]."""
        return [{"href": f"/help/{name}", "title": title} for name, title in guides.guides().items()]

    @app.get("/help/{name}", include_in_schema=False)
    def _guide(name: str) -> Response:
        text = guides.page(name)
        if text is None:
            raise NotFound("No such guide")
        return HTMLResponse(text, headers=PAGE_HEADERS)

    not_found: ASGIApp = app.router.default

    async def fallback(scope: Scope, receive: Receive, send: Send) -> None:
        if _is_client_route(scope):
            await index_response()(scope, receive, send)
        else:
            await not_found(scope, receive, send)

    app.router.default = fallback
