"""422 answers that never echo what was sent: FastAPI's validation errors carry the offending `input`
(a whole body, a 300 MB string), which this handler cuts to a short prefix of a text or a number, and drops
for objects, lists and anything in a field named like a secret (password, token, code, key)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

ECHO_CHARS = 40  # at most this much of a text value is shown back
_SECRET_WORDS = ("password", "secret", "token", "otp", "key", "code")  # such fields are never shown back


def _secret(loc: list[Any]) -> bool:
    return any(isinstance(p, str) and any(w in p.lower() for w in _SECRET_WORDS) for p in loc)


def _short(value: Any) -> Any:
    if isinstance(value, str):
        return value if len(value) <= ECHO_CHARS else value[:ECHO_CHARS] + "…"
    if value is None or isinstance(value, bool | int | float):
        return value
    return None


def _clean(error: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"type": error.get("type"), "loc": list(error.get("loc", ())),
                           "msg": str(error.get("msg", ""))[:300]}
    if "input" in error and not _secret(out["loc"]):
        short = _short(error["input"])
        if short is not None:
            out["input"] = short
    ctx = error.get("ctx")
    if isinstance(ctx, dict):
        out["ctx"] = {k: _short(v) if isinstance(v, str) else str(v)[:ECHO_CHARS] for k, v in ctx.items()}
    loc = out["loc"]
    out["loc"] = [p[:ECHO_CHARS] if isinstance(p, str) else p for p in loc]
    return out


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [_clean(e) for e in exc.errors()[:20]]
    return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)
