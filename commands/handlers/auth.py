"""Login, sessions, passwords and agent keys."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from commands import messages as m
from commands.ports import Mailer
from commands.uow import UnitOfWork
from domain.accounts import Account
from domain.errors import DomainError, NotFound, TooManyRequests, Unauthorized

AGENT_KEY_PREFIX = "zt_"
log = logging.getLogger("tradertape.security")
_GENERIC_LOGIN_ERROR = "Invalid email or password"
_BAD_CODE = "The login link or code is invalid, expired or already used; request a new one"
SIGN_IN_MAIL_DOWN = "The sign-in email could not be sent just now; try again in a minute"


class MailUnavailable(DomainError):
    """The mail server did not take the email (down, refusing or too slow): 503, nothing was sent; asking
    again in a minute is the remedy."""

    status_code = 503


@dataclass(frozen=True)
class OutgoingEmail:
    to: str
    subject: str
    body: str


def send_email(mailer: Mailer, email: OutgoingEmail, detail: str = SIGN_IN_MAIL_DOWN) -> None:
    """Send it now; a mail server that refuses, hangs up or times out is a `MailUnavailable` (503), never
    a 500."""
    try:
        mailer.send(email.to, email.subject, email.body)
    except OSError as exc:  # smtplib's errors, timeouts, refused connections and TLS failures are OSErrors
        log.warning("email_not_sent to=%s reason=%s", email.to, type(exc).__name__)
        raise MailUnavailable(detail) from exc


@dataclass(frozen=True)
class LoginResult:
    account_id: int
    session_token: str
    expires_at: datetime


@dataclass(frozen=True)
class IssuedKey:
    key: str
    prefix: str
    created_at: datetime


def normalize_email(email: str) -> str:
    return email.strip().lower()


def _rate(uow: UnitOfWork, key: str, limit: int) -> None:
    d = uow.deps
    if not d.security.rate_hit(key, d.auth.rate_window_seconds, limit, d.clock.now()):
        raise TooManyRequests("Too many attempts; wait a few minutes and try again")


def request_login_link(cmd: m.RequestLoginLink, uow: UnitOfWork) -> None:
    """Email a one-time link and a 6-digit code. The answer never depends on whether the email is known."""
    d = uow.deps
    email = normalize_email(cmd.email)
    _rate(uow, f"link-ip:{cmd.client_ip}", d.auth.link_requests_per_ip)
    _rate(uow, f"link-email:{email}", d.auth.link_requests_per_email)
    now = d.clock.now()
    token = secrets.token_urlsafe(32)
    otp = f"{secrets.randbelow(1_000_000):06d}"
    expires = now + timedelta(minutes=d.auth.login_code_minutes)
    d.security.create_login_code(email, d.token_hash(token), d.token_hash(f"otp:{email}:{otp}"), expires, now)
    link = f"{d.auth.base_url.rstrip('/')}/link/sign-in?{urlencode({'email': email, 'token': token})}"
    body = (
        "Sign in to TraderTape\n\n"
        f"Open this link to sign in:\n{link}\n\n"
        f"Or enter this code: {otp}\n\n"
        f"The link and the code work once and expire in {d.auth.login_code_minutes} minutes.\n"
        "If you did not ask to sign in, ignore this email.\n"
    )
    send_email(d.mailer, OutgoingEmail(email, f"Your TraderTape sign-in code: {otp}", body))


def _use_code(uow: UnitOfWork, email: str, slot: str, otp_hash: str) -> None:
    """Accept the emailed 6-digit code of `slot` (sign-in: the email; password: "password:" + email), or
    raise. 5 tries per code, and at most `otp_failures_per_day` wrong codes per email in 24 hours, whatever
    they were for: a fresh code every few minutes would otherwise allow thousands of guesses a day."""
    d = uow.deps
    now = d.clock.now()
    failures_key = f"otp-fail:{email}"
    if d.security.rate_count(failures_key, 86400, now) >= d.auth.otp_failures_per_day:
        log.warning("otp_daily_cap email=%s: emailed codes refused for 24 hours", email)
        raise TooManyRequests("Too many wrong codes for this address today: sign in with the link in the "
                              "email, or try a code again tomorrow")
    outcome = d.security.use_login_otp(slot, otp_hash, now, d.auth.otp_max_attempts)
    if outcome in ("wrong", "locked"):
        d.security.rate_hit(failures_key, 86400, 1_000_000, now)
    if outcome == "locked":
        log.warning("otp_locked email=%s", email)
        raise DomainError("Too many wrong codes: this code is locked; request a new one")
    if outcome != "ok":
        raise DomainError(_BAD_CODE)


def _account_for_login(uow: UnitOfWork, email: str, via: str) -> Account:
    """The account for `email`, registering it on first sign-in (idempotent under races)."""
    d = uow.deps
    account_id = d.security.account_id_for_email(email)
    if account_id is None:
        account_id = d.security.claim_email(email, d.ids.next_id("account"))
    acc = uow.load(Account, Account.uuid_for(account_id))
    if acc is None:
        is_admin = email in d.auth.admin_emails
        acc = Account.register(account_id, email, email.split("@")[0], is_admin, via)
    return acc


def _start_session(uow: UnitOfWork, acc: Account, method: str) -> LoginResult:
    d = uow.deps
    now = d.clock.now()
    token = secrets.token_urlsafe(32)
    expires = now + timedelta(days=d.auth.session_days)
    account_id = acc.account_id
    assert account_id is not None
    d.security.create_session(account_id, d.token_hash(token), expires, now)
    acc.logged_in(method)
    uow.save(acc)
    uow.account_id = account_id
    return LoginResult(account_id, token, expires)


def verify_login(cmd: m.VerifyLogin, uow: UnitOfWork) -> LoginResult:
    d = uow.deps
    email = normalize_email(cmd.email)
    _rate(uow, f"verify-ip:{cmd.client_ip}", d.auth.login_attempts_per_ip)
    now = d.clock.now()
    if cmd.token:
        if not d.security.use_login_token(email, d.token_hash(cmd.token), now):
            raise DomainError(_BAD_CODE)
        method = "magic_link"
    elif cmd.otp:
        _use_code(uow, email, email, d.token_hash(f"otp:{email}:{cmd.otp.strip()}"))
        method = "otp"
    else:
        raise DomainError("Give either the token from the link or the 6-digit code")
    acc = _account_for_login(uow, email, method)
    return _start_session(uow, acc, method)


def password_login(cmd: m.PasswordLogin, uow: UnitOfWork) -> LoginResult:
    d = uow.deps
    email = normalize_email(cmd.email)
    _rate(uow, f"login-ip:{cmd.client_ip}", d.auth.login_attempts_per_ip)
    _rate(uow, f"login-email:{email}", d.auth.login_attempts_per_ip)
    account_id = d.security.account_id_for_email(email)
    stored = d.security.password_hash(account_id) if account_id is not None else None
    if stored is None:
        d.passwords.dummy_verify()
        raise Unauthorized(_GENERIC_LOGIN_ERROR)
    if not d.passwords.verify(stored, cmd.password):
        raise Unauthorized(_GENERIC_LOGIN_ERROR)
    assert account_id is not None
    acc = uow.get(Account, Account.uuid_for(account_id), "Account")
    return _start_session(uow, acc, "password")


MIN_PASSWORD = 10  # the API also refuses guessable ones (api/schemas.py)
_PASSWORD_SLOT = "password:"  # noqa: S105 (a key prefix, not a password)


def _check_length(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise DomainError(f"The password needs at least {MIN_PASSWORD} characters")


def request_password_code(cmd: m.RequestPasswordCode, uow: UnitOfWork) -> OutgoingEmail | None:
    """A code that sets (signed in) or resets (signed out) the password: returns the email to send (the
    caller sends it: the reset route after it answered, so that neither its status nor its timing tells
    whether the address has an account), or None for an email without an account."""
    d = uow.deps
    email = normalize_email(cmd.email)
    _rate(uow, f"pwcode-ip:{cmd.client_ip}", d.auth.link_requests_per_ip)
    _rate(uow, f"pwcode-email:{email}", d.auth.link_requests_per_email)
    if d.security.account_id_for_email(email) is None:
        return None
    now = d.clock.now()
    otp = f"{secrets.randbelow(1_000_000):06d}"
    expires = now + timedelta(minutes=d.auth.login_code_minutes)
    d.security.create_login_code(_PASSWORD_SLOT + email, d.token_hash(f"pwtoken:{secrets.token_urlsafe(32)}"),
                                 d.token_hash(f"pwd:{email}:{otp}"), expires, now)
    return OutgoingEmail(email, "Your TraderTape password code", (
        "Someone (hopefully you) asked to set or reset the password of your TraderTape account.\n\n"
        f"The code: {otp}\n\n"
        f"It works once and expires in {d.auth.login_code_minutes} minutes. If you did not ask, ignore this "
        "email: your password stays as it is.\n"))


def _new_password(uow: UnitOfWork, acc: Account, password: str, keep_hash: str | None) -> list[str]:
    """Store the new password; every session but `keep_hash` is signed out (returns their token hashes)."""
    d = uow.deps
    account_id = acc.account_id
    assert account_id is not None
    now = d.clock.now()
    d.security.set_password_hash(account_id, d.passwords.hash(password), now)
    acc.password_changed()
    uow.save(acc)
    return d.security.revoke_account_sessions(account_id, now, keep_hash=keep_hash)


def set_password(cmd: m.SetPassword, uow: UnitOfWork) -> list[str]:
    """Set or change the password with a fresh emailed code (a stolen session alone cannot); the other
    sessions are signed out. Returns the signed-out sessions' token hashes. Guesses of the current
    password share the password sign-in's budget of the address (a stolen session guesses no faster)."""
    d = uow.deps
    _check_length(cmd.password)
    acc = uow.get(Account, Account.uuid_for(cmd.account_id), "Account")
    email = normalize_email(acc.email)
    stored = d.security.password_hash(cmd.account_id)
    if stored is not None:
        if not cmd.current_password:
            raise DomainError("current_password is required to change an existing password")
        _rate(uow, f"login-email:{email}", d.auth.login_attempts_per_ip)
        if not d.passwords.verify(stored, cmd.current_password):
            raise DomainError("current_password is wrong")
    if not cmd.otp:
        raise DomainError("Ask for a code with POST /api/auth/password/code and send it as 'otp'")
    _use_code(uow, email, _PASSWORD_SLOT + email, d.token_hash(f"pwd:{email}:{cmd.otp.strip()}"))
    return _new_password(uow, acc, cmd.password, cmd.keep_session_hash)


def reset_password(cmd: m.ResetPassword, uow: UnitOfWork) -> list[str]:
    """A forgotten password: the emailed code sets a new one and signs out every session."""
    d = uow.deps
    _check_length(cmd.password)
    email = normalize_email(cmd.email)
    _rate(uow, f"verify-ip:{cmd.client_ip}", d.auth.login_attempts_per_ip)
    _use_code(uow, email, _PASSWORD_SLOT + email, d.token_hash(f"pwd:{email}:{cmd.otp.strip()}"))
    account_id = d.security.account_id_for_email(email)
    if account_id is None:  # a code exists only for a known email
        raise DomainError(_BAD_CODE)
    acc = uow.get(Account, Account.uuid_for(account_id), "Account")
    return _new_password(uow, acc, cmd.password, None)


def revoke_sessions(cmd: m.RevokeSessions, uow: UnitOfWork) -> list[str]:
    d = uow.deps
    return d.security.revoke_account_sessions(cmd.account_id, d.clock.now(), keep_hash=cmd.keep_session_hash,
                                              id_prefixes=cmd.session_ids)


def logout(cmd: m.Logout, uow: UnitOfWork) -> None:
    d = uow.deps
    account_id = d.security.revoke_session(d.token_hash(cmd.session_token), d.clock.now())
    if account_id is None:
        return
    acc = uow.load(Account, Account.uuid_for(account_id))
    if acc is not None:
        acc.logged_out()
        uow.save(acc)
        uow.account_id = account_id


def issue_agent_key(cmd: m.IssueAgentKey, uow: UnitOfWork) -> IssuedKey:
    """Generate (or regenerate, revoking the old one) the account's agent key; shown once."""
    d = uow.deps
    acc = uow.get(Account, Account.uuid_for(cmd.account_id), "Account")
    key = AGENT_KEY_PREFIX + secrets.token_urlsafe(32)
    prefix = key[:10]
    now = d.clock.now()
    d.security.set_agent_key(cmd.account_id, prefix, d.token_hash(key), now)
    acc.issue_agent_key(prefix)
    uow.save(acc)
    return IssuedKey(key, prefix, now)


def revoke_agent_key(cmd: m.RevokeAgentKey, uow: UnitOfWork) -> None:
    d = uow.deps
    acc = uow.get(Account, Account.uuid_for(cmd.account_id), "Account")
    if not d.security.revoke_agent_key(cmd.account_id, d.clock.now()):
        raise NotFound("No agent key to revoke")
    if acc.agent_key_prefix is not None:
        acc.revoke_agent_key()
        uow.save(acc)


def grant_admin(cmd: m.GrantAdmin, uow: UnitOfWork) -> None:
    acc = uow.get(Account, Account.uuid_for(cmd.account_id), "Account")
    acc.grant_admin()
    uow.save(acc)

