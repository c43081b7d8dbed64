"""Projection machinery: projections turn envelopes into read-model rows, tracking their position
in the same transaction so they resume, deduplicate and rebuild safely."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from projections.envelope import Envelope

tracking_metadata = sa.MetaData()

# One row per (projection, shard). A shard is "store" for the embedded source, or "kafka:<partition>"
# for the Kafka source; `position` is the highest store position applied from that shard and
# `kafka_offset` the last consumed offset there.
projection_tracking = sa.Table(
    "projection_tracking", tracking_metadata,
    sa.Column("projection", sa.String(64), primary_key=True),
    sa.Column("shard", sa.String(32), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("kafka_offset", sa.BigInteger),
)

# Events a projection could not apply (streams/runner.py): set aside with the error so that one bad event
# never stops a read model for everyone; `tradertape projections retry-failed` applies them again.
# `envelope` is the event as JSON (ASCII-escaped: any stored string fits).
projection_dead_letters = sa.Table(
    "projection_dead_letters", tracking_metadata,
    sa.Column("projection", sa.String(64), primary_key=True),
    sa.Column("position", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("shard", sa.String(32), nullable=False),
    sa.Column("event_id", sa.String(36), nullable=False),
    sa.Column("event_type", sa.String(100), nullable=False),
    sa.Column("account_id", sa.BigInteger),
    sa.Column("occurred_at", sa.String(40), nullable=False),
    sa.Column("error", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("first_failed_at", sa.Float, nullable=False),
    sa.Column("last_failed_at", sa.Float, nullable=False),
    sa.Column("envelope", sa.Text, nullable=False),
)


class Projection:
    """Base class: subclasses set `name`, define tables on their own `metadata`, and `on_<EventType>`
    methods taking (conn, envelope)."""

    name: ClassVar[str]
    metadata: ClassVar[sa.MetaData]
    # True: the runner hands over a batch's envelopes at once (`apply_many`), after the other projections
    # applied them; only for a projection that reads no other projection's tables.
    batched: ClassVar[bool] = False

    def __init__(self) -> None:
        self._handlers: dict[str, Callable[[Connection, Envelope], None]] = {}
        for attr in dir(self):
            if attr.startswith("on_"):
                self._handlers[attr[3:]] = getattr(self, attr)

    @property
    def event_types(self) -> frozenset[str]:
        """The event types it has a handler for: applying any other is a no-op."""
        return frozenset(self._handlers)

    def apply(self, conn: Connection, env: Envelope) -> None:
        handler = self._handlers.get(env.type)
        if handler is not None:
            handler(conn, env)

    def apply_many(self, conn: Connection, envs: list[Envelope]) -> None:
        for env in envs:
            self.apply(conn, env)

    def create(self, conn: Connection) -> None:
        self.metadata.create_all(conn)

    def drop(self, conn: Connection) -> None:
        self.metadata.drop_all(conn)
        conn.execute(sa.delete(projection_tracking).where(projection_tracking.c.projection == self.name))
        conn.execute(sa.delete(projection_dead_letters).where(projection_dead_letters.c.projection == self.name))


# Statements on the hot paths are built once and reused with bound values: building and cache-keying a
# SQLAlchemy statement per call cost about 120 us (measured on a wide table), more than running it.


@functools.cache
def _update_stmt(table: sa.Table, key: str, columns: tuple[str, ...], returning: tuple[str, ...]) -> Any:
    stmt = sa.update(table).where(table.c[key] == sa.bindparam("key_")).values(
        {c: sa.bindparam(f"v_{c}") for c in columns})
    return stmt.returning(*(table.c[c] for c in returning)) if returning else stmt


def update_by(conn: Connection, table: sa.Table, key: str, value: Any, returning: tuple[str, ...] = (),
              **values: Any) -> Any:
    """UPDATE `table` SET **values WHERE `key` = value (optionally RETURNING columns); the result."""
    stmt = _update_stmt(table, key, tuple(sorted(values)), returning)
    return conn.execute(stmt, {"key_": value, **{f"v_{c}": v for c, v in values.items()}})


@functools.cache
def _select_stmt(table: sa.Table, key: str) -> Any:
    return sa.select(table).where(table.c[key] == sa.bindparam("key_"))


def row_by(conn: Connection, table: sa.Table, key: str, value: Any) -> Any:
    """The row of `table` whose `key` is value (or None)."""
    return conn.execute(_select_stmt(table, key), {"key_": value}).first()


_READ_TRACKING = sa.select(projection_tracking).where(
    projection_tracking.c.projection.in_(sa.bindparam("names", expanding=True)))
_WRITE_TRACKING = sa.update(projection_tracking).where(
    projection_tracking.c.projection.in_(sa.bindparam("names", expanding=True)),
    projection_tracking.c.shard == sa.bindparam("shard_"),
).values(position=sa.bindparam("position_"), kafka_offset=sa.bindparam("offset_"))


def read_tracking(conn: Connection, names: list[str]) -> dict[tuple[str, str], tuple[int, int | None]]:
    rows = conn.execute(_READ_TRACKING, {"names": names}).all()
    return {(r.projection, r.shard): (int(r.position), r.kafka_offset) for r in rows}


def write_tracking(conn: Connection, changed: dict[tuple[str, str], tuple[int, int | None]],
                   existed: set[tuple[str, str]]) -> None:
    """Record (position, kafka offset) per (projection, shard): one UPDATE for every projection that
    reached the same point on a shard (the usual case: all of them), one INSERT for the new rows."""
    same: dict[tuple[str, int, int | None], list[str]] = {}
    new = []
    for (projection, shard), (position, offset) in changed.items():
        if (projection, shard) in existed:
            same.setdefault((shard, position, offset), []).append(projection)
        else:
            new.append({"projection": projection, "shard": shard, "position": position, "kafka_offset": offset})
    for (shard, position, offset), names in same.items():
        conn.execute(_WRITE_TRACKING, {"names": sorted(names), "shard_": shard, "position_": position,
                                       "offset_": offset})
    if new:
        conn.execute(sa.insert(projection_tracking), new)


def page(query: sa.Select[Any], conn: Connection, limit: int, offset: int) -> tuple[list[Any], int]:
    """Rows of one page and the total count. A page that is not full tells the total by itself (most
    lists of most users fit one page); only a full page, or an empty one past the start, is counted."""
    rows = conn.execute(query.limit(limit).offset(offset)).all()
    if len(rows) < limit and (rows or offset == 0):
        return list(rows), offset + len(rows)
    total = conn.execute(sa.select(sa.func.count()).select_from(query.order_by(None).subquery())).scalar_one()
    return list(rows), int(total)
