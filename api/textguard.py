"""Invalid Unicode is refused at the edge: a lone surrogate (a `"\\ud800"` JSON escape) or bytes that are not
UTF-8 never reach a command, an event or a read model (a stored event must always encode).

- URLs (`TextGuardMiddleware`): a path or a query parameter whose percent-decoded bytes are not UTF-8 is a
  422 naming the parameter.
- JSON bodies (`check_json_body`, called by every route before its handler): a string holding a lone surrogate,
  or invalid UTF-8 inside a string, is a 422 naming the field (`loc` as in FastAPI's validation errors).
- WebSocket frames (`invalid_text_path`): the handler refuses a message holding one.

The value itself is never echoed back.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote_to_bytes

from fastapi.exceptions import RequestValidationError
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

UNICODE_MSG = "Text must be valid Unicode: lone surrogates (e.g. \\ud800) and invalid UTF-8 are refused"
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
MAX_DEPTH = 64  # deeper JSON is refused before a recursive walk could overflow


def _error(loc: list[str | int]) -> dict[str, Any]:
    return {"type": "unicode_invalid", "loc": loc, "msg": UNICODE_MSG}


def invalid_text_path(value: Any, path: list[str | int] | None = None, depth: int = 0) -> list[str | int] | None:
    """The path of the first string (key or value) holding a surrogate code point, or None."""
    path = path or []
    if depth > MAX_DEPTH:
        return None
    if isinstance(value, str):
        return path if _SURROGATE.search(value) else None
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(k, str) and _SURROGATE.search(k):
                return [*path, k.encode("utf-8", "replace").decode("utf-8")[:40]]
            found = invalid_text_path(v, [*path, k], depth + 1)
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found = invalid_text_path(v, [*path, i], depth + 1)
            if found is not None:
                return found
    return None


def json_body_error(raw: bytes) -> dict[str, Any] | None:
    """The validation error of a JSON body holding invalid Unicode, or None (the fast path: valid UTF-8
    without a surrogate escape is all but every body)."""
    try:
        raw.decode("utf-8")
        if not _SURROGATE_ESCAPE.search(raw):
            return None
    except UnicodeDecodeError:
        pass
    # invalid bytes become lone surrogates (U+DC80..U+DCFF), so one walk finds both kinds
    text = raw.decode("utf-8", "surrogateescape")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return _error(["body"])
    found = invalid_text_path(value)
    return _error(["body", *found]) if found is not None else None


def check_json_body(raw: bytes) -> None:
    error = json_body_error(raw)
    if error is not None:
        raise RequestValidationError([error])


def _url_error(scope: Scope) -> dict[str, Any] | None:
    raw_path = scope.get("raw_path")
    if raw_path is not None:
        try:
            unquote_to_bytes(raw_path).decode("utf-8")
        except UnicodeDecodeError:
            return _error(["path"])
    query: bytes = scope.get("query_string", b"")
    if not query:
        return None
    for pair in query.split(b"&"):
        name, _, value = pair.partition(b"=")
        try:
            decoded_name = unquote_to_bytes(name.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError:
            return _error(["query"])
        try:
            unquote_to_bytes(value.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError:
            return _error(["query", decoded_name[:40]])
    return None


class TextGuardMiddleware:
    """422 for a URL path or query parameter that is not UTF-8 once percent-decoded (Starlette would
    silently turn such bytes into U+FFFD)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            error = _url_error(scope)
            if error is not None:
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1007, "reason": UNICODE_MSG[:100]})
                    return
                await JSONResponse({"detail": [error]}, status_code=422)(scope, receive, send)
                return
        await self.app(scope, receive, send)
