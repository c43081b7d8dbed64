"""Dependencies: the platform, the caller (cookie session or agent key), pagination, command dispatch."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Query, Request, Response

from commands.bus import CommandResult
from commands.ports import CommandMeta
from domain.errors import Forbidden
from infra.bootstrap import Platform
from projections.accounts import get_account
from streams.workers import ReadYourWrites

SESSION_COOKIE = "kite_session"


def get_platform(request: Request) -> Platform:
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


def current_principal(request: Request, response: Response, platform: PlatformDep) -> Principal:
    now = time.time()
    auth = request.headers.get("authorization", "")
    token = request.cookies.get(SESSION_COOKIE)
    account_id: int | None = None
    via = "session"
    if auth.lower().startswith("bearer "):
        key = auth[7:].strip()
        if not key.startswith("zt_"):
            raise HTTPException(401, "Bearer tokens must be TraderTape agent keys (zt_...)")
        account_id = platform.security.agent_key_account(platform.token_hash(key), now)
        if account_id is None:
            raise HTTPException(401, "Agent key is invalid or revoked")
        via = "agent_key"
        token = None
    elif token:
        sliding = platform.settings.session_days * 86400
        info = platform.security.session(platform.token_hash(token), now, sliding)
        if info is None:
            raise HTTPException(401, "Session expired or signed out; sign in again")
        account_id = info.account_id
        if info.expires_at - now > sliding - 61:  # just extended: refresh the cookie's lifetime too
            set_session_cookie(response, platform, token, int(sliding))
    else:
        raise _unauthorized()
    with platform.db.read() as conn:
        account = get_account(conn, account_id)
    if account is None:
        raise HTTPException(401, "Account not found")
    return Principal(account_id, account["email"], bool(account["is_admin"]), via, account, token)


def reader(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    """Any authenticated caller: a signed-in user or the account's agent key (read endpoints)."""
    return principal


def session_user(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    """A signed-in user (cookie); agent keys may only read or use /api/agent endpoints."""
    if principal.via != "session":
        raise HTTPException(403, "Agent keys may only read, or call /api/agent endpoints; sign in to change this")
    return principal


def admin_user(principal: Annotated[Principal, Depends(session_user)]) -> Principal:
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


def page_params(
    limit: Annotated[int, Query(ge=1, le=500, description="at most 500")] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page:
    return Page(limit, offset)


PageDep = Annotated[Page, Depends(page_params)]


def request_meta(request: Request, principal: Principal | None = None, actor: str | None = None) -> CommandMeta:
    return CommandMeta(
        actor=actor or (principal.actor if principal else "anonymous"),
        request_id=getattr(request.state, "request_id", None),
        account_id=principal.account_id if principal else None,
    )


def dispatch(request: Request, platform: Platform, command: Any, principal: Principal | None = None,
             actor: str | None = None) -> CommandResult:
    """Run a command and wait (bounded) until the projections show its effect (read-your-writes)."""
    result = platform.bus.handle(command, request_meta(request, principal, actor))
    waiter: ReadYourWrites = request.app.state.read_your_writes
    caught_up = waiter.wait(result.touched_accounts, result.position)
    return result if caught_up else dataclasses.replace(result, caught_up=False)


def require(condition: bool, detail: str) -> None:
    if not condition:
        raise Forbidden(detail)
