"""Dependencies: the platform, the caller (cookie session or agent key), pagination, command dispatch."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Hashable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from sqlalchemy.engine import Connection
from starlette.concurrency import run_in_threadpool

from api.guards import MAX_ID, MAX_OFFSET, StrictJsonRoute
from api.serial import SERIAL
from commands.bus import ATTEMPTS, CommandResult
from commands.ports import CommandMeta
from domain.accounts import Account
from domain.errors import DomainError
from infra.bootstrap import Platform
from infra.runtime import telemetry
from infra.store.shadow import replayed
from projections.accounts import get_account
from projections.base import Projection
from streams.workers import ReadYourWrites

SESSION_COOKIE = "kite_session"


async def get_platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


PlatformDep = Annotated[Platform, Depends(get_platform)]


@dataclass(frozen=True)
class Principal:
    account_id: int
    email: str
    is_admin: bool
    via: str  # "session" | "agent_key"
    account: dict[str, Any]
    session_token: str | None = None

    @property
    def actor(self) -> str:
        return f"user:{self.account_id}" if self.via == "session" else f"agent:{self.account_id}"


def set_session_cookie(response: Response, platform: Platform, token: str, max_age: int) -> None:
    response.set_cookie(SESSION_COOKIE, token, max_age=max_age, httponly=True, samesite="lax",
                        secure=platform.settings.cookie_secure, path="/")


def _unauthorized() -> HTTPException:
    return HTTPException(401, "Not authenticated: sign in, or send 'Authorization: Bearer zt_...'")


def account_from_store(platform: Platform, account_id: int) -> dict[str, Any] | None:
    """The account as its events say (used only while the accounts read model is behind)."""
    found = platform.store.load_with_times(Account, Account.uuid_for(account_id))
    if found is None:
        return None
    acc, created, _ = found
    return {"id": account_id, "email": acc.email, "name": acc.name, "is_admin": acc.is_admin,
            "created_at": created, "has_password": acc.has_password}


class PrincipalCache:
    """Resolved credentials for a moment (bounded staleness of `ttl` seconds: a revoked key or session
    stops working within that time in other processes, at once in this one)."""

    def __init__(self, ttl: float = 0.5, size: int = 4096) -> None:
        self.ttl = ttl
        self.size = size
        self._items: dict[str, tuple[float, Principal]] = {}

    def get(self, key: str) -> Principal | None:
        hit = self._items.get(key)
        if hit is None or time.monotonic() - hit[0] > self.ttl:
            return None
        return hit[1]

    def put(self, key: str, principal: Principal) -> None:
        if len(self._items) >= self.size:
            self._items.clear()
        self._items[key] = (time.monotonic(), principal)

    def forget_session(self, token: str) -> None:
        self._items.pop(f"s:{token}", None)

    def forget_account(self, account_id: int) -> None:
        for key in [k for k, (_, p) in self._items.items() if p.account_id == account_id]:
            self._items.pop(key, None)


def _resolve(platform: Platform, key: str | None, token: str | None, response: Response) -> Principal:
    now = time.time()
    via = "session"
    if key is not None:
        account_id = platform.security.agent_key_account(platform.token_hash(key), now)
        if account_id is None:
            raise HTTPException(401, "Agent key is invalid or revoked")
        via = "agent_key"
    else:
        assert token is not None
        sliding = platform.settings.session_days * 86400
        info = platform.security.session(platform.token_hash(token), now, sliding)
        if info is None:
            raise HTTPException(401, "Session expired or signed out; sign in again")
        account_id = info.account_id
        if info.expires_at - now > sliding - 61:  # just extended: refresh the cookie's lifetime too
            set_session_cookie(response, platform, token, int(sliding))
    with platform.db.read() as conn:
        account = get_account(conn, account_id)
    if account is None:  # a brand-new account whose projection is still behind: ask the store
        account = account_from_store(platform, account_id)
    if account is None:
        raise HTTPException(401, "Account not found")
    return Principal(account_id, account["email"], bool(account["is_admin"]), via, account, token)


async def current_principal(request: Request, response: Response) -> Principal:
    platform: Platform = request.app.state.platform
    cache: PrincipalCache = request.app.state.principals
    auth = request.headers.get("authorization", "")
    key: str | None = None
    token = request.cookies.get(SESSION_COOKIE)
    if auth.lower().startswith("bearer "):
        key = auth[7:].strip()
        if not key.startswith("zt_"):
            raise HTTPException(401, "Bearer tokens must be TraderTape agent keys (zt_...)")
        token = None
    elif not token:
        raise _unauthorized()
    cache_key = f"k:{key}" if key is not None else f"s:{token}"
    principal = cache.get(cache_key)
    if principal is None:
        principal = await run_in_threadpool(_resolve, platform, key, token, response)
        cache.put(cache_key, principal)
    return principal


async def reader(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    """Any authenticated caller: a signed-in user or the account's agent key (read endpoints)."""
    return principal


async def session_user(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    """A signed-in user (cookie); agent keys may only read or use /api/agent endpoints."""
    if principal.via != "session":
        raise HTTPException(403, "Agent keys may only read, or call /api/agent endpoints; sign in to change this")
    return principal


async def admin_user(principal: Annotated[Principal, Depends(session_user)]) -> Principal:
    if not principal.is_admin:
        raise HTTPException(403, "Admins only")
    return principal


Reader = Annotated[Principal, Depends(reader)]
SessionUser = Annotated[Principal, Depends(session_user)]
AdminUser = Annotated[Principal, Depends(admin_user)]


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int


async def page_params(
    limit: Annotated[int, Query(ge=1, le=500, description="at most 500")] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Page:
    return Page(limit, offset)


PageDep = Annotated[Page, Depends(page_params)]


async def signal_page_params(
    limit: Annotated[int, Query(ge=1, le=500, description="at most 500 (default 100)")] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Page:
    return Page(limit, offset)


SignalPageDep = Annotated[Page, Depends(signal_page_params)]  # signals list 100 by default (API.md)

# An integer id in a URL: 1 .. 2**63-1 (anything else is a 422, never a database overflow).
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]


def resource_router(prefix: str = "", tags: list[str | Enum] | None = None) -> APIRouter:
    """An APIRouter whose routes parse JSON strictly (see `api.guards`)."""
    return APIRouter(prefix=prefix, tags=tags, route_class=StrictJsonRoute)


def request_meta(request: Request, principal: Principal | None = None, actor: str | None = None) -> CommandMeta:
    request_id = getattr(request.state, "request_id", None)
    correlation = (request.headers.get("x-correlation-id") or "")[:80] or request_id
    return CommandMeta(
        actor=actor or (principal.actor if principal else "anonymous"),
        request_id=request_id,
        account_id=principal.account_id if principal else None,
        correlation_id=correlation,
        idempotency_key=getattr(request.state, "idempotency_key", None),  # set by api.acks.CommandAcks
    )


def dispatch(request: Request, platform: Platform, command: Any, principal: Principal | None = None,
             actor: str | None = None, events_hint: int = 0, serial: Hashable | None = None,
             attempts: int = ATTEMPTS) -> CommandResult:
    """Run a command and wait (bounded) until the projections show its effect (read-your-writes).
    `events_hint`: a command recording many events (a large import) waits longer, up to two minutes,
    so that the reads right after it (the analytics summary) see all of it. `serial`: commands that
    certainly save the same aggregate (the carts of one account all save its RiskBook) take turns in
    this process rather than clash and retry (other processes: the store's version check). `attempts`:
    the bus's tries on a version conflict (its retry budget for this command)."""
    waiter: ReadYourWrites = request.app.state.read_your_writes
    timeout = platform.settings.read_your_writes_timeout + min(events_hint / 1000.0, 120.0)
    started, name = time.perf_counter(), type(command).__name__
    try:
        with SERIAL.one_at_a_time(serial):
            result = platform.bus.handle(command, request_meta(request, principal, actor), attempts)
    except Exception as exc:
        telemetry.command_done(name, "refused" if isinstance(exc, DomainError) else "error", started)
        if isinstance(exc, DomainError):
            # a refusal that recorded events (a risk breach): the reads right after it show them
            waiter.settled_refusal(exc, timeout)
        raise
    telemetry.command_done(name, "ok", started)
    caught_up = waiter.settled(result, timeout)
    if caught_up:
        return result
    note_projection_lag(request, result.position)
    return dataclasses.replace(result, caught_up=False)


def note_projection_lag(request: Request, position: int | None) -> None:
    """The read models had not applied this request's events (up to `position`) when it answered: the
    answer carries `X-Projection-Lag` (set by `api.acks.CommandAcks`)."""
    request.state.projection_lag = max(position or 0, getattr(request.state, "projection_lag", 0) or 0)


@contextmanager
def answer_rows(platform: Platform, result: CommandResult, projection: type[Projection],
                aggregate_ids: Iterable[uuid.UUID]) -> Iterator[Connection]:
    """Where a command's answer reads its rows: the read model once it applied the command, else the
    same projection replayed over the stored events of `aggregate_ids` (never a read model that lags)."""
    if result.caught_up:
        with platform.db.read() as conn:
            yield conn
    else:
        with replayed(platform.store, projection(), aggregate_ids) as conn:
            yield conn

