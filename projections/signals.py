"""Signal queries over `rm_signals` (its table and projector live in `projections.portfolios`).

Entry signals are `buy`/`entry`; an exit the exit rules signalled is a `sell`/`exit` signal, `placed`
at once (it executes at the next open) and `executed` when its position closes. `expires_at` is the
market close (15:30 Asia/Kolkata) by which the signal must be acted on; `expires_epoch` holds the same
instant as UTC epoch seconds, which `overdue_signal_ids` compares.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from domain.status import SignalStatus
from projections.base import page, row_by
from projections.portfolios.tables import money, signals, utc_epoch, wire_ts

_SIGNAL_PUBLIC = (
    "id", "portfolio_id", "account_id", "strategy_id", "exchange", "symbol", "sector", "side", "kind", "conviction",
    "reference_price", "limit_price", "stop_loss", "target", "quantity", "status", "reason", "day", "entry_order",
    "validity_days", "created_at", "expires_at", "updated_at", "gtt_id", "order_id", "fill_price",
    "filled_quantity", "failure_reason", "position_id",
)
_SIGNAL_PRICES = ("reference_price", "limit_price", "stop_loss", "target", "fill_price")


def signal_public(row: Any) -> dict[str, Any]:
    m = row._mapping
    out = {k: m[k] for k in _SIGNAL_PUBLIC}
    for k in _SIGNAL_PRICES:
        out[k] = money(out[k])
    out["created_at"], out["updated_at"] = wire_ts(out["created_at"]), wire_ts(out["updated_at"])
    # The agent's report of a triggered GTT whose fill Kite cannot show lives in the broker read model;
    # GET /api/model/signals lays it over this null (projections.broker.unresolved_fills). One shape for
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
