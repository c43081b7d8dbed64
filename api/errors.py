"""The status-code rule every route follows (docs/API-NOTES.md, "Status codes"), and its OpenAPI record.

- 422: the request does not match the route's schema -- a field's presence, type, format or its own
  range, an unknown field, and fields a value requires (a `max_daily_loss` rule needs `value`; an
  `executed` signal result needs `fill_price`). FastAPI's validation-error list in `detail`.
- 400: a well-formed request that a business rule refuses -- an illegal state transition (approving a
  signal already in the cart), a risk-rule breach, values that contradict each other or the stored data
  (`to` before `from`, dates outside the history).
- 409: a conflict with other objects -- deleting a strategy that active portfolios use, retiring a
  portfolio with open positions, a fill for a position already closed, a concurrent modification.
- 401 not signed in, 403 signed in but not allowed, 404 not found (or not yours), 429 rate-limited.

`document_errors` adds to the OpenAPI document, for every operation, the error statuses it can answer
under this rule, each with the rule's wording; tests/integration/test_error_codes.py holds the routes to it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field

RULE: dict[int, str] = {
    400: "Business rule refused a well-formed request (illegal state transition, risk-rule breach, "
         "contradictory values)",
    401: "Not authenticated",
    403: "Authenticated but not allowed",
    404: "Not found, or not yours",
    409: "Conflict with dependent objects or a concurrent change",
    422: "Schema violation: a field is missing, of the wrong type or format, out of its range, or unknown",
    429: "Too many requests",
}

# Routes anyone may call (no credential): every other route answers 401 without one.
PUBLIC = frozenset({
    ("get", "/api/health"), ("post", "/api/auth/magic-link"), ("post", "/api/auth/verify-link"),
    ("post", "/api/auth/password-login"), ("post", "/api/auth/logout"), ("post", "/api/auth/password-reset/code"),
    ("post", "/api/auth/password-reset"),
    ("post", "/api/webhooks/{hook_token}"),  # inbound alerts: the token in the URL is the credential
})
RATE_LIMITED = frozenset({("post", "/api/auth/magic-link"), ("post", "/api/auth/verify-link"),
                          ("post", "/api/auth/password-login"), ("post", "/api/auth/password-reset/code"),
                          ("post", "/api/auth/password-reset"), ("post", "/api/auth/password/code"),
                          ("post", "/api/family/groups/{group_id}/invite"), ("post", "/api/webhooks/{hook_token}")})
# Reads that take a date range (`to` before `from` is a 400) or otherwise refuse well-formed queries.
READS_WITH_RULES = frozenset({"/api/market/bars/{symbol}", "/api/market/calendar", "/api/analytics/pnl",
                              "/api/analytics/trades", "/api/audit/events", "/api/audit/portfolios/{id}/as-of",
                              "/api/family/consolidated", "/api/portfolio/holdings", "/api/portfolio/positions",
                              "/api/portfolio/orders", "/api/portfolio/margins", "/api/auth/kite/login-url",
                              "/api/research/sweeps/{id}/heatmap"})
# Unsafe routes that never meet another object's state (nothing to conflict with).
NO_CONFLICT = frozenset({("post", "/api/auth/magic-link"), ("post", "/api/auth/verify-link"),
                         ("post", "/api/auth/password-login"), ("post", "/api/auth/logout"),
                         ("post", "/api/auth/password-reset/code")})


class ErrorDetail(BaseModel):
    """The body of every error but a schema violation (422: FastAPI's list of validation errors)."""

    model_config = ConfigDict(extra="allow")  # a 500 adds `request_id`

    detail: str = Field(description="what went wrong, in words (never echoing the request)")


ERROR_REF = {"$ref": "#/components/schemas/ErrorDetail"}
VALIDATION_REF = {"$ref": "#/components/schemas/HTTPValidationError"}  # FastAPI's


def _generic(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{id}", path)


def expected_errors(method: str, path: str, operation: dict[str, Any]) -> set[int]:
    """The error statuses `method path` can answer under the rule."""
    codes: set[int] = set()
    key = (method, path)
    if key not in PUBLIC:
        codes |= {401, 403}
    if "{" in path:
        codes.add(404)
    if operation.get("parameters") or operation.get("requestBody"):
        codes.add(422)
    if method in ("post", "put", "delete"):
        codes.add(400)
        if key not in NO_CONFLICT:
            codes.add(409)
    elif _generic(path) in READS_WITH_RULES:
        codes.add(400)
    if key in RATE_LIMITED:
        codes.add(429)
    return codes


def document_errors(build: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    """Wrap an app's `openapi()` so each operation documents its error statuses with the rule's wording."""

    def openapi() -> dict[str, Any]:
        spec = build()
        if spec.get("x-errors-documented"):
            return spec
        spec.setdefault("components", {}).setdefault("schemas", {})["ErrorDetail"] = ErrorDetail.model_json_schema()
        for path, ops in spec.get("paths", {}).items():
            for method, op in ops.items():
                responses = op.setdefault("responses", {})
                for code in sorted(expected_errors(method, path, op)):
                    entry = responses.setdefault(str(code), {})
                    entry["description"] = RULE[code]
                    entry["content"] = {"application/json": {"schema": ERROR_REF if code != 422 else VALIDATION_REF}}
        spec["x-errors-documented"] = True
        return spec

    return openapi


def schema_error(loc: tuple[str | int, ...], message: str) -> RequestValidationError:
    """A 422 in FastAPI's validation-error shape, for a schema rule checked by hand (never echoes input)."""
    return RequestValidationError([{"type": "value_error", "loc": loc, "msg": message}])
