"""The analytics store: per-account Parquet snapshots of the trade journal, FIFO lots, realized P&L, ledger,
mutual-fund transactions and holdings, and model-portfolio daily equity, queried with DuckDB.

Single writer, many readers, without a shared DuckDB database file:
- A snapshot is a folder of immutable Parquet files, `<analytics dir>/accounts/<account>/<position>/`, built
  from the operational read models (the projections keep those transactionally) and published by
  atomically replacing the account's `CURRENT` pointer file. Readers (any API process, the CLI) open an
  in-memory DuckDB connection over the files `CURRENT` names: they never see a half-written snapshot.
- A snapshot knows the store position it reflects. `rm_analytics_changes` (bumped in the same transaction
  as every import batch, corporate action and portfolio fill/close/day close) says which position the
  account's analytics must reflect; a read that finds the snapshot older rebuilds it first, under an
  exclusive file lock per account (one writer at a time, across processes; the others wait and then use
  the fresh snapshot). A user therefore always reads their own imports.
- Old snapshot folders are removed after a new one is published (the previous one is kept for readers
  still on it).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import threading
import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

from domain.pnl import Action, Fill, Match, match_fifo, price_factor
from domain.status import PositionStatus
from infra.runtime.heap import collector_paused
from infra.runtime.workgate import WorkGate
from infra.store.db import Database
from projections.imports import (
    cas_statements,
    change_position,
    corporate_actions,
    imported_trades,
    ledger_entries,
    mf_transactions,
)
from projections.portfolios.queries import account_portfolio_rows, equity_rows, position_rows
from projections.strategies import strategy_names

# What a snapshot holds and how it is computed: bump it when either changes, so snapshots built before are
# not read (they lie in the previous version's folder, and the first read builds the account's anew).
# 2: the pnl_daily table; intraday charges per order and apart from delivery charges.
# 3: charges rounded half-up per component; the unmatched (oversold) sells and the corporate actions.
SNAPSHOT_FORMAT = 3
TABLES = ("trades", "realized", "lots", "pnl_daily", "ledger", "mf_transactions", "mf_holdings", "demat_holdings",
          "equity", "unmatched", "actions")

_SCHEMAS: dict[str, pa.Schema] = {
    "trades": pa.schema([
        ("account_id", pa.int64()), ("source", pa.string()), ("portfolio_id", pa.int64()), ("strategy", pa.string()),
        ("trade_key", pa.string()), ("trade_id", pa.string()), ("order_id", pa.string()), ("exchange", pa.string()),
        ("symbol", pa.string()), ("isin", pa.string()), ("trade_date", pa.date32()), ("executed_at", pa.string()),
        ("side", pa.string()), ("quantity", pa.float64()), ("price", pa.float64()), ("value", pa.float64()),
        ("charges", pa.float64()),
    ]),
    "realized": pa.schema([
        ("account_id", pa.int64()), ("source", pa.string()), ("portfolio_id", pa.int64()), ("strategy", pa.string()),
        ("symbol", pa.string()), ("sell_key", pa.string()), ("buy_date", pa.date32()), ("sell_date", pa.date32()),
        ("quantity", pa.float64()), ("buy_price", pa.float64()), ("sell_price", pa.float64()),
        ("buy_value", pa.float64()), ("sell_value", pa.float64()), ("gross_pnl", pa.float64()),
        ("charges", pa.float64()), ("net_pnl", pa.float64()), ("holding_days", pa.int32()), ("term", pa.string()),
    ]),
    "lots": pa.schema([
        ("account_id", pa.int64()), ("symbol", pa.string()), ("isin", pa.string()), ("exchange", pa.string()),
        ("buy_key", pa.string()), ("buy_date", pa.date32()), ("quantity", pa.float64()), ("price", pa.float64()),
        ("cost", pa.float64()), ("charges", pa.float64()),
    ]),
    "pnl_daily": pa.schema([
        ("source", pa.string()), ("strategy", pa.string()), ("symbol", pa.string()), ("sell_date", pa.date32()),
        ("trades", pa.int64()), ("quantity", pa.float64()), ("buy_value", pa.float64()),
        ("sell_value", pa.float64()), ("gross_pnl", pa.float64()), ("charges", pa.float64()),
        ("net_pnl", pa.float64()), ("wins", pa.int64()), ("losses", pa.int64()),
    ]),
    "ledger": pa.schema([
        ("account_id", pa.int64()), ("posting_date", pa.date32()), ("particulars", pa.string()),
        ("voucher_type", pa.string()), ("debit", pa.float64()), ("credit", pa.float64()), ("balance", pa.float64()),
        ("category", pa.string()),
    ]),
    "mf_transactions": pa.schema([
        ("account_id", pa.int64()), ("folio", pa.string()), ("amc", pa.string()), ("scheme", pa.string()),
        ("isin", pa.string()), ("date", pa.date32()), ("description", pa.string()), ("type", pa.string()),
        ("amount", pa.float64()), ("units", pa.float64()), ("nav", pa.float64()), ("balance", pa.float64()),
    ]),
    "mf_holdings": pa.schema([
        ("account_id", pa.int64()), ("folio", pa.string()), ("amc", pa.string()), ("scheme", pa.string()),
        ("isin", pa.string()), ("date", pa.date32()), ("units", pa.float64()), ("nav", pa.float64()),
        ("cost", pa.float64()), ("value", pa.float64()),
    ]),
    "demat_holdings": pa.schema([
        ("account_id", pa.int64()), ("isin", pa.string()), ("symbol", pa.string()), ("name", pa.string()),
        ("date", pa.date32()), ("quantity", pa.float64()), ("price", pa.float64()), ("value", pa.float64()),
    ]),
    "unmatched": pa.schema([
        ("symbol", pa.string()), ("sell_key", pa.string()), ("trade_id", pa.string()), ("sell_date", pa.date32()),
        ("quantity", pa.float64()),
    ]),
    "actions": pa.schema([
        ("symbol", pa.string()), ("ex_date", pa.date32()), ("kind", pa.string()), ("price_factor", pa.float64()),
    ]),
    "equity": pa.schema([
        ("account_id", pa.int64()), ("portfolio_id", pa.int64()), ("strategy", pa.string()), ("mode", pa.string()),
        ("day", pa.date32()), ("cash", pa.float64()), ("equity", pa.float64()),
    ]),
}

IMPORTED = "imported"
ROW_GROUP = 65536


def _day(s: str | None) -> date | None:
    return date.fromisoformat(s[:10]) if s else None


def _columns(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pydict({f.name: [r.get(f.name) for r in rows] for f in schema}, schema=schema)


# ---------------------------------------------------------------------------------------------- building


def _imported(conn: sa.Connection, account_id: int) -> tuple[pa.Table, pa.Table, pa.Table, pa.Table, pa.Table]:
    """The imported trades, their FIFO matches and open lots, built column by column (a million trades are
    a million tuples, never a million dicts)."""
    t = imported_trades.c
    trows = conn.execute(sa.select(t.trade_key, t.trade_id, t.order_id, t.exchange, t.symbol, t.isin, t.trade_date,
                                   t.executed_at, t.side, t.quantity, t.price)
                         .where(t.account_id == account_id)).all()
    n = len(trows)
    keys, tids, oids, exchanges, symbols, isins, days, execs, sides, qtys, prices = (
        [list(c) for c in zip(*trows, strict=True)] if trows else [[] for _ in range(11)])
    qtys = [float(q) for q in qtys]
    prices = [float(p) for p in prices]
    fills = [Fill(k, sym, day, f"{ex}|{tid:>24}", side, q, p, 0.0, oid or "")
             for k, sym, day, ex, tid, side, q, p, oid in zip(keys, symbols, days, execs, tids, sides, qtys, prices,
                                                              oids, strict=True)]
    ca = corporate_actions.c
    actions = [Action(r.symbol, r.ex_date, r.kind, float(r.ratio_new), float(r.ratio_old))
               for r in conn.execute(sa.select(corporate_actions).where(ca.account_id == account_id)).all()]
    fifo = match_fifo(fills, actions, "zerodha_delivery")  # charges each trade as it matches
    charged = fifo.charges

    def const(value: Any, n: int, typ: pa.DataType) -> pa.Array:
        return pa.nulls(n, typ) if value is None else pa.repeat(pa.scalar(value, typ), n)

    def dates(values: list[str]) -> pa.Array:
        return pa.array(values, pa.string()).cast(pa.date32())

    trades = pa.Table.from_arrays([
        const(account_id, n, pa.int64()), const(IMPORTED, n, pa.string()), const(None, n, pa.int64()),
        const(None, n, pa.string()), pa.array(keys, pa.string()), pa.array(tids, pa.string()),
        pa.array(oids, pa.string()), pa.array(exchanges, pa.string()), pa.array(symbols, pa.string()),
        pa.array(isins, pa.string()), dates(days), pa.array(execs, pa.string()), pa.array(sides, pa.string()),
        pa.array(qtys, pa.float64()), pa.array(prices, pa.float64()),
        pa.array([round(q * p, 2) for q, p in zip(qtys, prices, strict=True)], pa.float64()),
        pa.array([charged[k] for k in keys], pa.float64()),
    ], schema=_SCHEMAS["trades"])
    m = len(fifo.matches)
    (m_symbol, _, m_sell_key, m_buy_date, m_sell_date, m_qty, m_buy_price, m_sell_price, m_buy_value, m_sell_value,
     m_gross, m_charges, m_net, m_days, m_term) = (
        [list(c) for c in zip(*fifo.matches, strict=True)] if m else [[] for _ in Match._fields])
    realized = pa.Table.from_arrays([
        const(account_id, m, pa.int64()), const(IMPORTED, m, pa.string()), const(None, m, pa.int64()),
        const(None, m, pa.string()), pa.array(m_symbol, pa.string()), pa.array(m_sell_key, pa.string()),
        dates(m_buy_date), dates(m_sell_date), pa.array(m_qty, pa.float64()), pa.array(m_buy_price, pa.float64()),
        pa.array(m_sell_price, pa.float64()), pa.array(m_buy_value, pa.float64()),
        pa.array(m_sell_value, pa.float64()), pa.array(m_gross, pa.float64()), pa.array(m_charges, pa.float64()),
        pa.array(m_net, pa.float64()), pa.array(m_days, pa.int32()), pa.array(m_term, pa.string()),
    ], schema=_SCHEMAS["realized"])
    held = {lot.buy_key for lot in fifo.lots}
    meta = {k: (isin, ex) for k, isin, ex in zip(keys, isins, exchanges, strict=True) if k in held}
    lots = _columns([{"account_id": account_id, "symbol": lot.symbol, "isin": meta.get(lot.buy_key, ("", ""))[0],
                      "exchange": meta.get(lot.buy_key, ("", "NSE"))[1], "buy_key": lot.buy_key,
                      "buy_date": _day(lot.buy_date), "quantity": lot.quantity, "price": lot.price,
                      "cost": round(lot.quantity * lot.price, 2), "charges": round(lot.charges, 2)}
                     for lot in fifo.lots], _SCHEMAS["lots"])
    left = dict(fifo.unmatched)  # sell key -> the quantity FIFO could not match (usually none)
    unmatched = _columns([{"symbol": sym, "sell_key": k, "trade_id": tid, "sell_date": _day(day),
                           "quantity": left[k]}
                          for k, sym, tid, day in zip(keys, symbols, tids, days, strict=True) if k in left]
                         if left else [], _SCHEMAS["unmatched"])
    acts = _columns([{"symbol": a.symbol, "ex_date": _day(a.ex_date), "kind": a.kind,
                      "price_factor": price_factor(a)} for a in actions], _SCHEMAS["actions"])
    return trades, realized, lots, unmatched, acts


def _pnl_daily(realized: pa.Table) -> pa.Table:
    """Realized P&L per source, strategy, symbol and sell day, with the count of sells and of winning and
    losing sells (a sell's matches summed first): `GET /api/analytics/pnl` reads this, not every match."""
    with duckdb.connect() as con:
        con.register("m", realized)
        out = con.sql("""
            SELECT source, coalesce(strategy, 'imported') AS strategy, symbol, sell_date, count(*) AS trades,
                   sum(quantity) AS quantity, sum(buy_value) AS buy_value, sum(sell_value) AS sell_value,
                   sum(gross) AS gross_pnl, sum(charges) AS charges, sum(net) AS net_pnl,
                   count(*) FILTER (WHERE net > 0) AS wins, count(*) FILTER (WHERE net <= 0) AS losses
            FROM (SELECT source, strategy, symbol, sell_date, sell_key, sum(quantity) AS quantity,
                         sum(buy_value) AS buy_value, sum(sell_value) AS sell_value, sum(gross_pnl) AS gross,
                         sum(charges) AS charges, sum(net_pnl) AS net
                  FROM m GROUP BY ALL)
            GROUP BY ALL ORDER BY source, strategy, symbol, sell_date""").to_arrow_table()
    return out.cast(_SCHEMAS["pnl_daily"])


def build_tables(conn: sa.Connection, account_id: int) -> dict[str, pa.Table]:
    """Every analytics table of one account, from the operational read models."""
    trades, realized, lots, unmatched, acts = _imported(conn, account_id)
    pf_trades: list[dict[str, Any]] = []
    pf_realized: list[dict[str, Any]] = []
    _portfolio_rows(conn, account_id, pf_trades, pf_realized)
    if pf_trades:
        trades = pa.concat_tables([trades, _columns(pf_trades, _SCHEMAS["trades"])])
    if pf_realized:
        realized = pa.concat_tables([realized, _columns(pf_realized, _SCHEMAS["realized"])])
    le = ledger_entries.c
    ledger = [{"account_id": account_id, "posting_date": _day(r.posting_date), "particulars": r.particulars,
               "voucher_type": r.voucher_type, "debit": r.debit, "credit": r.credit, "balance": r.balance,
               "category": r.category}
              for r in conn.execute(sa.select(ledger_entries).where(le.account_id == account_id)
                                    .order_by(le.posting_date)).all()]
    mt = mf_transactions.c
    mf = [{"account_id": account_id, "folio": r.folio, "amc": r.amc, "scheme": r.scheme, "isin": r.isin,
           "date": _day(r.date), "description": r.description, "type": r.txn_type, "amount": r.amount,
           "units": r.units, "nav": r.nav, "balance": r.balance}
          for r in conn.execute(sa.select(mf_transactions).where(mt.account_id == account_id)).all()]
    mf_holdings, demat = _latest_statements(conn, account_id)
    plain = {"ledger": ledger, "mf_transactions": mf, "mf_holdings": mf_holdings, "demat_holdings": demat,
             "equity": _equity_rows(conn, account_id)}
    # the journal's order: its newest page is read from the last row groups
    trades = trades.sort_by([("trade_date", "ascending"), ("executed_at", "ascending"), ("trade_id", "ascending")])
    return {"trades": trades, "realized": realized, "lots": lots, "pnl_daily": _pnl_daily(realized),
            "unmatched": unmatched, "actions": acts,
            **{name: _columns(rows, _SCHEMAS[name]) for name, rows in plain.items()}}


def _portfolio_rows(conn: sa.Connection, account_id: int, trades: list[dict[str, Any]],
                    realized: list[dict[str, Any]]) -> None:
    """Model portfolios' positions as journal trades (entry and exit) and closed trades."""
    pfs = {int(r.id): r for r in account_portfolio_rows(conn, account_id)}
    if not pfs:
        return
    names = strategy_names(conn, {int(r.strategy_id) for r in pfs.values() if r.strategy_id is not None})
    for r in position_rows(conn, list(pfs)):
        info = pfs[int(r.portfolio_id)]
        strategy = names.get(int(info.strategy_id), f"strategy {info.strategy_id}") if info.strategy_id else info.name
        qty = float(r.quantity)
        base = {"account_id": account_id, "source": info.mode, "portfolio_id": int(r.portfolio_id),
                "strategy": strategy, "exchange": r.exchange, "symbol": r.symbol, "isin": "", "order_id": ""}
        trades.append({**base, "trade_key": f"position:{r.id}:buy", "trade_id": f"P{r.id}B",
                       "trade_date": _day(r.entry_date), "executed_at": "", "side": "buy", "quantity": qty,
                       "price": float(r.avg_price), "value": round(qty * float(r.avg_price), 2),
                       "charges": float(r.entry_charges)})
        if r.status != PositionStatus.CLOSED or r.exit_price is None or r.exit_date is None:
            continue
        exit_price = float(r.exit_price)
        sell_key = f"position:{r.id}:sell"
        trades.append({**base, "trade_key": sell_key, "trade_id": f"P{r.id}S", "trade_date": _day(r.exit_date),
                       "executed_at": "", "side": "sell", "quantity": qty, "price": exit_price,
                       "value": round(qty * exit_price, 2), "charges": float(r.exit_charges)})
        gross = round(qty * (exit_price - float(r.avg_price)), 2)
        ch = round(float(r.entry_charges) + float(r.exit_charges), 2)
        b, s = _day(r.entry_date), _day(r.exit_date)
        assert b is not None and s is not None
        realized.append({
            "account_id": account_id, "source": info.mode, "portfolio_id": int(r.portfolio_id), "strategy": strategy,
            "symbol": r.symbol, "sell_key": sell_key, "buy_date": b, "sell_date": s, "quantity": qty,
            "buy_price": float(r.avg_price), "sell_price": exit_price, "buy_value": round(qty * float(r.avg_price), 2),
            "sell_value": round(qty * exit_price, 2), "gross_pnl": gross, "charges": ch,
            "net_pnl": float(r.realized_pnl) if r.realized_pnl is not None else round(gross - ch, 2),
            "holding_days": (s - b).days, "term": "intraday" if s == b else "short" if (s - b).days <= 365 else "long",
        })


def _equity_rows(conn: sa.Connection, account_id: int) -> list[dict[str, Any]]:
    rows = equity_rows(conn, account_id)
    names = strategy_names(conn, {int(r.strategy_id) for r in rows if r.strategy_id is not None})
    return [{"account_id": account_id, "portfolio_id": int(r.portfolio_id),
             "strategy": names.get(int(r.strategy_id), "") if r.strategy_id else "", "mode": r.mode,
             "day": _day(r.day), "cash": float(r.cash), "equity": float(r.equity)}
            for r in rows if r.row_seq == r.reset_seq]


def _latest_statements(conn: sa.Connection, account_id: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The latest valuation per folio and scheme, and the latest demat statement's holdings."""
    cs = cas_statements.c
    rows = conn.execute(sa.select(cas_statements).where(cs.account_id == account_id).order_by(cs.period_to)).all()
    mf: dict[tuple[str, str], dict[str, Any]] = {}
    demat: list[dict[str, Any]] = []
    for r in rows:
        for v in r.valuations or []:
            key = (str(v.get("folio", "")), str(v.get("isin") or v.get("scheme", "")))
            day = _day(v.get("date") or r.period_to)
            if key not in mf or (day and mf[key]["date"] and day >= mf[key]["date"]):
                mf[key] = {"account_id": account_id, "folio": key[0], "amc": v.get("amc", ""),
                           "scheme": v.get("scheme", ""), "isin": v.get("isin", ""), "date": day,
                           "units": v.get("units"), "nav": v.get("nav"), "cost": v.get("cost"), "value": v.get("value")}
        if r.holdings:
            demat = [{"account_id": account_id, "isin": h.get("isin", ""), "symbol": h.get("symbol") or "",
                      "name": h.get("name", ""), "date": _day(h.get("date") or r.period_to),
                      "quantity": h.get("quantity"), "price": h.get("price"), "value": h.get("value")}
                     for h in r.holdings]
    return list(mf.values()), demat


# ---------------------------------------------------------------------------------------------- the store


@dataclass(frozen=True)
class Snapshot:
    account_id: int
    position: int
    folder: Path | None  # None: nothing to analyse yet (empty tables)

    def path(self, table: str) -> Path | None:
        return None if self.folder is None else self.folder / f"{table}.parquet"


class AnalyticsStore:
    def __init__(self, db: Database, root: Path, gate: WorkGate | None = None) -> None:
        """`gate`: the API's work gate, whose turn a request gives back while it waits for another builder."""
        self.db = db
        self.root = root
        self.gate = gate or WorkGate()
        self._locks: dict[int, threading.Lock] = defaultdict(threading.Lock)
        self._guard = threading.Lock()
        self._duck: duckdb.DuckDBPyConnection | None = None

    def _account_dir(self, account_id: int) -> Path:
        return self.root / f"v{SNAPSHOT_FORMAT}" / str(int(account_id))

    def _older_formats(self, account_id: int) -> list[Path]:
        """The account's snapshot folders of earlier formats (format 1 lay right under the root)."""
        return [self.root / str(int(account_id)), *(self.root / f"v{v}" / str(int(account_id))
                                                    for v in range(2, SNAPSHOT_FORMAT))]

    def _current(self, account_id: int) -> tuple[int, Path] | None:
        pointer = self._account_dir(account_id) / "CURRENT"
        try:
            name = pointer.read_text().strip()
        except FileNotFoundError:
            return None
        folder = self._account_dir(account_id) / name
        return (int(name), folder) if name.isdigit() and folder.is_dir() else None

    @contextmanager
    def _writer_lock(self, account_id: int) -> Iterator[None]:
        with self._guard:
            lock = self._locks[account_id]
        d = self._account_dir(account_id)
        d.mkdir(parents=True, exist_ok=True)
        with ExitStack() as held:
            with self.gate.released():  # another thread or process may be building for seconds
                held.enter_context(lock)
                fh = held.enter_context(open(d / ".lock", "a+"))
                fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def snapshot(self, account_id: int) -> Snapshot:
        """The account's current snapshot, rebuilt first when the read models moved past it."""
        with self.db.read() as conn:
            wanted = change_position(conn, account_id)
        cur = self._current(account_id)
        if cur is not None and cur[0] >= wanted:
            return Snapshot(account_id, cur[0], cur[1])
        if wanted == 0:
            return Snapshot(account_id, 0, None)
        with self._writer_lock(account_id):
            cur = self._current(account_id)
            if cur is not None and cur[0] >= wanted:
                return Snapshot(account_id, cur[0], cur[1])
            return self._build(account_id)

    def _build(self, account_id: int) -> Snapshot:
        # A million trades make millions of tuples that live until the build ends: the cyclic collector
        # would walk them all again and again (none of them is in a cycle), so it is paused meanwhile.
        with collector_paused(), self.db.read() as conn:
            position = change_position(conn, account_id)
            tables = build_tables(conn, account_id)
        d = self._account_dir(account_id)
        tmp = d / f".tmp-{uuid.uuid4().hex}"
        tmp.mkdir(parents=True)
        for name in TABLES:
            # row groups of 64k rows: DuckDB scans them in parallel and skips those a filter rules out
            pq.write_table(tables[name], tmp / f"{name}.parquet", row_group_size=ROW_GROUP)
        final = d / str(position)
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        pointer_tmp = d / f".CURRENT-{uuid.uuid4().hex}"
        pointer_tmp.write_text(str(position))
        os.replace(pointer_tmp, d / "CURRENT")
        keep = sorted((int(p.name) for p in d.iterdir() if p.is_dir() and p.name.isdigit()), reverse=True)[:2]
        for p in d.iterdir():
            if p.is_dir() and ((p.name.isdigit() and int(p.name) not in keep) or p.name.startswith(".tmp-")) \
                    and p != tmp:
                shutil.rmtree(p, ignore_errors=True)
        for old in self._older_formats(account_id):  # never read again: this format replaced them
            if old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
        return Snapshot(account_id, position, final)

    def _database(self) -> duckdb.DuckDBPyConnection:
        """This process's in-memory DuckDB database (opening one costs 20-40 ms; a cursor on it, ~0.1 ms)."""
        with self._guard:
            if self._duck is None:
                self._duck = duckdb.connect()
            return self._duck

    @contextmanager
    def connect(self, snapshots: Sequence[Snapshot],
                tables: Sequence[str] = TABLES) -> Iterator[duckdb.DuckDBPyConnection]:
        """A DuckDB connection (a cursor of the process's in-memory database: temporary views are its own)
        with one view per analytics table (`tables`: only those) over the given snapshots (empty tables
        where an account has none)."""
        con = self._database().cursor()
        try:
            for name in tables:
                paths = [str(p) for s in snapshots if (p := s.path(name)) is not None]
                if paths:
                    con.execute(f"CREATE TEMP VIEW {name} AS SELECT * FROM read_parquet({paths!r})")
                else:
                    empty = _columns([], _SCHEMAS[name])
                    con.register(f"_{name}_empty", empty)
                    con.execute(f"CREATE TEMP VIEW {name} AS SELECT * FROM _{name}_empty")
            yield con
        finally:
            con.close()


def rows(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    cur = con.execute(sql, list(params))
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
