"""Which aggregates already exist in the event store: one indexed query per chunk of ids over the
`eventsourcing` recorder's table (the same database as the read models)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import sqlalchemy as sa

from infra.store.db import Database

_CHUNK = 900  # below SQLite's default limit on bound parameters


class SqlRecordIndex:
    def __init__(self, db: Database, table: str = "stored_events") -> None:
        self.db = db
        self.table = table

    def existing(self, aggregate_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
        ids = list(aggregate_ids)
        found: set[uuid.UUID] = set()
        if not ids:
            return found
        sqlite = self.db.is_sqlite
        col = sa.column("originator_id", sa.String if sqlite else sa.Uuid)  # SQLite keeps uuid.hex
        tbl = sa.table(self.table, col)
        with self.db.read() as conn:
            for i in range(0, len(ids), _CHUNK):
                chunk = ids[i:i + _CHUNK]
                values: list[object] = [u.hex for u in chunk] if sqlite else list(chunk)
                rows = conn.execute(sa.select(col).select_from(tbl).where(col.in_(values)).distinct()).all()
                for (v,) in rows:
                    found.add(v if isinstance(v, uuid.UUID) else uuid.UUID(str(v)))
        return found
