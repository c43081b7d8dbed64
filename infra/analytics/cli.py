"""`tradertape analytics query "SQL"`: read-only SQL over the analytics tables (every account's snapshot,
or one account's with --account), printed as a table or as JSON lines."""

from __future__ import annotations

import argparse
import json
from decimal import Decimal

import duckdb
import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from domain.money import format_number
from infra.analytics.store import TABLES, AnalyticsStore
from infra.bootstrap import bootstrap
from infra.config.settings import Settings
from projections.imports import analytics_changes


def run_query(store: AnalyticsStore, sql: str, account_id: int | None = None) -> tuple[list[str], list[tuple]]:  # type: ignore[type-arg]
    """Columns and rows of one read-only statement (a SELECT) over the analytics views."""
    probe = duckdb.connect()
    try:
        statements = probe.extract_statements(sql)
    finally:
        probe.close()
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        raise SystemExit("analytics query runs exactly one read-only statement (SELECT ... or WITH ... SELECT)")
    if account_id is None:
        with store.db.read() as conn:
            accounts = [int(a) for a in conn.execute(sa.select(analytics_changes.c.account_id)).scalars()]
    else:
        accounts = [account_id]
    snaps = [store.snapshot(a) for a in accounts]
    with store.connect(snaps) as con:
        cur = con.execute(sql)
        cols = [d[0] for d in cur.description]
        return cols, cur.fetchall()


def cell(value: object) -> str:
    """A table cell for people: fractional numbers (amounts, prices) with two places in Indian grouping
    (1,30,13,928.67); whole numbers (ids, years, counts) as they are; JSON output keeps raw values."""
    if value is None:
        return ""
    if isinstance(value, float | Decimal):
        return format_number(value, 2)
    return str(value)


def query(args: argparse.Namespace) -> int:
    platform = bootstrap(Settings())
    store = AnalyticsStore(platform.db, platform.settings.analytics_dir / "accounts")
    try:
        cols, rows = run_query(store, args.sql, args.account)
    except duckdb.Error as exc:
        print(f"error: {exc}")
        return 2
    if args.json:
        for r in rows:
            print(json.dumps(dict(zip(cols, r, strict=True)), default=str))
        return 0
    table = Table(*cols)
    for r in rows[: args.max_rows]:
        table.add_row(*(cell(v) for v in r))
    console = Console()
    console.print(table)
    if len(rows) > args.max_rows:
        console.print(f"... {len(rows) - args.max_rows} more rows (use --json for all)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("analytics", help="analytics over the DuckDB/Parquet read models")
    asub = p.add_subparsers(dest="analytics_cmd", required=True)
    q = asub.add_parser("query", help=f"read-only SQL over the tables {', '.join(TABLES)}")
    q.add_argument("sql")
    q.add_argument("--account", type=int, help="only this account's snapshot")
    q.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    q.add_argument("--max-rows", type=int, default=200)
    q.set_defaults(func=query)
