"""What the OpenAPI document says beyond the routes themselves: who may call each operation (security schemes
for the `kite_session` cookie and the `zt_` agent key, so /api/docs has an Authorize button) and the tick
WebSocket, which OpenAPI cannot
describe as an operation: its messages are schemas in `components` and `x-websockets` names them
(docs/API-NOTES.md, "Tick WebSocket")."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

from api.deps import SESSION_COOKIE, current_principal, reader, session_user
from api.public.notifications import NotificationPublic

SESSION = "kite_session"
AGENT_KEY = "agent_key"

SECURITY_SCHEMES: dict[str, Any] = {
    SESSION: {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE,
              "description": "The session cookie set by signing in (POST /api/auth/verify-link or "
                             "/api/auth/password-login). Unsafe methods also need the header "
                             "`X-Requested-With: tradertape` (CSRF rule); the docs page sends it."},
    AGENT_KEY: {"type": "http", "scheme": "bearer", "bearerFormat": "zt_...",
                "description": "The account's agent key (`zt_...`, POST /api/auth/agent-key): the /api/agent "
                               "endpoints and every read."},
}


# ------------------------------------------------------------------ the tick WebSocket's messages


class TickSubscribe(BaseModel):
    """Client → server."""

    action: Literal["subscribe", "unsubscribe"]
    symbols: list[str] = Field(description='"EXCHANGE:SYMBOL", at most 3000 per connection')
    mode: Literal["ltp", "quote", "full"] = Field(default="quote", description="subscribe only")


class Tick(BaseModel):
    model_config = ConfigDict(extra="allow")  # mode `full`: Kite's full tick (depth, OI, ...)

    ltp: float
    open: float | None = None
    high: float | None = None
    low: float | None = None
    close: float | None = None
    volume: int | None = None
    change: float | None = None
    timestamp: str | None = None


class TicksMessage(BaseModel):
    type: Literal["ticks"]
    data: dict[str, Tick] = Field(description="symbol → its tick, shaped by the mode it was subscribed in")


class StatusMessage(BaseModel):
    model_config = ConfigDict(extra="allow")  # the upstream's own status (source, market hours)

    type: Literal["status"]
    connected: bool


class SubscribedMessage(BaseModel):
    type: Literal["subscribed", "unsubscribed"]
    symbols: list[str]


class ErrorMessage(BaseModel):
    type: Literal["error"]
    detail: str


class NotificationMessage(BaseModel):
    """Pushed to the web app's connections (session cookie) when a notification is recorded."""

    type: Literal["notification"]
    notification: NotificationPublic
    unread: int


WS_MESSAGES: list[type[BaseModel]] = [TickSubscribe, TicksMessage, StatusMessage, SubscribedMessage, ErrorMessage,
                                      NotificationMessage]

WEBSOCKET = {
    "/api/ws/ticks": {
        "summary": "Live ticks (and the web app's notifications) over a WebSocket",
        "description": "Authenticated by the session cookie, `?token=zt_...` or `Authorization: Bearer zt_...`; "
                       "a page of another origin is refused (close 1008). Send `TickSubscribe` messages; the "
                       "server sends `StatusMessage` first, then `TicksMessage`, `SubscribedMessage`, "
                       "`ErrorMessage` (a malformed message or unknown symbol, never a disconnect) and, to the web "
                       "app, `NotificationMessage`. Close codes: 1008 not authenticated, another origin or too "
                       "many connections for the account; 4401 the credential was revoked (reason says which).",
        "security": [{SESSION: []}, {AGENT_KEY: []}],
        "client_messages": [{"$ref": "#/components/schemas/TickSubscribe"}],
        "server_messages": [{"$ref": f"#/components/schemas/{m.__name__}"} for m in WS_MESSAGES[1:]],
    },
}


def _calls(route: APIRoute) -> set[Callable[..., Any]]:
    found: set[Callable[..., Any]] = set()
    stack = [route.dependant]
    while stack:
        dep = stack.pop()
        if dep.call is not None:
            found.add(dep.call)
        stack.extend(dep.dependencies)
    return found


def _security(calls: set[Callable[..., Any]], agent_only: Callable[..., Any]) -> list[dict[str, list[str]]]:
    if agent_only in calls:
        return [{AGENT_KEY: []}]
    if session_user in calls:
        return [{SESSION: []}]
    if reader in calls or current_principal in calls:
        return [{SESSION: []}, {AGENT_KEY: []}]
    return []


def describe_contract(app: FastAPI, routers: list[APIRouter], agent_only: Callable[..., Any]) -> None:
    """Wrap `app.openapi` (after `document_errors`) to add the security schemes, each operation's security
    (from the dependencies of the routes of `routers`), and the WebSocket. `agent_only`: the dependency of the
    agent-key-only routes."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        spec = build()
        if spec.get("x-websockets"):
            return spec
        components = spec.setdefault("components", {})
        components["securitySchemes"] = SECURITY_SCHEMES
        schemas = components.setdefault("schemas", {})
        for model in WS_MESSAGES:
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(schema.pop("$defs", {}))
            schemas[model.__name__] = schema
        by_operation = {(method.lower(), route.path): _calls(route)
                        for router in routers for route in router.routes if isinstance(route, APIRoute)
                        for method in route.methods or ()}
        for path, item in spec.get("paths", {}).items():
            for method, op in item.items():
                op["security"] = _security(by_operation.get((method, path), set()), agent_only)
        spec["x-websockets"] = WEBSOCKET
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
