"""Research jobs: one row per job (status, progress, summary, where its result tables are)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from projections.base import Projection, page
from projections.envelope import Envelope

metadata = sa.MetaData()
research_jobs = sa.Table(
    "rm_research_jobs", metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("account_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("done", sa.BigInteger, nullable=False),
    sa.Column("total", sa.BigInteger, nullable=False),
    sa.Column("executor", sa.String(200), nullable=True),
    sa.Column("summary", sa.JSON, nullable=True),
    sa.Column("results_ref", sa.String(64), nullable=True),
    sa.Column("best_run_id", sa.BigInteger, nullable=True),
    sa.Column("run_ids", sa.JSON, nullable=True),
    sa.Column("error", sa.String(600), nullable=True),
    sa.Column("runner", sa.String(120), nullable=True),  # the process running it (research_heartbeats)
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
)


class ResearchJobsProjection(Projection):
    name = "research_jobs"
    metadata = metadata

    def create(self, conn: Connection) -> None:
        super().create(conn)
        # a database from before the `runner` column: add it (older jobs have none: any runner may fail them)
        columns = {c["name"] for c in sa.inspect(conn).get_columns(research_jobs.name)}
        if "runner" not in columns:
            conn.execute(sa.text(f"ALTER TABLE {research_jobs.name} ADD COLUMN runner VARCHAR(120)"))

    def _update(self, conn: Connection, env: Envelope, **values: Any) -> None:
        t = research_jobs
        conn.execute(sa.update(t).where(t.c.id == env.data["job_id"]).values(updated_at=env.occurred_at, **values))

    def on_ResearchJobSubmitted(self, conn: Connection, env: Envelope) -> None:
        d = env.data
        conn.execute(sa.insert(research_jobs), dict(
            id=d["job_id"], account_id=d["account_id"], kind=d["kind"], status="queued", params=d["params"],
            done=0, total=d["total"], runner=d.get("runner") or None, created_at=env.occurred_at,
            updated_at=env.occurred_at,
        ))

    def on_ResearchJobStarted(self, conn: Connection, env: Envelope) -> None:
        self._update(conn, env, status="running", executor=env.data["executor"])

    def on_ResearchJobProgressed(self, conn: Connection, env: Envelope) -> None:
        self._update(conn, env, done=env.data["done"], total=env.data["total"])

    def on_ResearchJobCompleted(self, conn: Connection, env: Envelope) -> None:
        d = env.data
        t = research_jobs
        conn.execute(sa.update(t).where(t.c.id == d["job_id"]).values(
            status="done", done=t.c.total, summary=d["summary"], results_ref=d["results_ref"],
            best_run_id=d["best_run_id"], run_ids=d["run_ids"], updated_at=env.occurred_at))

    def on_ResearchJobFailed(self, conn: Connection, env: Envelope) -> None:
        self._update(conn, env, status="failed", error=env.data["reason"])

    def on_ResearchJobCancelled(self, conn: Connection, env: Envelope) -> None:
        self._update(conn, env, status="cancelled")

    def on_ResearchJobDeleted(self, conn: Connection, env: Envelope) -> None:
        conn.execute(sa.delete(research_jobs).where(research_jobs.c.id == env.data["job_id"]))


def _public(row: Any) -> dict[str, Any]:
    total = int(row.total)
    progress = 1.0 if row.status == "done" else (round(int(row.done) / total, 4) if total else 0.0)
    return {"id": int(row.id), "kind": row.kind, "status": row.status, "progress": progress,
            "done": int(row.done), "total": total, "params": row.params, "executor": row.executor,
            "summary": row.summary, "best_run_id": row.best_run_id, "run_ids": row.run_ids or [],
            "error": row.error, "created_at": row.created_at, "updated_at": row.updated_at,
            "results_ref": row.results_ref}


def active_research_jobs(conn: Connection) -> list[tuple[int, int, str | None]]:
    """Every queued or running job: (account id, job id, runner)."""
    t = research_jobs
    rows = conn.execute(sa.select(t.c.account_id, t.c.id, t.c.runner).where(t.c.status.in_(("queued", "running"))))
    return [(int(r.account_id), int(r.id), r.runner) for r in rows]


def list_research_jobs(conn: Connection, account_id: int, limit: int, offset: int,
                       kind: str | None = None) -> tuple[list[dict[str, Any]], int]:
    """The account's jobs, newest first."""
    t = research_jobs
    query = sa.select(t).where(t.c.account_id == account_id).order_by(t.c.id.desc())
    if kind is not None:
        query = query.where(t.c.kind == kind)
    rows, total = page(query, conn, limit, offset)
    return [_public(r) for r in rows], total


def get_research_job(conn: Connection, job_id: int, account_id: int) -> dict[str, Any] | None:
    """One of the account's jobs (None for another account's: its existence does not leak)."""
    t = research_jobs
    row = conn.execute(sa.select(t).where(t.c.id == job_id, t.c.account_id == account_id)).first()
    return None if row is None else _public(row)
