"""`/api/docs`: Swagger UI from the locally installed `swagger-ui-bundle-v2` package (Swagger UI 5, Apache-2.0,
its licence ships in the package), never a CDN, so the docs work offline; and under the app's
Content-Security-Policy (api/security_headers.py): no inline script, the start-up code is `/api/docs/init.js`.
"Try it out" sends `X-Requested-With: tradertape` like the web app (the CSRF rule, api/csrf.py)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

ASSETS = "/api/docs/assets"

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css">
<link rel="icon" type="image/png" href="{assets}/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="/api/docs/init.js"></script>
</body>
</html>
"""

_INIT = """window.ui = SwaggerUIBundle({
  url: %s,
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  requestInterceptor: function (request) {
    request.headers["X-Requested-With"] = "tradertape";
    return request;
  }
});
"""


def install_docs(app: FastAPI, openapi_url: str, title: str) -> None:
    """Serve Swagger UI at /api/docs (create the app with `docs_url=None`)."""
    import json

    page = _PAGE.format(title=title, assets=ASSETS)
    init = _INIT % json.dumps(openapi_url)
    app.mount(ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui-assets")

    @app.get("/api/docs", include_in_schema=False)
    def _docs() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/api/docs/init.js", include_in_schema=False)
    def _init() -> Response:
        return Response(init, media_type="text/javascript")
