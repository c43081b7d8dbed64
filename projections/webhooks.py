"""Inbound alert hooks read model: one row per hook that was not deleted (never its token or hash)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from projections.base import Projection, page, update_by
from projections.envelope import Envelope

metadata = sa.MetaData()

hooks = sa.Table(
    "rm_webhooks", metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("aggregate_id", sa.String(36), nullable=False, unique=True),
    sa.Column("account_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("portfolio_id", sa.BigInteger, nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("token_prefix", sa.String(40), nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("token_rotated_at", sa.String(40)),
    sa.Column("alerts", sa.BigInteger, nullable=False),
    sa.Column("signals", sa.BigInteger, nullable=False),
    sa.Column("last_alert_at", sa.String(40)),
)

_COLUMNS = ("id", "portfolio_id", "source", "name", "token_prefix", "created_at", "token_rotated_at", "alerts",
            "signals", "last_alert_at")


class WebhooksProjection(Projection):
    name = "webhooks"
    metadata = metadata

    def on_WebhookCreated(self, conn: Connection, env: Envelope) -> None:
        d = env.data
        conn.execute(sa.insert(hooks), dict(
            id=d["hook_id"], aggregate_id=env.aggregate_id, account_id=d["account_id"],
            portfolio_id=d["portfolio_id"], source=d["source"], name=d["name"], token_prefix=d["token_prefix"],
            created_at=d["at"], alerts=0, signals=0))

    def on_WebhookTokenRotated(self, conn: Connection, env: Envelope) -> None:
        update_by(conn, hooks, "aggregate_id", env.aggregate_id, token_prefix=env.data["token_prefix"],
                  token_rotated_at=env.data["at"])

    def on_WebhookDeleted(self, conn: Connection, env: Envelope) -> None:
        conn.execute(sa.delete(hooks).where(hooks.c.aggregate_id == env.aggregate_id))

    def on_WebhookAlertReceived(self, conn: Connection, env: Envelope) -> None:
        d = env.data
        conn.execute(sa.update(hooks).where(hooks.c.aggregate_id == env.aggregate_id).values(
            alerts=hooks.c.alerts + 1, signals=hooks.c.signals + len(d["signal_ids"]) + len(d["exit_signal_ids"]),
            last_alert_at=d["at"]))


def list_webhooks(conn: Connection, account_id: int, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    query = sa.select(*(hooks.c[c] for c in _COLUMNS)).where(hooks.c.account_id == account_id).order_by(hooks.c.id)
    rows, total = page(query, conn, limit, offset)
    return [dict(r._mapping) for r in rows], total


def get_webhook(conn: Connection, hook_id: int, account_id: int) -> dict[str, Any] | None:
    row = conn.execute(sa.select(*(hooks.c[c] for c in _COLUMNS))
                       .where(hooks.c.id == hook_id, hooks.c.account_id == account_id)).first()
    return dict(row._mapping) if row is not None else None
