"""The public query surface of the model-portfolio read models: every read of `rm_portfolios`, `rm_signals`,
`rm_positions`, `rm_portfolio_equity` and `rm_activity` from outside `projections.portfolios` goes through
these functions (the tables are private to the package: an import-linter contract in pyproject.toml).

Portfolios (with their counts), positions, the equity curve, the activity timeline, signals, what the
scheduler and the strategy commands ask, the live side's questions (protections, the agent's queue of
placed signals; `projections.joined` lays the broker's and the risk book's read models over them) and
analytics' raw rows.

Signals: entries are `buy`/`entry`; an exit the exit rules signalled is a `sell`/`exit` signal, `placed`
at once (it executes at the next open) and `executed` when its position closes. `expires_at` is the
market close (15:30 Asia/Kolkata) by which the signal must be acted on; `expires_epoch` holds the same
instant as UTC epoch seconds, which `overdue_signal_ids` compares.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from domain.broker import Protection
from domain.portfolio.aggregate import PROTECTIVE_REASON
from domain.status import PortfolioStatus, PositionStatus, SignalStatus
from projections.base import page, row_by
from projections.portfolios.tables import (
    activity_log,
    portfolio_equity,
    portfolios,
    positions,
    signals,
)
from projections.values import money, utc_epoch, wire_ts

# ---------------------------------------------------------------------------------------------- queries: portfolios

_PORTFOLIO_PUBLIC = (
    "id", "account_id", "name", "mode", "status", "strategy_id", "strategy", "universe", "capital", "cash",
    "invested", "equity", "realized_pnl", "day_pnl", "position_size_pct", "max_positions", "max_per_sector",
    "auto_approve", "slippage_bps", "charges", "deployed_on", "last_day", "created_at", "updated_at",
)
_PORTFOLIO_MONEY = ("capital", "cash", "invested", "equity", "realized_pnl", "day_pnl")


def _picked(row: Any, keys: tuple[str, ...], amounts: tuple[str, ...],
            times: tuple[str, ...] = ("created_at", "updated_at")) -> dict[str, Any]:
    """A row's public `keys`, its `amounts` as money and its `times` as wire timestamps."""
    m = row._mapping
    out = {k: m[k] for k in keys}
    for k in amounts:
        out[k] = money(out[k])
    for k in times:
        out[k] = wire_ts(out[k])
    return out


def portfolio_public(row: Any) -> dict[str, Any]:
    m = row._mapping
    out = _picked(row, _PORTFOLIO_PUBLIC, _PORTFOLIO_MONEY)
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


def activity_summaries(conn: Connection, positions_: list[int]) -> dict[int, str]:
    """The activity log's readable sentence for each of these store positions (the audit log shows them)."""
    if not positions_:
        return {}
    rows = conn.execute(sa.select(activity_log.c.position, activity_log.c.summary)
                        .where(activity_log.c.position.in_(positions_))).all()
    return {int(r.position): str(r.summary) for r in rows}


def activity_marks(conn: Connection, portfolio_ids: list[int]) -> dict[int, int]:
    """Portfolio id -> the store position of its latest activity row (one grouped query): a changed mark
    means the portfolio's read model moved."""
    if not portfolio_ids:
        return {}
    a = activity_log.c
    return {int(pid): int(mark) for pid, mark in conn.execute(
        sa.select(a.portfolio_id, sa.func.max(a.position)).where(a.portfolio_id.in_(portfolio_ids))
        .group_by(a.portfolio_id)).all()}


# ---------------------------------------------------------------------------------------------- queries: positions

_POSITION_PUBLIC = (
    "id", "portfolio_id", "account_id", "signal_id", "exchange", "symbol", "sector", "quantity", "avg_price",
    "entry_date", "stop_loss", "target", "status", "last_price", "unrealized_pnl", "exit_price", "exit_date",
    "exit_reason", "realized_pnl", "charges", "conviction", "exit_pending", "updated_at",
)
_POSITION_MONEY = ("avg_price", "stop_loss", "target", "last_price", "unrealized_pnl", "exit_price", "realized_pnl",
                   "charges")


def position_public(row: Any) -> dict[str, Any]:
    out = _picked(row, _POSITION_PUBLIC, _POSITION_MONEY, times=("updated_at",))
    out["exit_pending"] = bool(out["exit_pending"])
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


# ---------------------------------------------------------------------------------------------- queries: signals

_SIGNAL_PUBLIC = (
    "id", "portfolio_id", "account_id", "strategy_id", "exchange", "symbol", "sector", "side", "kind", "conviction",
    "reference_price", "limit_price", "stop_loss", "target", "quantity", "status", "reason", "day", "entry_order",
    "validity_days", "created_at", "expires_at", "updated_at", "gtt_id", "order_id", "fill_price",
    "filled_quantity", "failure_reason", "position_id",
)
_SIGNAL_PRICES = ("reference_price", "limit_price", "stop_loss", "target", "fill_price")


def signal_public(row: Any) -> dict[str, Any]:
    out = _picked(row, _SIGNAL_PUBLIC, _SIGNAL_PRICES)
    # The agent's report of a triggered GTT whose fill Kite cannot show lives in the broker read model;
    # GET /api/model/signals lays it over this null (projections.joined.signals_with_fills). One shape for
    # every signal row, so a command's answer equals the listed row.
    out["fill_unresolved"] = None
    return out


def list_signals(conn: Connection, account_id: int, portfolio_id: int | None = None, status: str | None = None,
                 symbol: str | None = None, limit: int = 100, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """The account's signals (entries and exits), newest first."""
    s = signals.c
    conds: list[Any] = [s.account_id == account_id]
    if portfolio_id is not None:
        conds.append(s.portfolio_id == portfolio_id)
    if status is not None:
        conds.append(s.status == status)
    if symbol:
        conds.append(s.symbol == symbol.strip().upper())
    rows, total = page(sa.select(signals).where(*conds).order_by(s.id.desc()), conn, limit, offset)
    return [signal_public(r) for r in rows], total


def get_signal(conn: Connection, signal_id: int) -> dict[str, Any] | None:
    row = row_by(conn, signals, "id", signal_id)
    return None if row is None else signal_public(row)


_GET_SIGNALS = sa.select(signals).where(signals.c.id.in_(sa.bindparam("ids", expanding=True)))


def get_signals(conn: Connection, signal_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Several signals by id, in one query per 500."""
    out: dict[int, dict[str, Any]] = {}
    for i in range(0, len(signal_ids), 500):
        for row in conn.execute(_GET_SIGNALS, {"ids": signal_ids[i:i + 500]}):
            out[int(row.id)] = signal_public(row)
    return out


def in_cart_signal_ids(conn: Connection, account_id: int, portfolio_id: int | None = None) -> list[tuple[int, int]]:
    """(portfolio_id, signal_id) of the account's in-cart signals, by signal id."""
    s = signals.c
    conds: list[Any] = [s.account_id == account_id, s.status == SignalStatus.IN_CART]
    if portfolio_id is not None:
        conds.append(s.portfolio_id == portfolio_id)
    rows = conn.execute(sa.select(s.portfolio_id, s.id).where(*conds).order_by(s.id)).all()
    return [(int(r.portfolio_id), int(r.id)) for r in rows]


def overdue_signal_ids(conn: Connection, now_iso: str) -> list[tuple[int | None, int, int]]:
    """(account_id, portfolio_id, signal_id) of pending_approval / in_cart signals whose `expires_at`
    lies before `now_iso` (any offset; compared as instants), by signal id."""
    s = signals.c
    rows = conn.execute(sa.select(s.account_id, s.portfolio_id, s.id).where(
        s.status.in_((SignalStatus.PENDING_APPROVAL,
                      SignalStatus.IN_CART)), s.expires_epoch < utc_epoch(now_iso)).order_by(s.id)).all()
    return [(None if r.account_id is None else int(r.account_id), int(r.portfolio_id), int(r.id)) for r in rows]


def placed_signal_ids(conn: Connection, account_id: int, signal_ids: list[int]) -> set[int]:
    """Which of these signals of the account are `placed` (one query)."""
    s = signals.c
    return {int(r.id) for r in conn.execute(sa.select(s.id).where(
        s.account_id == account_id, s.status == SignalStatus.PLACED, s.id.in_(signal_ids)))}


def signal_places(conn: Connection, signal_ids: list[int]) -> list[Any]:
    """(id, portfolio_id, exchange, symbol) of these signals, by id (one query)."""
    if not signal_ids:
        return []
    s = signals.c
    return list(conn.execute(sa.select(s.id, s.portfolio_id, s.exchange, s.symbol)
                             .where(s.id.in_(sorted(signal_ids))).order_by(s.id)))


# ---------------------------------------------------------------------------------------------- queries: live side


def live_open_positions(conn: Connection, account_id: int) -> list[Any]:
    """(portfolio_id, exchange, symbol, quantity) of the account's open positions in live portfolios."""
    p, pf = positions.c, portfolios.c
    return list(conn.execute(
        sa.select(p.portfolio_id, p.exchange, p.symbol, p.quantity)
        .select_from(positions.join(portfolios, portfolios.c.id == p.portfolio_id))
        .where(p.account_id == account_id, p.status == PositionStatus.OPEN, pf.mode == "live")
    ).all())


def live_protections(conn: Connection, account_id: int, portfolio_id: int | None) -> list[Protection]:
    """The protection each open live position wants at the broker (`domain.broker.Protection`): its
    protective exit's GTT. A position without a pending exit names its latest protective exit's GTT (one
    Kite deleted or rejected: the drift says so). A position whose pending exit is a market order (an exit
    rule, a manual close) wants none."""
    p, pf, s = positions.c, portfolios.c, signals.c
    conds = [p.account_id == account_id, p.status == PositionStatus.OPEN, pf.mode == "live"]
    if portfolio_id is not None:
        conds.append(p.portfolio_id == portfolio_id)
    rows = conn.execute(
        sa.select(p.id, p.exchange, p.symbol, p.quantity, p.stop_loss, p.target, p.exit_signal_id,
                  s.reason.label("exit_reason"), s.status.label("exit_status"), s.gtt_id)
        .select_from(positions.join(portfolios, portfolios.c.id == p.portfolio_id)
                     .outerjoin(signals, signals.c.id == p.exit_signal_id))
        .where(*conds).order_by(p.id)).all()
    unarmed = [int(r.id) for r in rows if r.exit_signal_id is None]
    last: dict[int, tuple[int, str | None]] = {}  # position -> its latest protective exit (failed at Kite?)
    for x in conn.execute(sa.select(s.position_id, s.id, s.gtt_id).where(
            s.position_id.in_(unarmed), s.kind == "exit", s.reason == PROTECTIVE_REASON).order_by(s.id)):
        last[int(x.position_id)] = (int(x.id), None if x.gtt_id is None else str(x.gtt_id))
    out = []
    for r in rows:
        if r.exit_signal_id is None:
            signal_id, gtt_id = last.get(int(r.id), (None, None))
        elif r.exit_reason == PROTECTIVE_REASON:
            signal_id, gtt_id = int(r.exit_signal_id), None if r.gtt_id is None else str(r.gtt_id)
        else:
            continue  # a market exit (an exit rule, a manual close) is on its way
        out.append(Protection(str(r.exchange), str(r.symbol), int(r.id), signal_id, int(r.quantity), r.stop_loss,
                              r.target, gtt_id))
    return out


def _withdraw_reason(r: Any, switches: Sequence[tuple[int, int | None]]) -> str | None:
    """Why a placed live entry must come off the broker (its GTT deleted there first, then the expiry
    recorded by the agent's report), or None: a kill switch covers it, its portfolio is paused or
    retired, or its validity passed (the portfolio processed the bars of its last valid day)."""
    for rule_id, rule_portfolio_id in switches:
        if rule_portfolio_id is None or int(rule_portfolio_id) == int(r.portfolio_id):
            return f"kill switch engaged (rule {rule_id})"
    if r.portfolio_status in ("paused", "retired"):
        return f"portfolio {r.portfolio_status}"
    last_day, expires = r.portfolio_last_day, str(r.expires_at or "")[:10]
    if last_day and expires and str(last_day) >= expires:
        return f"validity passed (valid until {expires})"
    return None


def placed_live_signals(conn: Connection, account_id: int, state: str,
                        kill_switches: Sequence[tuple[int, int | None]]) -> list[dict[str, Any]]:
    """The broker agent's queue (`projections.joined.agent_queue` passes the risk book's `kill_switches`,
    (rule id, portfolio id or None) of the account): placed signals of the account's live portfolios, oldest
    first. `pending`: not yet at the broker (no gtt_id / order_id); `working`: at the broker, not yet executed
    or failed. Exit signals carry their position's quantity, stop_loss, target and average price. Entry
    signals carry `withdraw`: None, or why the entry must come off the broker (`_withdraw_reason`): the agent
    deletes its GTT at Kite (or never places it) and then reports it `expired`.

    A protective exit a manual close replaced (its position's pending exit is now another signal) is never
    handed out to place; while it is at the broker it stays `working` until the agent reports it cancelled
    (or filled). The exit that replaced it names it in `replaces` ([{signal_id, gtt_id, order_id}]): the
    agent cancels those at the broker before placing it."""
    s, pf, p = signals.c, portfolios.c, positions.c
    sent = sa.or_(s.gtt_id.is_not(None), s.order_id.is_not(None))
    rows = conn.execute(
        sa.select(signals, pf.status.label("portfolio_status"), pf.last_day.label("portfolio_last_day"))
        .select_from(signals.join(portfolios, portfolios.c.id == s.portfolio_id))
        .where(s.account_id == account_id, s.status == SignalStatus.PLACED, pf.mode == "live",
               sa.not_(sent) if state == "pending" else sent)
        .order_by(s.id)
    ).all()
    out = []
    for r in rows:
        item = signal_public(r)
        if item["kind"] == "entry":
            item["withdraw"] = _withdraw_reason(r, kill_switches)
        if item["kind"] == "exit" and item["position_id"] is not None:
            pos = conn.execute(sa.select(p.quantity, p.stop_loss, p.target, p.avg_price, p.status, p.exit_signal_id)
                               .where(p.id == item["position_id"])).first()
            if pos is None:
                continue
            replaced = pos.exit_signal_id != item["id"]
            if state == "pending" and (replaced or pos.status != PositionStatus.OPEN):
                continue
            if state == "working" and pos.status != PositionStatus.OPEN and not replaced:
                continue
            item["position"] = {"quantity": int(pos.quantity), "stop_loss": pos.stop_loss, "target": pos.target,
                                "avg_price": pos.avg_price}
            item["replaced"] = replaced
            if not replaced:
                item["replaces"] = [
                    {"signal_id": int(x.id), "gtt_id": x.gtt_id, "order_id": x.order_id}
                    for x in conn.execute(sa.select(s.id, s.gtt_id, s.order_id).where(
                        s.position_id == item["position_id"], s.kind == "exit", s.status == SignalStatus.PLACED,
                        s.id != item["id"]).order_by(s.id))]
        out.append(item)
    return out


# ---------------------------------------------------------------------------------------------- queries: analytics


def account_portfolio_rows(conn: Connection, account_id: int) -> list[Any]:
    """(id, strategy_id, mode, name) of every portfolio of the account (any status)."""
    pf = portfolios.c
    return list(conn.execute(sa.select(pf.id, pf.strategy_id, pf.mode, pf.name).where(pf.account_id == account_id))
                .all())


def position_rows(conn: Connection, portfolio_ids: Sequence[int]) -> list[Any]:
    """Every position row (all columns) of these portfolios, by id."""
    p = positions.c
    return list(conn.execute(sa.select(positions).where(p.portfolio_id.in_(portfolio_ids)).order_by(p.id)).all())


def equity_rows(conn: Connection, account_id: int) -> list[Any]:
    """Every daily close of the account's portfolios: (portfolio_id, day, cash, equity, strategy_id, mode,
    reset_seq (the portfolio's), row_seq (the row's)): rows of an earlier reset have row_seq < reset_seq."""
    pf, eq = portfolios.c, portfolio_equity.c
    return list(conn.execute(sa.select(eq.portfolio_id, eq.day, eq.cash, eq.equity, pf.strategy_id, pf.mode,
                                       pf.reset_seq, eq.reset_seq.label("row_seq"))
                             .join(portfolios, pf.id == eq.portfolio_id).where(pf.account_id == account_id)).all())
