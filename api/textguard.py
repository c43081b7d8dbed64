"""Invalid or deceptive text is refused at the edge, so that it never reaches a command, an event or a read
model (a stored event must always encode, and a name must read as what it is):
- invalid Unicode: a lone surrogate (a `"\\ud800"` JSON escape) or bytes that are not UTF-8 (`unicode_invalid`);
- control characters other than tab and line breaks (C0, DEL, C1: a bell, an ANSI colour escape), and the
  bidirectional embeddings, overrides and isolates (U+202A..U+202E, U+2066..U+2069) that make `NSE:INFY` or a
  group's name display as something else (`text_invalid`). The joiners Indic scripts need (U+200C, U+200D) and
  the plain direction marks (U+200E, U+200F) are allowed.

- URLs (`TextGuardMiddleware`): a path or a query parameter whose percent-decoded bytes are not UTF-8, or that
  holds such a character, is a 422 naming the parameter.
- JSON bodies (`check_json_body`, called by every route before its handler, and by the alert receiver whatever
  the content type): a string or key holding one is a 422 naming the field (`loc` as in FastAPI's validation
  errors).
- WebSocket frames (`text_fault`): the handler refuses a message holding one.

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

from domain.text import CONTROL, safe_text, text_kind

__all__ = ["MAX_DEPTH", "TextGuardMiddleware", "check_json_body", "fault_error", "json_body_error", "safe_text",
           "text_fault", "text_kind"]

UNICODE_MSG = "Text must be valid Unicode: lone surrogates (e.g. \\ud800) and invalid UTF-8 are refused"
CONTROL_MSG = ("Text must not hold control characters (other than tab and line breaks) or bidirectional "
               "overrides (U+202A..U+202E, U+2066..U+2069)")

# what a body must hold for the walk to be needed: a surrogate or control escape, or a raw C1 or bidi character
_SUSPECT = re.compile(rb"\\u(?:[dD][89a-fA-F]|00[0-1]|007[fF]|00[89]|20(?:2[a-eA-E]|6[6-9]))"
                      rb"|\xc2[\x80-\x9f]|\xe2\x80[\xaa-\xae]|\xe2\x81[\xa6-\xa9]|\x7f")
MAX_DEPTH = 64  # deeper JSON is refused before a recursive walk could overflow


_MESSAGES = {"unicode_invalid": UNICODE_MSG, "text_invalid": CONTROL_MSG}


def _error(loc: list[str | int], kind: str = "unicode_invalid") -> dict[str, Any]:
    return {"type": kind, "loc": loc, "msg": _MESSAGES[kind]}


def _safe_key(key: str) -> str:
    return safe_text(key)[:40]


def text_fault(value: Any, path: list[str | int] | None = None,
               depth: int = 0) -> tuple[list[str | int], str] | None:
    """The path and kind of the first string (key or value) that `text_kind` refuses, or None."""
    path = path or []
    if depth > MAX_DEPTH:
        return None
    if isinstance(value, str):
        kind = text_kind(value)
        return (path, kind) if kind else None
    if isinstance(value, dict):
        for k, v in value.items():
            kind = text_kind(k) if isinstance(k, str) else None
            if kind:
                return [*path, _safe_key(k)], kind
            found = text_fault(v, [*path, k], depth + 1)
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found = text_fault(v, [*path, i], depth + 1)
            if found is not None:
                return found
    return None


def fault_error(value: Any, prefix: list[str | int]) -> dict[str, Any] | None:
    """The validation error for a parsed document (e.g. an alert's form fields), or None."""
    found = text_fault(value)
    return _error([*prefix, *found[0]], found[1]) if found is not None else None


def json_body_error(raw: bytes) -> dict[str, Any] | None:
    """The validation error of a JSON body holding invalid or deceptive text, or None (the fast path: valid
    UTF-8 without a surrogate or control escape or a raw C1 or bidi character is all but every body)."""
    try:
        raw.decode("utf-8")
        if not _SUSPECT.search(raw):
            return None
    except UnicodeDecodeError:
        pass
    # invalid bytes become lone surrogates (U+DC80..U+DCFF), so one walk finds both kinds
    text = raw.decode("utf-8", "surrogateescape")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return _error(["body"])
    return fault_error(value, ["body"])


def check_json_body(raw: bytes) -> None:
    error = json_body_error(raw)
    if error is not None:
        raise RequestValidationError([error])


def _url_error(scope: Scope) -> dict[str, Any] | None:
    raw_path = scope.get("raw_path")
    if raw_path is not None:
        try:
            path = unquote_to_bytes(raw_path).decode("utf-8")
        except UnicodeDecodeError:
            return _error(["path"])
        if CONTROL.search(path):
            return _error(["path"], "text_invalid")
    query: bytes = scope.get("query_string", b"")
    if not query:
        return None
    for pair in query.split(b"&"):
        name, _, value = pair.partition(b"=")
        try:
            decoded_name = unquote_to_bytes(name.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError:
            return _error(["query"])
        if CONTROL.search(decoded_name):
            return _error(["query"], "text_invalid")
        try:
            decoded = unquote_to_bytes(value.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError:
            return _error(["query", decoded_name[:40]])
        if CONTROL.search(decoded):
            return _error(["query", decoded_name[:40]], "text_invalid")
    return None


class TextGuardMiddleware:
    """422 for a URL path or query parameter that is not UTF-8 once percent-decoded (Starlette would
    silently turn such bytes into U+FFFD) or holds a control character or bidirectional override."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            error = _url_error(scope)
            if error is not None:
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1007, "reason": error["msg"][:100]})
                    return
                await JSONResponse({"detail": [error]}, status_code=422)(scope, receive, send)
                return
        await self.app(scope, receive, send)
