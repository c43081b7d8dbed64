"""Input guards applied to every route, so bad bytes are refused at the edge instead of reaching a
database or an event (a NUL in an event would stop a Postgres projection for good).

- URLs: a NUL character in the path or the query string is a 400.
- JSON bodies: NaN/Infinity, numbers too large for a float, and NUL characters in any string are a 422
  (FastAPI's JSON-decode-error shape).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Receive, Scope, Send

MAX_ID = 2**63 - 1  # ids are 64-bit integers in every store
MAX_OFFSET = 2**31 - 1


def _bad(doc: str, message: str) -> json.JSONDecodeError:
    return json.JSONDecodeError(message, doc, 0)


def strict_json_loads(raw: bytes | str) -> Any:
    """json.loads that refuses non-finite numbers and NUL characters."""
    doc = raw.decode("utf-8") if isinstance(raw, bytes) else raw

    def no_constant(name: str) -> Any:
        raise _bad(doc, f"{name} is not a number JSON allows")

    def finite_float(text: str) -> float:
        value = float(text)
        if not math.isfinite(value):
            raise _bad(doc, f"{text} is too large for a number")
        return value

    value = json.loads(doc, parse_constant=no_constant, parse_float=finite_float)
    _check_strings(value, doc)
    return value


def _check_strings(value: Any, doc: str) -> None:
    if isinstance(value, str):
        if "\x00" in value:
            raise _bad(doc, "text must not contain NUL characters")
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_strings(k, doc)
            _check_strings(v, doc)
    elif isinstance(value, list):
        for v in value:
            _check_strings(v, doc)


class StrictJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = strict_json_loads(await self.body())
        return self._json


class StrictJsonRoute(APIRoute):
    """Every router uses this route class (see `api.deps.resource_router`)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            return await handler(StrictJsonRequest(request.scope, request.receive))

        return strict_handler


class UrlGuardMiddleware:
    """400 for a NUL character anywhere in the URL."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            query = scope.get("query_string", b"").lower()
            if "\x00" in scope.get("path", "") or b"%00" in query or b"\x00" in query:
                response = Response(b'{"detail":"NUL characters are not allowed in URLs"}', status_code=400,
                                    media_type="application/json")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
