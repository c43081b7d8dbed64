"""Stored answers of commands sent with an `Idempotency-Key` (the HTTP side is `api.acks`)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from infra.store.db import Database, idempotency_keys
from infra.store.eventstore import SqlEventStore

RETENTION_SECONDS = 24 * 3600
# A claim still unanswered after this long belongs to a request whose process died (killed, crashed):
# a retry then looks in the event store for what it recorded instead of waiting for an answer.
LEASE_SECONDS = 600


@dataclass(frozen=True)
class StoredAnswer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class Claim:
    """What `claim` found: `run` (the caller runs the request and stores its answer), `answer` (the
    first answer, to replay), `busy` (the first request is still running), `mismatch` (the key was
    used for another request) or `lost` (the first request's process died before it answered, after
    recording the events at `position`)."""

    outcome: str
    answer: StoredAnswer | None = None
    position: int | None = None


class IdempotencyStore:
    def __init__(self, db: Database, store: SqlEventStore) -> None:
        self.db = db
        self.store = store
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
        head = self.store.max_position()  # the request's events, if any, will come after this
        with self.db.write() as conn:
            if sweep:
                conn.execute(sa.delete(idempotency_keys).where(t.created_at < now - RETENTION_SECONDS))
            inserted = conn.execute(self._insert().values(
                account_id=account_id, key=key, fingerprint=fingerprint, created_at=now, after_position=head,
            ).on_conflict_do_nothing().returning(t.account_id)).first()
            if inserted is not None:
                return Claim("run")
            row = conn.execute(sa.select(idempotency_keys).where(t.account_id == account_id, t.key == key)).one()
            if row.created_at < now - RETENTION_SECONDS:  # an expired key starts afresh
                conn.execute(sa.update(idempotency_keys).where(t.account_id == account_id, t.key == key).values(
                    fingerprint=fingerprint, created_at=now, after_position=head, status=None, headers=None,
                    body=None))
                return Claim("run")
        if row.fingerprint != fingerprint:
            return Claim("mismatch")
        if row.status is None and row.created_at < now - LEASE_SECONDS:
            return self._orphan(account_id, key, row, now)
        if row.status is None:
            return Claim("busy")
        return Claim("answer", StoredAnswer(int(row.status), [(str(k), str(v)) for k, v in row.headers or []],
                                            bytes(row.body or b"")))

    def _orphan(self, account_id: int, key: str, row: Any, now: float) -> Claim:
        """The first request's process died before answering: if it recorded events, say so (`lost`);
        if not, the caller takes the key over and runs the request (unless another retry just did)."""
        position = self.recorded(account_id, key, int(row.after_position))
        if position is not None:
            return Claim("lost", position=position)
        t = idempotency_keys.c
        with self.db.write() as conn:
            taken = conn.execute(sa.update(idempotency_keys).where(
                t.account_id == account_id, t.key == key, t.created_at == row.created_at, t.status.is_(None),
            ).values(created_at=now, after_position=self.store.max_position()).returning(t.key)).first()
        return Claim("run") if taken is not None else Claim("busy")

    def recorded(self, account_id: int, key: str, after: int) -> int | None:
        """The position of the last event a command of `account_id` under `key` stored after `after`."""
        actors = {f"user:{account_id}", f"agent:{account_id}"}
        found = None
        while True:
            batch = self.store.read_plain(after, 1000)
            if not batch:
                return found
            for env in batch:
                if env.meta.get("idempotency_key") == key and env.meta.get("actor") in actors:
                    found = env.position
            after = batch[-1].position

    def finish(self, account_id: int, key: str, answer: StoredAnswer) -> None:
        t = idempotency_keys.c
        with self.db.write() as conn:
            conn.execute(sa.update(idempotency_keys).where(t.account_id == account_id, t.key == key).values(
                status=answer.status, headers=[list(h) for h in answer.headers], body=answer.body))

    def release(self, account_id: int, key: str) -> None:
        """The request's answer is not kept (it handed out a credential): a retry runs it again."""
        t = idempotency_keys.c
        with self.db.write() as conn:
            conn.execute(sa.delete(idempotency_keys).where(t.account_id == account_id, t.key == key,
                                                           t.status.is_(None)))
