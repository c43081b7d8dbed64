"""The audit log: every event with its full envelope, indexed for the audit API (filters by account,
aggregate, type and time; either order). Hashes are not copied here: the API joins them from the
chain the store seals (infra/store/chain.py), so this table can be rebuilt without touching the chain."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from projections.base import Projection, page
from projections.envelope import Envelope

metadata = sa.MetaData()
audit_events = sa.Table(
    "rm_audit_events", metadata,
    sa.Column("position", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("account_id", sa.BigInteger, nullable=False),
    sa.Column("event_id", sa.String(36), nullable=False),
    sa.Column("type", sa.String(80), nullable=False),
    sa.Column("aggregate_type", sa.String(80), nullable=False),
    sa.Column("aggregate_id", sa.String(36), nullable=False),
    sa.Column("aggregate_version", sa.BigInteger, nullable=False),
    sa.Column("portfolio_id", sa.BigInteger, nullable=True),
    sa.Column("occurred_at", sa.String(40), nullable=False),
    sa.Column("actor", sa.String(80), nullable=False),
    sa.Column("request_id", sa.String(80), nullable=True),
    sa.Column("schema_version", sa.Integer, nullable=False),
    sa.Column("meta", sa.JSON, nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Index("ix_audit_account_position", "account_id", "position"),
    sa.Index("ix_audit_aggregate", "aggregate_id", "position"),
    sa.Index("ix_audit_portfolio", "portfolio_id", "position"),
)


_INSERT = {
    True: pg_insert(audit_events).on_conflict_do_nothing(index_elements=["position"]),
    False: sqlite_insert(audit_events).on_conflict_do_nothing(index_elements=["position"]),
}


class AuditLogProjection(Projection):
    name = "audit_log"
    metadata = metadata

    batched = True  # one multi-row insert per batch

    def apply(self, conn: Connection, env: Envelope) -> None:
        self.apply_many(conn, [env])

    def apply_many(self, conn: Connection, envs: list[Envelope]) -> None:
        if not envs:
            return
        # idempotent: a rebuild racing a live projector adds nothing twice; one statement, rows as params
        conn.execute(_INSERT[conn.dialect.name == "postgresql"], [_row(env) for env in envs])


def _row(env: Envelope) -> dict[str, Any]:
    d = env.data
    pid = d.get("portfolio_id") if isinstance(d.get("portfolio_id"), int) else None
    return dict(
        position=env.position, account_id=env.account_id if env.account_id is not None else 0,
        event_id=env.event_id, type=env.type, aggregate_type=env.aggregate_type,
        aggregate_id=env.aggregate_id, aggregate_version=env.aggregate_version, portfolio_id=pid,
        occurred_at=env.occurred_at, actor=str(env.meta.get("actor", "")),
        request_id=env.meta.get("request_id"), schema_version=env.schema_version, meta=env.meta, data=d,
    )


def utc_moment(text: str, end_of_day: bool = False) -> str:
    """A date (its start, or its end with `end_of_day`) or an ISO 8601 timestamp (no offset = UTC), as
    a UTC ISO string for comparing with `occurred_at`; ValueError says what is wrong."""
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            moment = datetime.combine(d, time.max if end_of_day else time.min, UTC)
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
        moment = moment.astimezone(UTC)  # year 1 at +01:00 or year 9999 at -01:00: out of range
    except (ValueError, OverflowError):
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD) or an ISO 8601 timestamp") from None
    return moment.isoformat()


@dataclass(frozen=True)
class AuditFilters:
    account_id: int | None  # None: every account (admins)
    aggregate_type: str | None = None
    aggregate_id: str | None = None
    type: str | None = None
    since: str | None = None  # occurred_at >= (ISO, UTC)
    until: str | None = None  # occurred_at <= (ISO, UTC)
    newest_first: bool = True


def envelope_row(r: Any) -> dict[str, Any]:
    return {
        "position": int(r.position), "event_id": r.event_id, "type": r.type,
        "schema_version": int(r.schema_version), "aggregate_type": r.aggregate_type,
        "aggregate_id": r.aggregate_id, "aggregate_version": int(r.aggregate_version),
        "account_id": int(r.account_id), "occurred_at": r.occurred_at, "meta": r.meta, "data": r.data,
    }


def list_audit_events(conn: Connection, f: AuditFilters, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    t = audit_events
    q = sa.select(t)
    if f.account_id is not None:
        q = q.where(t.c.account_id == f.account_id)
    if f.aggregate_type:
        q = q.where(t.c.aggregate_type == f.aggregate_type)
    if f.aggregate_id:
        q = q.where(t.c.aggregate_id == f.aggregate_id)
    if f.type:
        q = q.where(t.c.type == f.type)
    if f.since:
        q = q.where(t.c.occurred_at >= f.since)
    if f.until:
        q = q.where(t.c.occurred_at <= f.until)
    q = q.order_by(t.c.position.desc() if f.newest_first else t.c.position.asc())
    rows, total = page(q, conn, limit, offset)
    return [envelope_row(r) for r in rows], total


def portfolio_events(conn: Connection, aggregate_id: str, portfolio_id: int) -> list[dict[str, Any]]:
    """A portfolio's own events and the risk events about it, oldest first."""
    t = audit_events
    rows = conn.execute(sa.select(t).where(sa.or_(
        t.c.aggregate_id == aggregate_id,
        sa.and_(t.c.portfolio_id == portfolio_id, t.c.aggregate_type == "RiskBook"),
    )).order_by(t.c.position)).all()
    return [envelope_row(r) for r in rows]
