"""Read-model snapshots for rebuild/incremental comparisons."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from infra.store.db import Database
from projections.registry import all_projections


def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    out: dict[str, list[tuple[Any, ...]]] = {}
    with db.read() as conn:
        for p in all_projections():
            for table in p.metadata.sorted_tables:
                pk = list(table.primary_key.columns) or list(table.columns)
                rows = conn.execute(sa.select(table).order_by(*pk)).all()
                out[table.name] = [tuple(r) for r in rows]
    return out
