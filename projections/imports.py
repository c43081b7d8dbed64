"""Read models of broker imports: batches (with their reports), imported trades, ledger entries, mutual-fund
transactions, CAS statements and corporate actions; and, per account, the store position of the last
change the analytics snapshot must reflect (`rm_analytics_changes`), bumped by every import batch that
imported something, corporate action and model-portfolio fill, close or day close."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from projections.base import Projection, page
from projections.envelope import Envelope

metadata = sa.MetaData()

import_batches = sa.Table(
    "rm_import_batches", metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("account_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("files", sa.JSON, nullable=False),
    sa.Column("report", sa.JSON, nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
)
imported_trades = sa.Table(
    "rm_imported_trades", metadata,
    sa.Column("trade_key", sa.String(200), primary_key=True),
    sa.Column("account_id", sa.BigInteger, primary_key=True),
    sa.Column("batch_id", sa.BigInteger, nullable=False),
    sa.Column("trade_id", sa.String(64), nullable=False),
    sa.Column("order_id", sa.String(64), nullable=False),
    sa.Column("symbol", sa.String(64), nullable=False),
    sa.Column("isin", sa.String(16), nullable=False),
    sa.Column("exchange", sa.String(8), nullable=False),
    sa.Column("segment", sa.String(8), nullable=False),
    sa.Column("series", sa.String(8), nullable=False),
    sa.Column("trade_date", sa.String(10), nullable=False),
    sa.Column("executed_at", sa.String(32), nullable=False),
    sa.Column("side", sa.String(4), nullable=False),
    sa.Column("quantity", sa.Float, nullable=False),
    sa.Column("price", sa.Float, nullable=False),
    sa.Index("ix_rm_imported_trades_account", "account_id", "trade_date"),
)
ledger_entries = sa.Table(
    "rm_ledger_entries", metadata,
    sa.Column("entry_key", sa.String(64), primary_key=True),
    sa.Column("account_id", sa.BigInteger, primary_key=True),
    sa.Column("batch_id", sa.BigInteger, nullable=False),
    sa.Column("posting_date", sa.String(10), nullable=False),
    sa.Column("particulars", sa.Text, nullable=False),
    sa.Column("voucher_type", sa.String(64), nullable=False),
    sa.Column("cost_center", sa.String(64), nullable=False),
    sa.Column("debit", sa.Float, nullable=False),
    sa.Column("credit", sa.Float, nullable=False),
    sa.Column("balance", sa.Float),
    sa.Column("category", sa.String(24), nullable=False),
    sa.Index("ix_rm_ledger_entries_account", "account_id", "posting_date"),
)
mf_transactions = sa.Table(
    "rm_mf_transactions", metadata,
    sa.Column("txn_key", sa.String(64), primary_key=True),
    sa.Column("account_id", sa.BigInteger, primary_key=True),
    sa.Column("batch_id", sa.BigInteger, nullable=False),
    sa.Column("folio", sa.String(64), nullable=False),
    sa.Column("amc", sa.String(200), nullable=False),
    sa.Column("scheme", sa.String(300), nullable=False),
    sa.Column("isin", sa.String(16), nullable=False),
    sa.Column("date", sa.String(10), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("txn_type", sa.String(32), nullable=False),
    sa.Column("amount", sa.Float),
    sa.Column("units", sa.Float),
    sa.Column("nav", sa.Float),
    sa.Column("balance", sa.Float),
)
cas_statements = sa.Table(
    "rm_cas_statements", metadata,
    sa.Column("statement_key", sa.String(64), primary_key=True),
    sa.Column("account_id", sa.BigInteger, primary_key=True),
    sa.Column("batch_id", sa.BigInteger, nullable=False),
    sa.Column("file_type", sa.String(16), nullable=False),
    sa.Column("period_from", sa.String(10), nullable=False),
    sa.Column("period_to", sa.String(10), nullable=False),
    sa.Column("valuations", sa.JSON, nullable=False),
    sa.Column("holdings", sa.JSON, nullable=False),
)
corporate_actions = sa.Table(
    "rm_corporate_actions", metadata,
    sa.Column("action_key", sa.String(64), primary_key=True),
    sa.Column("account_id", sa.BigInteger, primary_key=True),
    sa.Column("symbol", sa.String(64), nullable=False),
    sa.Column("ex_date", sa.String(10), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("ratio_new", sa.Float, nullable=False),
    sa.Column("ratio_old", sa.Float, nullable=False),
)
analytics_changes = sa.Table(
    "rm_analytics_changes", metadata,
    sa.Column("account_id", sa.BigInteger, primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
)


def _copy(env: Envelope, table: sa.Table) -> dict[str, Any]:
    names = {c.name for c in table.columns}
    return {k: v for k, v in env.data.items() if k in names}


def _insert_many(conn: Connection, table: sa.Table, names: list[str], rows: list[tuple[Any, ...]]) -> None:
    """INSERT of many rows through the driver's executemany (names: columns of `table`, in row order)."""
    for n in names:
        if n not in table.c:
            raise KeyError(f"{table.name} has no column {n!r}")
    quote = conn.dialect.identifier_preparer.quote
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    conn.exec_driver_sql(f"INSERT INTO {quote(table.name)} ({', '.join(quote(n) for n in names)}) "
                         f"VALUES ({', '.join([mark] * len(names))})", rows)


class ImportsProjection(Projection):
    name = "imports"
    metadata = metadata

    @staticmethod
    def changed(conn: Connection, account_id: int | None, position: int) -> None:
        """The account's analytics must reflect everything up to `position`."""
        if account_id is None:
            return
        t = analytics_changes
        done = conn.execute(sa.update(t).where(t.c.account_id == account_id).values(position=position)).rowcount
        if not done:
            conn.execute(sa.insert(t), dict(account_id=account_id, position=position))

    def on_ImportBatchRecorded(self, conn: Connection, env: Envelope) -> None:
        d = env.data
        conn.execute(sa.insert(import_batches), dict(id=d["batch_id"], account_id=d["account_id"], kind=d["kind"],
                                                      files=d["files"], report=d["report"], created_at=env.occurred_at))
        if d["report"].get("imported") or d["report"].get("statement_imported"):  # not for a re-upload
            self.changed(conn, d["account_id"], env.position)

    def on_TradesImported(self, conn: Connection, env: Envelope) -> None:
        """The event's trades in one executemany of plain tuples (SQLAlchemy's per-row parameter handling
        took three times as long as the inserts)."""
        d = env.data
        head = (d["account_id"], d["batch_id"], d["trade_date"])
        _insert_many(conn, imported_trades, ["account_id", "batch_id", "trade_date", *d["columns"]],
                     [(*head, *r) for r in d["rows"]])

    def on_LedgerEntryImported(self, conn: Connection, env: Envelope) -> None:
        conn.execute(sa.insert(ledger_entries), dict(**_copy(env, ledger_entries)))

    def on_MfTransactionImported(self, conn: Connection, env: Envelope) -> None:
        conn.execute(sa.insert(mf_transactions), dict(**_copy(env, mf_transactions)))

    def on_CasStatementImported(self, conn: Connection, env: Envelope) -> None:
        conn.execute(sa.insert(cas_statements), dict(**_copy(env, cas_statements)))

    def on_CorporateActionRecorded(self, conn: Connection, env: Envelope) -> None:
        conn.execute(sa.insert(corporate_actions), dict(**_copy(env, corporate_actions)))
        self.changed(conn, env.data["account_id"], env.position)

    # Model portfolios feed the analytics journal too (closed trades, fills, daily equity).
    def on_FillRecorded(self, conn: Connection, env: Envelope) -> None:
        self.changed(conn, env.account_id, env.position)

    def on_PositionClosed(self, conn: Connection, env: Envelope) -> None:
        self.changed(conn, env.account_id, env.position)

    def on_PositionReduced(self, conn: Connection, env: Envelope) -> None:  # a partial exit: a closed lot
        self.changed(conn, env.account_id, env.position)

    def on_DayClosed(self, conn: Connection, env: Envelope) -> None:
        self.changed(conn, env.account_id, env.position)

    def on_PortfolioReset(self, conn: Connection, env: Envelope) -> None:
        self.changed(conn, env.account_id, env.position)


def change_position(conn: Connection, account_id: int) -> int:
    """The position the account's analytics must reflect (0: nothing to analyse yet)."""
    t = analytics_changes
    v = conn.execute(sa.select(t.c.position).where(t.c.account_id == account_id)).scalar()
    return int(v or 0)


def list_batches(conn: Connection, account_id: int, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    t = import_batches
    q = sa.select(t).where(t.c.account_id == account_id).order_by(t.c.id.desc())
    rows, total = page(q, conn, limit, offset)
    return [{**r.report, "created_at": r.created_at} for r in rows], total
