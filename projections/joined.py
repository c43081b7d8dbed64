"""The queries that join read models: the live side's views, where the broker read model (what the agent
pushed of Kite) or the risk book meets the portfolios read model. Each read model keeps its tables to
itself (import-linter: "Read models are independent of each other"); these functions combine their public
queries (`projections.broker`, `projections.portfolios.queries`, `projections.risk`) and own no table.

Reconciliation compares, per instrument (matched by ISIN, then symbol; not by exchange), the open quantity
summed over the account's live portfolios with the broker's delivery quantity (holdings' quantity and
t1_quantity, plus today's CNC net positions) and flags `missing`, `extra` and `quantity` drift
(`domain.broker.reconcile`). It is computed on read from the stored snapshot and the positions read
model, so either side changing shows at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from domain.broker import protection_drift, reconcile
from domain.market_hours import IST
from projections.broker import broker_orders_pushed, broker_snapshot, get_connection
from projections.portfolios.queries import (
    list_signals,
    live_open_positions,
    live_protections,
    placed_live_signals,
    placed_signal_ids,
    signal_places,
)
from projections.risk import kill_switches


def unresolved_fills(conn: Connection, account_id: int) -> dict[int, dict[str, Any]]:
    """Signal id -> {order_id, gtt_id, detail, since, reported_at} of the placed signals whose broker order
    the agent could not find at Kite (its GTT triggered, the order is in neither the order book nor its
    history or trades), as of the agent's last push."""
    synced_at, _, unresolved = broker_orders_pushed(conn, account_id)
    return _unresolved(conn, account_id, synced_at, unresolved)


def _unresolved(conn: Connection, account_id: int, synced_at: str | None,
                unresolved: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """`unresolved_fills` from an already read push of the agent's orders."""
    if not unresolved:
        return {}
    placed = placed_signal_ids(conn, account_id, [int(u["signal_id"]) for u in unresolved])
    return {int(u["signal_id"]): {"order_id": u.get("order_id"), "gtt_id": u.get("gtt_id"),
                                  "detail": u.get("detail") or "", "since": u.get("since"), "reported_at": synced_at}
            for u in unresolved if int(u["signal_id"]) in placed}


def signals_with_fills(conn: Connection, account_id: int, **filters: Any) -> tuple[list[dict[str, Any]], int]:
    """`list_signals` (its filters and paging), each row with `fill_unresolved`: null, or what
    `unresolved_fills` says of a live signal whose triggered GTT's order the agent cannot find at Kite."""
    rows, total = list_signals(conn, account_id, **filters)
    unresolved = unresolved_fills(conn, account_id)
    for row in rows:
        row["fill_unresolved"] = unresolved.get(int(row["id"]))
    return rows, total


def reconciliation(conn: Connection, account_id: int, portfolio_id: int | None = None,
                   isins: Mapping[str, str] | None = None, today: str | None = None) -> dict[str, Any]:
    """Drift between the account's live portfolios and what the agent last pushed of the broker:
    quantities against the holdings/positions snapshot, matched by ISIN then symbol (`isins`: symbol ->
    ISIN of the model's symbols; kinds `missing`, `extra`, `quantity`); each open position's stop,
    target and quantity against its protective GTT (`gtt_missing`, `stop_drift`, `target_drift`,
    `gtt_quantity`; tick sizes of `today`, default today in IST); and the fills the agent could not
    resolve (`fill_unresolved`). With `portfolio_id`, only that portfolio's positions and signals are
    reported (extras are account-wide, so none)."""
    row = get_connection(conn, account_id)
    synced_at = row["holdings_synced_at"] if row else None
    model: dict[tuple[str, str], int] = {}
    mine: set[tuple[str, str]] = set()
    for r in live_open_positions(conn, account_id):
        key = (str(r.exchange), str(r.symbol))
        model[key] = model.get(key, 0) + int(r.quantity)
        if portfolio_id is not None and int(r.portfolio_id) == portfolio_id:
            mine.add(key)
    drift: list[dict[str, Any]] = []
    if synced_at is not None:
        hold_rows, net_rows = broker_snapshot(conn, account_id)
        drifts = reconcile(model, hold_rows, net_rows, isins)
        if portfolio_id is not None:
            drifts = [d for d in drifts if (d.exchange, d.symbol) in mine]
        drift += [d.to_dict() for d in drifts]
    gtts_synced_at, gtts, pushed_unresolved = broker_orders_pushed(conn, account_id)
    if gtts_synced_at is not None:
        day = today or datetime.now(IST).date().isoformat()
        drift += [d.to_dict() for d in protection_drift(live_protections(conn, account_id, portfolio_id), gtts, day)]
        unresolved = _unresolved(conn, account_id, gtts_synced_at, pushed_unresolved)
        for r in signal_places(conn, list(unresolved)):
            if portfolio_id is None or int(r.portfolio_id) == portfolio_id:
                drift.append({"kind": "fill_unresolved", "exchange": r.exchange, "symbol": r.symbol,
                              "signal_id": int(r.id), **unresolved[int(r.id)]})
    known = synced_at is not None or gtts_synced_at is not None
    return {"synced_at": synced_at, "positions_synced_at": row["positions_synced_at"] if row else None,
            "gtts_synced_at": gtts_synced_at, "drift": drift, "in_sync": (not drift) if known else None}


def agent_queue(conn: Connection, account_id: int, state: str = "pending") -> list[dict[str, Any]]:
    """Placed signals of the account's live portfolios for the agent (`state` pending or working), with why
    an entry must come off the broker -- a kill switch of the risk book among the reasons
    (`projections.portfolios.queries.placed_live_signals`)."""
    return placed_live_signals(conn, account_id, state, kill_switches(conn, account_id))
