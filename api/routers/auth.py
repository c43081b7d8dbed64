"""Accounts and login: magic link + OTP, password, sessions, agent keys, admin user list."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

from fastapi import BackgroundTasks, Request, Response
from fastapi import Path as PathParam

from api.deps import (
    SESSION_COOKIE,
    AdminUser,
    PageDep,
    PlatformDep,
    Reader,
    SessionUser,
    account_from_store,
    dispatch,
    resource_router,
    set_session_cookie,
)
from api.errors import ErrorDetail
from api.guards import outside_io
from api.public.accounts import MessagePublic, SignedOutPublic
from api.public.base import answers
from api.revocation import close_revoked
from api.schemas import (
    AgentKeyCreated,
    AgentKeyPublic,
    BrokerStatus,
    MagicLinkRequest,
    PasswordCodeRequest,
    PasswordLoginRequest,
    ResetPasswordRequest,
    SessionPublic,
    SetPasswordRequest,
    UserPublic,
    VerifyLinkRequest,
)
from api.security_log import security_event
from api.signin import client_ip, login
from commands import messages as m
from commands.bus import CommandResult
from commands.handlers.auth import LoginResult, OutgoingEmail, send_email
from commands.ports import Mailer
from domain.errors import DomainError, NotFound
from infra.bootstrap import Platform
from projections.accounts import get_account, list_accounts
from projections.broker import broker_status as read_broker_status

router = resource_router("/api/auth", ["auth"])
log = logging.getLogger("tradertape.security")
_MAIL_DOWN: dict[int | str, dict[str, Any]] = {503: {
    "model": ErrorDetail,
    "description": "The mail server did not take the email just now (nothing was sent): try again in a minute"}}
_CODE_MAIL_DOWN = "The email with the code could not be sent just now; try again in a minute"


def _broker_status(platform: Platform, account_id: int) -> BrokerStatus:
    # The agent pushes the Kite access token (agent API); an expired one reads as disconnected.
    with platform.db.read() as conn:
        return BrokerStatus(**read_broker_status(conn, account_id))


def _user(platform: Platform, account: dict[str, Any]) -> UserPublic:
    return UserPublic(
        id=account["id"], email=account["email"], name=account["name"], is_admin=account["is_admin"],
        created_at=account["created_at"], has_password=account["has_password"],
        broker=_broker_status(platform, account["id"]),
    )


def _signed_in(platform: Platform, response: Response, result: CommandResult) -> UserPublic:
    login: LoginResult = result.value
    set_session_cookie(response, platform, login.session_token, platform.settings.session_days * 86400)
    account = None
    if result.caught_up:
        with platform.db.read() as conn:
            account = get_account(conn, login.account_id)
    if account is None:  # the accounts read model has not applied the login (a first one: no row yet)
        account = account_from_store(platform, login.account_id)
    if account is None:
        raise NotFound("Account not found")
    return _user(platform, account)


@router.post("/magic-link", **answers(MessagePublic), responses=_MAIL_DOWN,
             summary="Email a one-time sign-in link and 6-digit code")
@outside_io  # sends the email before it answers
def magic_link(body: MagicLinkRequest, request: Request, platform: PlatformDep) -> dict[str, str]:
    """The same answer whether or not the address has an account (an account is made at first sign-in);
    rate-limited per address and client. A 503 when the mail server does not take the email (every address
    gets one, so this tells nothing about accounts)."""
    dispatch(request, platform, m.RequestLoginLink(str(body.email), client_ip(request)))
    return {"detail": "If the address can receive email, a sign-in link and code are on their way. "
                      "They expire in 15 minutes."}


@router.post("/verify-link", response_model=UserPublic, summary="Sign in with the link's token or the code")
def verify_link(body: VerifyLinkRequest, request: Request, response: Response, platform: PlatformDep) -> UserPublic:
    """`token` (from the link) or `otp` (the code); sets the `kite_session` cookie and answers the user. A wrong
    or used code is a 400; rate-limited."""
    command = m.VerifyLogin(str(body.email), body.token, body.otp, client_ip(request))
    result = login(request, platform, command, str(body.email), "otp" if body.otp else "link")
    return _signed_in(platform, response, result)


@router.post("/password-login", response_model=UserPublic, summary="Sign in with email and password")
def password_login(body: PasswordLoginRequest, request: Request, response: Response,
                   platform: PlatformDep) -> UserPublic:
    """Sets the `kite_session` cookie; a wrong password (or an account without one) is a 401; rate-limited."""
    result = login(request, platform, m.PasswordLogin(str(body.email), body.password, client_ip(request)),
                   str(body.email), "password")
    return _signed_in(platform, response, result)


def _signed_out(request: Request, account_id: int, hashes: list[str], reason: str) -> None:
    """After sessions were revoked: forget them here, close their tick connections, log it."""
    request.app.state.principals.forget_account(account_id)
    for digest in hashes:
        close_revoked(request.app, ("session", digest), reason)
    if hashes:
        security_event(request, "sessions_revoked", account=account_id, count=len(hashes), reason=reason)


@router.post("/password/code", **answers(MessagePublic), responses=_MAIL_DOWN,
             summary="Email a 6-digit code to set or change the password (needed by POST /api/auth/password)")
@outside_io  # sends the email before it answers
def password_code(request: Request, user: SessionUser, platform: PlatformDep) -> dict[str, str]:
    """To your account's email; the code expires in 15 minutes. A 503 when the mail server does not take it."""
    outgoing: OutgoingEmail | None = dispatch(
        request, platform, m.RequestPasswordCode(user.email, client_ip(request)), user).value
    if outgoing is not None:
        send_email(platform.mailer, outgoing, _CODE_MAIL_DOWN)
    return {"detail": "A 6-digit code is on its way to your email; it expires in 15 minutes"}


@router.post("/password", **answers(SignedOutPublic),
             summary="Set, or change, the password: needs the emailed code (and the current password to change "
                     "one); signs out every other session")
def set_password(body: SetPasswordRequest, request: Request, user: SessionUser,
                 platform: PlatformDep) -> dict[str, Any]:
    """At least 10 characters and not easy to guess (else a 422 saying why); answers how many other sessions
    were signed out."""
    keep = platform.token_hash(user.session_token) if user.session_token else None
    cmd = m.SetPassword(user.account_id, body.password, body.current_password, body.otp, keep)
    revoked: list[str] = dispatch(request, platform, cmd, user).value
    _signed_out(request, user.account_id, revoked, "Password changed")
    security_event(request, "password_changed", account=user.account_id)
    return {"detail": "Password saved; your other sessions were signed out", "sessions_signed_out": len(revoked)}


def _send_after_answer(mailer: Mailer, outgoing: OutgoingEmail) -> None:
    """The password-reset email, sent once the answer is out: a mail failure is logged, never shown (the
    answer must not tell whether the address has an account)."""
    try:
        mailer.send(outgoing.to, outgoing.subject, outgoing.body)
    except Exception as exc:  # whatever went wrong: the answer was already the same for everyone
        log.warning("password_code_not_sent email=%s reason=%s", outgoing.to, type(exc).__name__)


@router.post("/password-reset/code", **answers(MessagePublic),
             summary="Forgot the password: email a 6-digit code to reset it")
def password_reset_code(body: PasswordCodeRequest, request: Request, platform: PlatformDep,
                        background: BackgroundTasks) -> dict[str, str]:
    """The same answer, in the same time, whether or not the address has an account: the email goes out
    after the answer (a mail failure is logged, not shown); rate-limited."""
    outgoing: OutgoingEmail | None = dispatch(
        request, platform, m.RequestPasswordCode(str(body.email), client_ip(request))).value
    if outgoing is not None:
        background.add_task(_send_after_answer, platform.mailer, outgoing)
    return {"detail": "If the address has an account, a 6-digit code is on its way. It expires in 15 minutes."}


@router.post("/password-reset", **answers(SignedOutPublic),
             summary="Set a new password with the emailed code; signs out every session")
def password_reset(body: ResetPasswordRequest, request: Request, platform: PlatformDep) -> dict[str, Any]:
    """A wrong or expired code is a 400; rate-limited."""
    cmd = m.ResetPassword(str(body.email), body.otp, body.password, client_ip(request))
    try:
        result = dispatch(request, platform, cmd)
    except DomainError as exc:
        security_event(request, "password_reset_failed", email=str(body.email), status=exc.status_code)
        raise
    account_id = platform.security.account_id_for_email(str(body.email).strip().lower())
    if account_id is not None:
        _signed_out(request, account_id, result.value, "Password reset")
    security_event(request, "password_reset", email=str(body.email))
    return {"detail": "Password reset and every session signed out; sign in with the new password",
            "sessions_signed_out": len(result.value)}


@router.get("/sessions", response_model=list[SessionPublic], summary="Your signed-in sessions")
def list_sessions(user: SessionUser, platform: PlatformDep) -> list[SessionPublic]:
    """Each with its public id (never its token), when it started and expires, and which is this one."""
    current = platform.token_hash(user.session_token) if user.session_token else None
    rows = platform.security.list_sessions(user.account_id, time.time())
    return [SessionPublic(id=r.token_hash[:SESSION_ID_CHARS], created_at=datetime.fromtimestamp(r.created_at, UTC),
                          expires_at=datetime.fromtimestamp(r.expires_at, UTC), current=r.token_hash == current)
            for r in rows]


SESSION_ID_CHARS = 16  # a session's public id: the start of its token's keyed hash (never the token)


@router.delete("/sessions/{session_id}", status_code=204, summary="Sign out one of your sessions")
def revoke_session(request: Request, user: SessionUser, platform: PlatformDep,
                   session_id: str = PathParam(pattern=r"^[0-9a-f]{16}$")) -> Response:
    """Its tick connections close at once (4401 "Signed out from another session")."""
    revoked: list[str] = dispatch(request, platform, m.RevokeSessions(user.account_id, (session_id,)), user).value
    if not revoked:
        raise NotFound("No such session")
    _signed_out(request, user.account_id, revoked, "Signed out from another session")
    return Response(status_code=204)


@router.post("/sessions/revoke-others", **answers(SignedOutPublic),
             summary="Sign out everywhere else (every session but this one)")
def revoke_other_sessions(request: Request, user: SessionUser, platform: PlatformDep) -> dict[str, int]:
    """Answers how many sessions were signed out."""
    keep = platform.token_hash(user.session_token) if user.session_token else None
    revoked: list[str] = dispatch(request, platform, m.RevokeSessions(user.account_id, None, keep), user).value
    _signed_out(request, user.account_id, revoked, "Signed out from another session")
    return {"sessions_signed_out": len(revoked)}


@router.post("/logout", **answers(MessagePublic), summary="Sign out this session")
def logout(request: Request, response: Response, platform: PlatformDep) -> dict[str, str]:
    """Clears the cookie and closes this session's tick connections; without a session it just answers."""
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        dispatch(request, platform, m.Logout(token))
        security_event(request, "session_revoked", reason="sign-out")
        request.app.state.principals.forget_session(token)
        close_revoked(request.app, ("session", platform.token_hash(token)), "Signed out")
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax",
                           secure=platform.settings.cookie_secure)
    return {"detail": "Signed out"}


@router.get("/me", response_model=UserPublic, summary="Who is signed in")
def me(user: Reader, platform: PlatformDep) -> UserPublic:
    """The account, whether it has a password, and its broker connection."""
    return _user(platform, user.account)


@router.get("/status", response_model=BrokerStatus, summary="Broker (Kite) session status")
def broker_status(user: Reader, platform: PlatformDep) -> BrokerStatus:
    """Whether a Kite session is connected, for which Kite user, until when, and how it was obtained."""
    return _broker_status(platform, user.account_id)


def _ts(v: float | None) -> datetime | None:
    return None if v is None else datetime.fromtimestamp(v, UTC)


@router.get("/agent-key", response_model=AgentKeyPublic, summary="Your agent key's prefix and use (never the key)")
def get_agent_key(user: SessionUser, platform: PlatformDep) -> AgentKeyPublic:
    """No key yet is a 404."""
    info = platform.security.agent_key_info(user.account_id)
    if info is None:
        raise NotFound("No agent key; POST /api/auth/agent-key to generate one")
    created = _ts(info.created_at)
    assert created is not None
    return AgentKeyPublic(prefix=info.prefix, created_at=created, last_used_at=_ts(info.last_used_at))


@router.post("/agent-key", response_model=AgentKeyCreated, status_code=201,
             summary="Generate or regenerate the agent key (the old one stops working); shown once")
def create_agent_key(request: Request, user: SessionUser, platform: PlatformDep) -> AgentKeyCreated:
    """The full key is in this answer only; a previous key stops working at once (its tick connections close
    with 4401)."""
    issued = dispatch(request, platform, m.IssueAgentKey(user.account_id), user).value
    request.app.state.principals.forget_account(user.account_id)
    close_revoked(request.app, ("agent_key", user.account_id), "Agent key replaced by a new one")
    security_event(request, "agent_key_replaced", account=user.account_id)
    return AgentKeyCreated(key=issued.key, prefix=issued.prefix, created_at=issued.created_at)


@router.delete("/agent-key", status_code=204, summary="Revoke your agent key")
def revoke_agent_key(request: Request, user: SessionUser, platform: PlatformDep) -> Response:
    """It stops working at once, and its tick connections close (4401 "Agent key revoked")."""
    dispatch(request, platform, m.RevokeAgentKey(user.account_id), user)
    request.app.state.principals.forget_account(user.account_id)
    close_revoked(request.app, ("agent_key", user.account_id), "Agent key revoked")
    security_event(request, "agent_key_revoked", account=user.account_id)
    return Response(status_code=204)


@router.get("/admin/users", response_model=list[UserPublic], include_in_schema=False)
def admin_users(user: AdminUser, page: PageDep, response: Response, platform: PlatformDep) -> list[UserPublic]:
    with platform.db.read() as conn:
        rows, total = list_accounts(conn, page.limit, page.offset)
    response.headers["X-Total-Count"] = str(total)
    return [UserPublic(id=r["id"], email=r["email"], name=r["name"], is_admin=r["is_admin"],
                       created_at=r["created_at"], has_password=r["has_password"]) for r in rows]
