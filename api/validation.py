"""422 answers that never echo what was sent: FastAPI's validation errors carry the offending `input` (a whole
body, a 300 MB string, a lone surrogate that cannot even be encoded), which this handler drops; the field's
path (`loc`), the reason (`msg`) and the limits the field has (`ctx`, the schema's own values) are what a
client needs. Keys in `loc` come from the client too: they are cut short and their control characters shown
as U+FFFD."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from api.textguard import safe_text

ECHO_CHARS = 40  # at most this much of a key or a limit is shown back


def _safe(value: Any) -> str:
    return safe_text(str(value))[:ECHO_CHARS]


def _clean(error: dict[str, Any]) -> dict[str, Any]:
    msg = str(error.get("msg", "")).removeprefix("Value error, ")  # pydantic's prefix to our own reasons
    out: dict[str, Any] = {"type": error.get("type"), "msg": safe_text(msg)[:300],
                           "loc": [_safe(p) if isinstance(p, str) else p for p in error.get("loc", ())]}
    ctx = error.get("ctx")
    if isinstance(ctx, dict):
        out["ctx"] = {k: _safe(v) for k, v in ctx.items()}
    return out


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [_clean(e) for e in exc.errors()[:20]]
    return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)
