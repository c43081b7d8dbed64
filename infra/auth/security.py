"""Security adapters: argon2id passwords, keyed token hashes, and the SQL security store."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from argon2 import PasswordHasher as _Argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from infra.store.db import (
    Database,
    agent_keys,
    email_accounts,
    epoch,
    kite_login_states,
    login_codes,
    passwords,
    rate_hits,
    sessions,
)


class Argon2Passwords:
    def __init__(self) -> None:
        self._ph = _Argon2()  # argon2id with the library's recommended parameters
        self._dummy = self._ph.hash("not-a-real-password")

    def hash(self, password: str) -> str:
        return self._ph.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._ph.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def dummy_verify(self) -> None:
        self.verify(self._dummy, "wrong-password")


class HmacTokenHasher:
    """HMAC-SHA256 with the current secret key: a leaked table alone cannot be used to forge lookups."""

    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(("token-hash:" + secret).encode()).digest()

    def __call__(self, token: str) -> str:
        return hmac.new(self._key, token.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class SessionInfo:
    account_id: int
    expires_at: float


@dataclass(frozen=True)
class SessionRow:
    token_hash: str
    created_at: float
    expires_at: float


@dataclass(frozen=True)
class AgentKeyInfo:
    prefix: str
    created_at: float
    last_used_at: float | None


# A rate hit's statements, built once: building and cache-keying them per call happened inside the write
# transaction (an alert's, at 1,000 a minute, holds SQLite's one writer turn for it).
_RATE_EXPIRE = sa.delete(rate_hits).where(rate_hits.c.key == sa.bindparam("key_"),
                                          rate_hits.c.at < sa.bindparam("before_"))
_RATE_COUNT = sa.select(sa.func.count()).select_from(rate_hits).where(rate_hits.c.key == sa.bindparam("key_"))
_RATE_ADD = sa.insert(rate_hits).values(key=sa.bindparam("key_"), at=sa.bindparam("at_"))


class SqlSecurityStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- rate limits -------------------------------------------------------------------------
    def rate_hit(self, key: str, window_seconds: int, limit: int, now: datetime) -> bool:
        t = epoch(now)
        with self.db.write() as conn:
            conn.execute(_RATE_EXPIRE, {"key_": key, "before_": t - window_seconds})
            if conn.execute(_RATE_COUNT, {"key_": key}).scalar_one() >= limit:
                return False
            conn.execute(_RATE_ADD, {"key_": key, "at_": t})
            return True

    def rate_count(self, key: str, window_seconds: int, now: datetime) -> int:
        t = epoch(now)
        with self.db.read() as conn:
            return int(conn.execute(
                sa.select(sa.func.count()).select_from(rate_hits)
                .where(rate_hits.c.key == key, rate_hits.c.at >= t - window_seconds)
            ).scalar_one())

    # --- accounts by email -----------------------------------------------------------------------
    def claim_email(self, email: str, account_id: int) -> int:
        with self.db.write() as conn:
            existing = conn.execute(
                sa.select(email_accounts.c.account_id).where(email_accounts.c.email == email)
            ).scalar_one_or_none()
            if existing is not None:
                return int(existing)
            conn.execute(sa.insert(email_accounts).values(email=email, account_id=account_id))
            return account_id

    def account_id_for_email(self, email: str) -> int | None:
        with self.db.read() as conn:
            v = conn.execute(
                sa.select(email_accounts.c.account_id).where(email_accounts.c.email == email)
            ).scalar_one_or_none()
        return None if v is None else int(v)

    # --- login codes -------------------------------------------------------------------------------
    def create_login_code(self, email: str, token_hash: str, otp_hash: str, expires_at: datetime,
                          now: datetime) -> None:
        t = epoch(now)
        with self.db.write() as conn:
            # Only the newest code of an email is live: older ones stop working.
            conn.execute(sa.update(login_codes).where(login_codes.c.email == email, login_codes.c.used_at.is_(None))
                         .values(used_at=t))
            # Housekeeping rides on sign-in requests: expired codes, sessions and rate-limit hits go.
            conn.execute(sa.delete(login_codes).where(login_codes.c.expires_at < t - 86400))
            conn.execute(sa.delete(sessions).where(sessions.c.expires_at < t - 86400))
            conn.execute(sa.delete(rate_hits).where(rate_hits.c.at < t - 86400))
            conn.execute(sa.insert(login_codes).values(
                email=email, token_hash=token_hash, otp_hash=otp_hash, created_at=t,
                expires_at=epoch(expires_at), attempts=0,
            ))

    def use_login_token(self, email: str, token_hash: str, now: datetime) -> bool:
        t = epoch(now)
        with self.db.write() as conn:
            res = conn.execute(
                sa.update(login_codes)
                .where(login_codes.c.email == email, login_codes.c.token_hash == token_hash,
                       login_codes.c.used_at.is_(None), login_codes.c.expires_at > t)
                .values(used_at=t)
            )
            return res.rowcount == 1

    def login_token_live(self, email: str, token_hash: str, now: datetime) -> bool:
        """Whether the emailed link's token would still sign in (unused, unexpired), without using it: the
        page the link opens says at once when it is dead."""
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(login_codes.c.id)
                .where(login_codes.c.email == email, login_codes.c.token_hash == token_hash,
                       login_codes.c.used_at.is_(None), login_codes.c.expires_at > epoch(now)).limit(1)
            ).first()
            return row is not None

    def use_login_otp(self, email: str, otp_hash: str, now: datetime, max_attempts: int) -> str:
        t = epoch(now)
        with self.db.write() as conn:
            row = conn.execute(
                sa.select(login_codes.c.id, login_codes.c.otp_hash, login_codes.c.attempts)
                .where(login_codes.c.email == email, login_codes.c.used_at.is_(None), login_codes.c.expires_at > t)
                .order_by(login_codes.c.id.desc()).limit(1)
            ).first()
            if row is None:
                return "none"
            if row.attempts >= max_attempts:
                return "locked"
            if hmac.compare_digest(row.otp_hash, otp_hash):
                conn.execute(sa.update(login_codes).where(login_codes.c.id == row.id).values(used_at=t))
                return "ok"
            attempts = row.attempts + 1
            values: dict[str, object] = {"attempts": attempts}
            if attempts >= max_attempts:
                values["used_at"] = t  # locked for good: a new code must be requested
            conn.execute(sa.update(login_codes).where(login_codes.c.id == row.id).values(**values))
            return "locked" if attempts >= max_attempts else "wrong"

    # --- sessions -------------------------------------------------------------------------------
    def create_session(self, account_id: int, token_hash: str, expires_at: datetime, now: datetime) -> None:
        with self.db.write() as conn:
            conn.execute(sa.insert(sessions).values(
                token_hash=token_hash, account_id=account_id, created_at=epoch(now), expires_at=epoch(expires_at)
            ))

    def revoke_session(self, token_hash: str, now: datetime) -> int | None:
        with self.db.write() as conn:
            row = conn.execute(
                sa.select(sessions.c.account_id).where(sessions.c.token_hash == token_hash,
                                                       sessions.c.revoked_at.is_(None))
            ).first()
            if row is None:
                return None
            conn.execute(sa.update(sessions).where(sessions.c.token_hash == token_hash).values(revoked_at=epoch(now)))
            return int(row.account_id)

    def revoke_account_sessions(self, account_id: int, now: datetime, keep_hash: str | None = None,
                                id_prefixes: Sequence[str] | None = None) -> list[str]:
        t = epoch(now)
        live = sa.and_(sessions.c.account_id == account_id, sessions.c.revoked_at.is_(None),
                       sessions.c.expires_at > t)
        with self.db.write() as conn:
            hashes = [str(h) for h in conn.execute(sa.select(sessions.c.token_hash).where(live)).scalars()]
            if id_prefixes is not None:
                hashes = [h for h in hashes if any(h.startswith(p) for p in id_prefixes if len(p) >= 8)]
            hashes = [h for h in hashes if h != keep_hash]
            for i in range(0, len(hashes), 500):
                conn.execute(sa.update(sessions).where(sessions.c.token_hash.in_(hashes[i:i + 500]))
                             .values(revoked_at=t))
        return hashes

    def list_sessions(self, account_id: int, now: float) -> list[SessionRow]:
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(sessions.c.token_hash, sessions.c.created_at, sessions.c.expires_at)
                .where(sessions.c.account_id == account_id, sessions.c.revoked_at.is_(None),
                       sessions.c.expires_at > now)
                .order_by(sessions.c.created_at.desc())
            ).all()
        return [SessionRow(r.token_hash, float(r.created_at), float(r.expires_at)) for r in rows]

    def live_credentials(self, session_hashes: Iterable[str], key_hashes: Iterable[str],
                         now: float) -> set[str]:
        """Which of these session token hashes and agent key hashes still sign in (one query per kind;
        for connections that outlive their credential's check, e.g. tick WebSockets)."""
        sessions_in, keys_in = sorted(set(session_hashes)), sorted(set(key_hashes))
        live: set[str] = set()
        with self.db.read() as conn:
            for i in range(0, len(sessions_in), 500):
                live.update(conn.execute(sa.select(sessions.c.token_hash).where(
                    sessions.c.token_hash.in_(sessions_in[i:i + 500]), sessions.c.revoked_at.is_(None),
                    sessions.c.expires_at > now)).scalars())
            for i in range(0, len(keys_in), 500):
                live.update(conn.execute(sa.select(agent_keys.c.key_hash).where(
                    agent_keys.c.key_hash.in_(keys_in[i:i + 500]), agent_keys.c.revoked_at.is_(None))).scalars())
        return live

    def session(self, token_hash: str, now: float, sliding_seconds: float) -> SessionInfo | None:
        """The live session for a token hash, extending its expiry (sliding) at most once a minute."""
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(sessions.c.account_id, sessions.c.expires_at)
                .where(sessions.c.token_hash == token_hash, sessions.c.revoked_at.is_(None),
                       sessions.c.expires_at > now)
            ).first()
        if row is None:
            return None
        new_expiry = now + sliding_seconds
        if new_expiry - row.expires_at > 60:
            with self.db.write() as conn:
                conn.execute(sa.update(sessions).where(sessions.c.token_hash == token_hash)
                             .values(expires_at=new_expiry))
            return SessionInfo(int(row.account_id), new_expiry)
        return SessionInfo(int(row.account_id), float(row.expires_at))

    # --- Kite login states ------------------------------------------------------------------------
    def create_kite_state(self, account_id: int, state_hash: str, expires_at: datetime, now: datetime) -> None:
        t = epoch(now)
        with self.db.write() as conn:
            conn.execute(sa.delete(kite_login_states).where(kite_login_states.c.expires_at < t - 86400))
            conn.execute(sa.insert(kite_login_states).values(state_hash=state_hash, account_id=account_id,
                                                             created_at=t, expires_at=epoch(expires_at)))

    def use_kite_state(self, account_id: int, state_hash: str, now: datetime) -> bool:
        """Accept a Kite login's state once, for the account that started it, before it expires."""
        t = epoch(now)
        with self.db.write() as conn:
            res = conn.execute(sa.update(kite_login_states).where(
                kite_login_states.c.state_hash == state_hash, kite_login_states.c.account_id == account_id,
                kite_login_states.c.used_at.is_(None), kite_login_states.c.expires_at > t).values(used_at=t))
            return res.rowcount == 1

    # --- passwords ------------------------------------------------------------------------------
    def password_hash(self, account_id: int) -> str | None:
        with self.db.read() as conn:
            v = conn.execute(
                sa.select(passwords.c.hash).where(passwords.c.account_id == account_id)
            ).scalar_one_or_none()
        return None if v is None else str(v)

    def set_password_hash(self, account_id: int, password_hash: str, now: datetime) -> None:
        with self.db.write() as conn:
            updated = conn.execute(sa.update(passwords).where(passwords.c.account_id == account_id)
                                   .values(hash=password_hash, updated_at=epoch(now))).rowcount
            if not updated:
                conn.execute(sa.insert(passwords).values(account_id=account_id, hash=password_hash,
                                                         updated_at=epoch(now)))

    # --- agent keys -----------------------------------------------------------------------------
    def set_agent_key(self, account_id: int, prefix: str, key_hash: str, now: datetime) -> None:
        with self.db.write() as conn:
            conn.execute(sa.delete(agent_keys).where(agent_keys.c.account_id == account_id))
            conn.execute(sa.insert(agent_keys).values(account_id=account_id, prefix=prefix, key_hash=key_hash,
                                                      created_at=epoch(now)))

    def revoke_agent_key(self, account_id: int, now: datetime) -> bool:
        with self.db.write() as conn:
            res = conn.execute(sa.update(agent_keys)
                               .where(agent_keys.c.account_id == account_id, agent_keys.c.revoked_at.is_(None))
                               .values(revoked_at=epoch(now)))
            return res.rowcount == 1

    def agent_key_account(self, key_hash: str, now: float) -> int | None:
        """The account a live agent key belongs to; records last use (at most every 10 s)."""
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(agent_keys.c.account_id, agent_keys.c.last_used_at)
                .where(agent_keys.c.key_hash == key_hash, agent_keys.c.revoked_at.is_(None))
            ).first()
        if row is None:
            return None
        if row.last_used_at is None or now - row.last_used_at > 10:
            with self.db.write() as conn:
                conn.execute(sa.update(agent_keys).where(agent_keys.c.account_id == row.account_id)
                             .values(last_used_at=now))
        return int(row.account_id)

    def agent_key_info(self, account_id: int) -> AgentKeyInfo | None:
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(agent_keys.c.prefix, agent_keys.c.created_at, agent_keys.c.last_used_at)
                .where(agent_keys.c.account_id == account_id, agent_keys.c.revoked_at.is_(None))
            ).first()
        return None if row is None else AgentKeyInfo(row.prefix, row.created_at, row.last_used_at)
