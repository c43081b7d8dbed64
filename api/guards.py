"""Input guards applied to every route, so bad bytes are refused at the edge instead of reaching a
database or an event (a NUL in an event would stop a Postgres projection for good).

- URLs: a NUL character in the path or the query string is a 400.
- JSON bodies: NaN/Infinity, numbers too large for a float, and NUL characters in any string are a 422
  (FastAPI's JSON-decode-error shape); invalid Unicode is a 422 naming the field (api/textguard.py).
- Sync endpoints run in worker threads a few at a time, first come first served (infra/runtime/workgate.py),
  unless marked `outside_io`.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import math
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

import anyio
import anyio.from_thread
import anyio.to_thread
from anyio.lowlevel import RunVar
from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from api.textguard import MAX_DEPTH, check_json_body
from infra.runtime.workgate import WorkGate

P = ParamSpec("P")
R = TypeVar("R")

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

    try:
        value = json.loads(doc, parse_constant=no_constant, parse_float=finite_float)
        _check_strings(value, doc)
    except RecursionError:  # thousands of nested brackets: malformed for us, a 422 as any other
        raise _bad(doc, f"nested too deeply (at most {MAX_DEPTH} levels)") from None
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


def outside_io(endpoint: Callable[P, R]) -> Callable[P, R]:
    """Marks a sync endpoint that waits on a service outside this machine (an SMTP server): FastAPI runs
    it in its own thread pool as usual, without taking a turn, so a slow mail server cannot hold up
    every other request."""
    endpoint.__outside_io__ = True  # type: ignore[attr-defined]
    return endpoint


# This process's gate: endpoint threads are admitted here; `configure` sets its slots at start-up.
WORK_GATE = WorkGate()

_TURNS: RunVar[anyio.CapacityLimiter] = RunVar("tradertape_endpoint_turns")


def _turns() -> anyio.CapacityLimiter:
    """The endpoint threads' turns of this event loop (infra/runtime/workgate.py), created at first use."""
    try:
        return _TURNS.get()
    except LookupError:
        turns = anyio.CapacityLimiter(WORK_GATE.slots or 40)
        _TURNS.set(turns)
        return turns


def _admitted(endpoint: Callable[..., R], task: object, turns: anyio.CapacityLimiter,
              args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
    def give_back() -> None:
        anyio.from_thread.run_sync(turns.release_on_behalf_of, task)

    def take_again() -> None:
        anyio.from_thread.run(turns.acquire_on_behalf_of, task)

    with WORK_GATE.admitted(give_back, take_again):
        return endpoint(*args, **kwargs)


def _threaded(endpoint: Callable[..., R]) -> Callable[..., Coroutine[Any, Any, R]]:
    """The sync endpoint as a coroutine that runs it in a worker thread once it has a turn (FIFO)."""

    @functools.wraps(endpoint)  # FastAPI reads the signature and annotations through __wrapped__
    async def run(*args: Any, **kwargs: Any) -> R:
        turns = _turns()
        task = asyncio.current_task()  # the borrower anyio records for this call's turn
        return await anyio.to_thread.run_sync(functools.partial(_admitted, endpoint, task, turns, args, kwargs),
                                              limiter=turns)

    return run


UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})  # the ones that change something (and carry bodies)


def is_json_type(content_type: str | None) -> bool:
    """`application/json` or `application/*+json` (any parameters)."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    return kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))


class StrictJsonRoute(APIRoute):
    """Every router uses this route class (see `api.deps.resource_router`). A sync endpoint runs in a
    worker thread when its turn comes (infra/runtime/workgate.py)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if not inspect.iscoroutinefunction(endpoint) and not getattr(endpoint, "__outside_io__", False):
            endpoint = _threaded(endpoint)
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            strict = StrictJsonRequest(request.scope, request.receive)
            if request.method in UNSAFE_METHODS and is_json_type(request.headers.get("content-type")):
                # read here, bounded by the body limit (api/app.py), so that invalid Unicode is a 422 naming
                # the field before FastAPI parses it (api/textguard.py)
                check_json_body(await strict.body())
            return await handler(strict)

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
