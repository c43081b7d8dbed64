"""Every route the server answers appears in the Architecture guide's endpoint table, and nothing else does."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.routing import Mount, Route, WebSocketRoute

from api.app import create_app
from tests.conftest import make_settings
from tests.docs.guides import read


def _routes(routes: list[Any], prefix: str = "") -> Iterator[str]:
    """'METHOD path' of every route, walking included routers."""
    for r in routes:
        inner = getattr(r, "original_router", None)
        if inner is not None:  # FastAPI's lazily included router
            yield from _routes(inner.routes, prefix + r.include_context.prefix)
        elif isinstance(r, APIWebSocketRoute | WebSocketRoute):
            yield f"WS {prefix}{r.path}"
        elif isinstance(r, APIRoute | Route):
            for method in sorted((r.methods or set()) - {"HEAD"}):
                yield f"{method} {prefix}{r.path}"
        elif isinstance(r, Mount):
            yield f"GET {prefix}{r.path}/{{path}}"


def test_every_route_is_in_the_endpoint_table(tmp_path: Any) -> None:
    app = create_app(make_settings(tmp_path))
    served = set(_routes(app.routes))
    assert "POST /api/backtest/run" in served and "WS /api/ws/ticks" in served
    documented = set(re.findall(r"^\| `([A-Z]+ /[^`]*)` \|", read("docs/ARCHITECTURE.md"), re.MULTILINE))
    missing = sorted(served - documented)
    assert not missing, "routes missing from docs/ARCHITECTURE.md's table:\n" + "\n".join(missing)
    gone = sorted(documented - served)
    assert not gone, "docs/ARCHITECTURE.md lists routes the server does not have:\n" + "\n".join(gone)
