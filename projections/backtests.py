"""The backtest-run list: one row per recorded run (summaries; the detail lives in the analytics store)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from projections.base import Projection, page
from projections.envelope import Envelope

metadata = sa.MetaData()
backtest_runs = sa.Table(
    "rm_backtest_runs", metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("aggregate_id", sa.String(36), nullable=False, unique=True),
    sa.Column("account_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("summary", sa.JSON, nullable=False),
    sa.Column("diagnostics", sa.JSON, nullable=False),
    sa.Column("monthly_returns", sa.JSON, nullable=False),
    sa.Column("open_positions", sa.JSON, nullable=False),
    sa.Column("data_fingerprint", sa.String(128), nullable=False),
    sa.Column("detail_ref", sa.String(64), nullable=False),
)

_FIELDS = ("params", "summary", "diagnostics", "monthly_returns", "open_positions", "data_fingerprint",
           "detail_ref")


class BacktestRunsProjection(Projection):
    name = "backtest_runs"
    metadata = metadata

    def on_BacktestCompleted(self, conn: Connection, env: Envelope) -> None:
        d = env.data
        conn.execute(sa.insert(backtest_runs), dict(
            id=d["run_id"], aggregate_id=env.aggregate_id, account_id=d["account_id"],
            created_at=env.occurred_at, **{k: d[k] for k in _FIELDS},
        ))

    def on_BacktestRunDeleted(self, conn: Connection, env: Envelope) -> None:
        conn.execute(sa.delete(backtest_runs).where(backtest_runs.c.aggregate_id == env.aggregate_id))


def _public(row: Any) -> dict[str, Any]:
    return {"id": int(row.id), "params": row.params, "status": "completed", "summary": row.summary,
            "data_fingerprint": row.data_fingerprint, "created_at": row.created_at}


def list_backtest_runs(conn: Connection, account_id: int, limit: int,
                       offset: int) -> tuple[list[dict[str, Any]], int]:
    """The account's runs, newest first, without per-trade detail."""
    t = backtest_runs
    query = (sa.select(t.c.id, t.c.params, t.c.summary, t.c.data_fingerprint, t.c.created_at)
             .where(t.c.account_id == account_id).order_by(t.c.id.desc()))
    rows, total = page(query, conn, limit, offset)
    return [_public(r) for r in rows], total


def get_backtest_run(conn: Connection, run_id: int, account_id: int) -> dict[str, Any] | None:
    """One of the account's runs (None for a run of another account: its existence does not leak)."""
    t = backtest_runs
    row = conn.execute(sa.select(t).where(t.c.id == run_id, t.c.account_id == account_id)).first()
    if row is None:
        return None
    out = _public(row)
    out.update(diagnostics=row.diagnostics, monthly_returns=row.monthly_returns,
               open_positions=row.open_positions, detail_ref=row.detail_ref)
    return out
