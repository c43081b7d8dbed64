"""Stored answers of commands sent with an `Idempotency-Key` (the HTTP side is `api.acks`)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from infra.db import Database, idempotency_keys

RETENTION_SECONDS = 24 * 3600


@dataclass(frozen=True)
class StoredAnswer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class Claim:
    """What `claim` found: `run` (the caller runs the request and stores its answer), `answer` (the
    first answer, to replay), `busy` (the first request is still running) or `mismatch` (the key was
    used for another request)."""

    outcome: str
    answer: StoredAnswer | None = None


class IdempotencyStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._claims = 0
        self._lock = threading.Lock()

    def _insert(self) -> Any:
        dialect = sqlite if self.db.is_sqlite else postgresql
        return dialect.insert(idempotency_keys)

    def claim(self, account_id: int, key: str, fingerprint: str, now: float) -> Claim:
        t = idempotency_keys.c
        with self._lock:
            self._claims += 1
            sweep = self._claims % 200 == 1
        with self.db.write() as conn:
            if sweep:
                conn.execute(sa.delete(idempotency_keys).where(t.created_at < now - RETENTION_SECONDS))
            inserted = conn.execute(self._insert().values(
                account_id=account_id, key=key, fingerprint=fingerprint, created_at=now,
            ).on_conflict_do_nothing().returning(t.account_id)).first()
            if inserted is not None:
                return Claim("run")
            row = conn.execute(sa.select(idempotency_keys).where(t.account_id == account_id, t.key == key)).one()
            if row.created_at < now - RETENTION_SECONDS:  # an expired key starts afresh
                conn.execute(sa.update(idempotency_keys).where(t.account_id == account_id, t.key == key).values(
                    fingerprint=fingerprint, created_at=now, status=None, headers=None, body=None))
                return Claim("run")
        if row.fingerprint != fingerprint:
            return Claim("mismatch")
        if row.status is None:
            return Claim("busy")
        return Claim("answer", StoredAnswer(int(row.status), [(str(k), str(v)) for k, v in row.headers or []],
                                            bytes(row.body or b"")))

    def finish(self, account_id: int, key: str, answer: StoredAnswer) -> None:
        t = idempotency_keys.c
        with self.db.write() as conn:
            conn.execute(sa.update(idempotency_keys).where(t.account_id == account_id, t.key == key).values(
                status=answer.status, headers=[list(h) for h in answer.headers], body=answer.body))

    def abandon(self, account_id: int, key: str) -> None:
        """The request ended without an answer (an error escaped): a retry may run it again."""
        t = idempotency_keys.c
        with self.db.write() as conn:
            conn.execute(sa.delete(idempotency_keys).where(t.account_id == account_id, t.key == key,
                                                           t.status.is_(None)))
