"""The queries over the model-portfolio read models: portfolios (with their counts), positions, the equity
curve, the activity timeline, and what the scheduler and the strategy commands ask."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from domain.status import PortfolioStatus, PositionStatus, SignalStatus
from projections.base import page, row_by
from projections.portfolios.tables import (
    activity_log,
    money,
    portfolio_equity,
    portfolios,
    positions,
    signals,
    wire_ts,
)

# ---------------------------------------------------------------------------------------------- queries: portfolios

_PORTFOLIO_PUBLIC = (
    "id", "account_id", "name", "mode", "status", "strategy_id", "strategy", "universe", "capital", "cash",
    "invested", "equity", "realized_pnl", "day_pnl", "position_size_pct", "max_positions", "max_per_sector",
    "auto_approve", "slippage_bps", "charges", "deployed_on", "last_day", "created_at", "updated_at",
)
_PORTFOLIO_MONEY = ("capital", "cash", "invested", "equity", "realized_pnl", "day_pnl")


def portfolio_public(row: Any) -> dict[str, Any]:
    m = row._mapping
    out = {k: m[k] for k in _PORTFOLIO_PUBLIC}
    for k in _PORTFOLIO_MONEY:
        out[k] = money(out[k])
    out["created_at"], out["updated_at"] = wire_ts(out["created_at"]), wire_ts(out["updated_at"])
    capital = float(m["capital"])
    out["total_pnl"] = round(float(m["equity"]) - capital, 2)
    out["return_pct"] = round((float(m["equity"]) - capital) / capital * 100.0, 2) if capital else 0.0
    return out


def list_portfolios(conn: Connection, account_id: int, status: str | None, limit: int,
                    offset: int) -> tuple[list[dict[str, Any]], int]:
    """The account's portfolios, newest first: with `status` None the active and paused ones."""
    p = portfolios.c
    cond = p.status.in_((PortfolioStatus.ACTIVE, PortfolioStatus.PAUSED)) if status is None else p.status == status
    rows, total = page(sa.select(portfolios).where(p.account_id == account_id, cond).order_by(p.id.desc()),
                       conn, limit, offset)
    out = [portfolio_public(r) for r in rows]
    _with_counts(conn, out)
    return out, total


def _with_counts(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Adds each portfolio's open-position and pending/in-cart signal counts (two grouped queries)."""
    ids = [int(r["id"]) for r in rows]
    if not ids:
        return
    p, s = positions.c, signals.c
    open_n: dict[int, int] = {int(r[0]): int(r[1]) for r in conn.execute(
        sa.select(p.portfolio_id, sa.func.count()).where(p.portfolio_id.in_(ids), p.status == PositionStatus.OPEN)
        .group_by(p.portfolio_id)).all()}
    waiting: dict[tuple[int, str], int] = {
        (int(r[0]), str(r[1])): int(r[2]) for r in conn.execute(sa.select(s.portfolio_id, s.status, sa.func.count())
        .where(s.portfolio_id.in_(ids), s.status.in_((SignalStatus.PENDING_APPROVAL, SignalStatus.IN_CART)))
        .group_by(s.portfolio_id, s.status)).all()}
    for r in rows:
        pid = int(r["id"])
        r["open_positions"] = int(open_n.get(pid, 0))
        r["pending_signals"] = waiting.get((pid, "pending_approval"), 0)
        r["in_cart_signals"] = waiting.get((pid, "in_cart"), 0)


def get_portfolio(conn: Connection, portfolio_id: int) -> dict[str, Any] | None:
    """One portfolio (any account: the caller checks `account_id`) with its open-position and
    pending/in-cart signal counts."""
    row = conn.execute(sa.select(portfolios).where(portfolios.c.id == portfolio_id)).first()
    if row is None:
        return None
    out = portfolio_public(row)
    _with_counts(conn, [out])
    return out


def portfolio_ids_using_strategy(conn: Connection, strategy_id: int) -> int:
    """How many active or paused portfolios were deployed from `strategy_id`."""
    p = portfolios.c
    return int(conn.execute(sa.select(sa.func.count()).select_from(portfolios).where(
        p.strategy_id == strategy_id, p.status.in_((PortfolioStatus.ACTIVE, PortfolioStatus.PAUSED)))).scalar_one())


def active_portfolio_rows(conn: Connection) -> list[dict[str, Any]]:
    """Active and paused portfolios, by id: {id, account_id, status, last_day, mode} (for the scheduler)."""
    p = portfolios.c
    rows = conn.execute(sa.select(p.id, p.account_id, p.status, p.last_day, p.mode)
                        .where(p.status.in_((PortfolioStatus.ACTIVE, PortfolioStatus.PAUSED))).order_by(p.id)).all()
    return [{"id": int(r.id), "account_id": r.account_id, "status": r.status, "last_day": r.last_day,
             "mode": r.mode} for r in rows]


def equity_curve(conn: Connection, portfolio_id: int) -> list[dict[str, Any]]:
    """The daily closes since the last reset, oldest first: {date, equity, cash}."""
    seq = conn.execute(sa.select(portfolios.c.reset_seq).where(portfolios.c.id == portfolio_id)).scalar()
    if seq is None:
        return []
    e = portfolio_equity.c
    rows = conn.execute(sa.select(e.day, e.equity, e.cash)
                        .where(e.portfolio_id == portfolio_id, e.reset_seq == seq).order_by(e.day)).all()
    return [{"date": r.day, "equity": money(r.equity), "cash": money(r.cash)} for r in rows]


def activity(conn: Connection, portfolio_id: int, limit: int = 50) -> list[dict[str, Any]]:
    """The portfolio's event timeline, newest first: {type, at, summary, data}."""
    a = activity_log.c
    rows = conn.execute(sa.select(a.type, a.at, a.summary, a.data).where(a.portfolio_id == portfolio_id)
                        .order_by(a.position.desc()).limit(limit)).all()
    return [{"type": r.type, "at": wire_ts(r.at), "summary": r.summary,
             "data": json.loads(r.data) if isinstance(r.data, str) else r.data} for r in rows]


def account_activity(conn: Connection, account_id: int, since: str | None, limit: int) -> list[dict[str, Any]]:
    """Every portfolio's timeline of one account merged, newest first: {portfolio_id, type, at, summary, data};
    `since` (an ISO timestamp) keeps what happened at or after it."""
    a, p = activity_log.c, portfolios.c
    mine = sa.select(p.id).where(p.account_id == account_id).scalar_subquery()
    q = sa.select(a.portfolio_id, a.type, a.at, a.summary, a.data).where(a.portfolio_id.in_(mine))
    if since is not None:
        q = q.where(a.at >= since)
    rows = conn.execute(q.order_by(a.position.desc()).limit(limit)).all()
    return [{"portfolio_id": int(r.portfolio_id), "type": r.type, "at": wire_ts(r.at), "summary": r.summary,
             "data": json.loads(r.data) if isinstance(r.data, str) else r.data} for r in rows]


# ---------------------------------------------------------------------------------------------- queries: positions

_POSITION_PUBLIC = (
    "id", "portfolio_id", "account_id", "signal_id", "exchange", "symbol", "sector", "quantity", "avg_price",
    "entry_date", "stop_loss", "target", "status", "last_price", "unrealized_pnl", "exit_price", "exit_date",
    "exit_reason", "realized_pnl", "charges", "conviction", "exit_pending", "updated_at",
)
_POSITION_MONEY = ("avg_price", "stop_loss", "target", "last_price", "unrealized_pnl", "exit_price", "realized_pnl",
                   "charges")


def position_public(row: Any) -> dict[str, Any]:
    m = row._mapping
    out = {k: m[k] for k in _POSITION_PUBLIC}
    for k in _POSITION_MONEY:
        out[k] = money(out[k])
    out["exit_pending"] = bool(out["exit_pending"])
    out["updated_at"] = wire_ts(out["updated_at"])
    return out


def list_positions(conn: Connection, account_id: int, portfolio_id: int | None = None, status: str | None = None,
                   limit: int = 50, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """The account's positions, newest first (status None: open, closed and reset ones)."""
    p = positions.c
    conds: list[Any] = [p.account_id == account_id]
    if portfolio_id is not None:
        conds.append(p.portfolio_id == portfolio_id)
    if status is not None:
        conds.append(p.status == status)
    rows, total = page(sa.select(positions).where(*conds).order_by(p.id.desc()), conn, limit, offset)
    return [position_public(r) for r in rows], total


def get_position(conn: Connection, position_id: int) -> dict[str, Any] | None:
    row = row_by(conn, positions, "id", position_id)
    return None if row is None else position_public(row)
