"""The broker read models: each account's Kite connection (credentials saved, session status), the latest
holdings/positions snapshots the agent pushed, and the reconciliation of live portfolios against them.

Reconciliation compares, per instrument (matched by ISIN, then symbol; not by exchange), the open quantity
summed over the account's live portfolios with the broker's delivery quantity (holdings' quantity and
t1_quantity, plus today's CNC net positions) and flags
`missing`, `extra` and `quantity` drift (`domain.broker.reconcile`). It is computed on read from the
stored snapshot and the positions read model, so either side changing shows at once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from domain.broker import Protection, protection_drift, reconcile
from domain.market_hours import IST
from domain.portfolio.aggregate import PROTECTIVE_REASON
from domain.status import PositionStatus, SignalStatus
from projections.base import Projection
from projections.envelope import Envelope
from projections.portfolios.tables import portfolios, positions, signals
from projections.risk import risk_rules
from projections.signals import list_signals, signal_public

metadata = sa.MetaData()

connections = sa.Table(
    "rm_broker_connections", metadata,
    sa.Column("account_id", sa.BigInteger, primary_key=True),
    sa.Column("broker", sa.String(16), nullable=False),
    sa.Column("api_key", sa.String(64)),
    sa.Column("api_secret_masked", sa.String(32)),
    sa.Column("credentials_saved_at", sa.String(40)),
    sa.Column("connected", sa.Boolean, nullable=False),
    sa.Column("user_id", sa.String(64)),
    sa.Column("expires_at", sa.String(40)),
    sa.Column("source", sa.String(16)),
    sa.Column("disconnected_reason", sa.Text),
    sa.Column("last_login_at", sa.String(40)),
    sa.Column("holdings_synced_at", sa.String(40)),
    sa.Column("positions_synced_at", sa.String(40)),
    sa.Column("updated_at", sa.String(40), nullable=False),
)

broker_holdings = sa.Table(
    "rm_broker_holdings", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("account_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("exchange", sa.String(16), nullable=False),
    sa.Column("symbol", sa.String(64), nullable=False),
    sa.Column("product", sa.String(16)),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("t1_quantity", sa.Integer),
    sa.Column("average_price", sa.Float),
    sa.Column("last_price", sa.Float),
    sa.Column("isin", sa.String(16)),
)

broker_net_positions = sa.Table(
    "rm_broker_positions", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("account_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("exchange", sa.String(16), nullable=False),
    sa.Column("symbol", sa.String(64), nullable=False),
    sa.Column("product", sa.String(16)),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("average_price", sa.Float),
)


broker_orders = sa.Table(
    "rm_broker_orders", metadata,
    sa.Column("account_id", sa.BigInteger, primary_key=True),
    sa.Column("gtts", sa.Text, nullable=False),  # JSON: domain.broker.reduce_gtts
    sa.Column("unresolved", sa.Text, nullable=False),  # JSON: [{signal_id, order_id, gtt_id, detail, since}]
    sa.Column("synced_at", sa.String(40), nullable=False),
)


def _int(v: Any) -> int:
    try:
        return int(v or 0)
    except (TypeError, ValueError):
        return 0


def _float(v: Any) -> float | None:
    try:
        return None if v is None else float(v)
    except (TypeError, ValueError):
        return None


class BrokerProjection(Projection):
    name = "broker"
    metadata = metadata

    def create(self, conn: Connection) -> None:
        super().create(conn)
        # a database from before the `isin` column: add it (the next holdings snapshot fills it)
        columns = {c["name"] for c in sa.inspect(conn).get_columns(broker_holdings.name)}
        if "isin" not in columns:
            conn.execute(sa.text(f"ALTER TABLE {broker_holdings.name} ADD COLUMN isin VARCHAR(16)"))

    def _upsert(self, conn: Connection, env: Envelope, **values: Any) -> None:
        account_id = env.account_id
        c = connections.c
        done = conn.execute(sa.update(connections).where(c.account_id == account_id)
                            .values(updated_at=env.occurred_at, **values)).rowcount
        if not done:
            row: dict[str, Any] = {"account_id": account_id, "broker": "kite", "connected": False,
                                   "updated_at": env.occurred_at}
            row.update(values)
            conn.execute(sa.insert(connections), dict(**row))

    def on_KiteCredentialsSaved(self, conn: Connection, env: Envelope) -> None:
        d = env.data
        self._upsert(conn, env, api_key=d["api_key"], api_secret_masked=d["api_secret_masked"],
                     credentials_saved_at=d["at"])

    def on_KiteLoginCompleted(self, conn: Connection, env: Envelope) -> None:
        self._upsert(conn, env, last_login_at=env.data["at"])

    def on_BrokerSessionConnected(self, conn: Connection, env: Envelope) -> None:
        d = env.data
        self._upsert(conn, env, connected=True, user_id=d["user_id"], expires_at=d["expires_at"],
                     source=d["source"], disconnected_reason=None)

    def on_BrokerSessionDisconnected(self, conn: Connection, env: Envelope) -> None:
        self._upsert(conn, env, connected=False, disconnected_reason=env.data["reason"])

    def on_HoldingsSynced(self, conn: Connection, env: Envelope) -> None:
        conn.execute(sa.delete(broker_holdings).where(broker_holdings.c.account_id == env.account_id))
        rows = [{"account_id": env.account_id, "exchange": h.get("exchange") or "NSE",
                 "symbol": h.get("tradingsymbol") or "", "product": h.get("product"),
                 "quantity": _int(h.get("quantity")), "t1_quantity": _int(h.get("t1_quantity")),
                 "average_price": _float(h.get("average_price")), "last_price": _float(h.get("last_price")),
                 "isin": str(h.get("isin") or "")[:16] or None}
                for h in env.data["holdings"]]
        if rows:
            conn.execute(sa.insert(broker_holdings), rows)
        self._upsert(conn, env, holdings_synced_at=env.data["at"])

    def on_PositionsSynced(self, conn: Connection, env: Envelope) -> None:
        conn.execute(sa.delete(broker_net_positions).where(broker_net_positions.c.account_id == env.account_id))
        rows = [{"account_id": env.account_id, "exchange": p.get("exchange") or "NSE",
                 "symbol": p.get("tradingsymbol") or "", "product": p.get("product"),
                 "quantity": _int(p.get("quantity")), "average_price": _float(p.get("average_price"))}
                for p in env.data["net"]]
        if rows:
            conn.execute(sa.insert(broker_net_positions), rows)
        self._upsert(conn, env, positions_synced_at=env.data["at"])


    def on_BrokerOrdersSynced(self, conn: Connection, env: Envelope) -> None:
        d = env.data
        values = {"gtts": json.dumps(d["gtts"]), "unresolved": json.dumps(d["unresolved"]), "synced_at": d["at"]}
        c = broker_orders.c
        if not conn.execute(sa.update(broker_orders).where(c.account_id == env.account_id).values(**values)).rowcount:
            conn.execute(sa.insert(broker_orders), {"account_id": env.account_id, **values})


# ---------------------------------------------------------------------------------------------- queries


def get_connection(conn: Connection, account_id: int) -> dict[str, Any] | None:
    row = conn.execute(sa.select(connections).where(connections.c.account_id == account_id)).first()
    return None if row is None else dict(row._mapping)


def broker_status(conn: Connection, account_id: int, now: datetime | None = None) -> dict[str, Any]:
    """{"connected", "broker", "user_id", "expires_at", "source"} -- an expired session reads as disconnected."""
    row = get_connection(conn, account_id)
    if row is None or not row["connected"]:
        return {"connected": False, "broker": "kite", "user_id": row["user_id"] if row else None,
                "expires_at": None, "source": None}
    expires = datetime.fromisoformat(row["expires_at"]) if row["expires_at"] else None
    live = expires is None or expires > (now or datetime.now(UTC))
    return {"connected": live, "broker": "kite", "user_id": row["user_id"], "expires_at": expires,
            "source": row["source"]}


def live_accounts(conn: Connection) -> list[int]:
    """Accounts whose broker session is marked connected (expiry not checked)."""
    c = connections.c
    return [int(r[0]) for r in conn.execute(sa.select(c.account_id).where(c.connected.is_(True))).all()]


def _broker_orders(conn: Connection, account_id: int) -> tuple[str | None, list[dict[str, Any]],
                                                              list[dict[str, Any]]]:
    """(synced_at, gtts, unresolved) the agent last pushed (None, [], []: never)."""
    c = broker_orders.c
    row = conn.execute(sa.select(c.synced_at, c.gtts, c.unresolved).where(c.account_id == account_id)).first()
    if row is None:
        return None, [], []
    return str(row.synced_at), list(json.loads(row.gtts)), list(json.loads(row.unresolved))


def unresolved_fills(conn: Connection, account_id: int) -> dict[int, dict[str, Any]]:
    """Signal id -> {order_id, gtt_id, detail, since, reported_at} of the placed signals whose broker order
    the agent could not find at Kite (its GTT triggered, the order is in neither the order book nor its
    history or trades), as of the agent's last push."""
    synced_at, _, unresolved = _broker_orders(conn, account_id)
    if not unresolved:
        return {}
    s = signals.c
    ids = [int(u["signal_id"]) for u in unresolved]
    placed = {int(r.id) for r in conn.execute(sa.select(s.id).where(
        s.account_id == account_id, s.status == SignalStatus.PLACED, s.id.in_(ids)))}
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


def _protections(conn: Connection, account_id: int, portfolio_id: int | None) -> list[Protection]:
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
    p, pf = positions.c, portfolios.c
    held = conn.execute(
        sa.select(p.portfolio_id, p.exchange, p.symbol, p.quantity)
        .select_from(positions.join(portfolios, portfolios.c.id == p.portfolio_id))
        .where(p.account_id == account_id, p.status == PositionStatus.OPEN, pf.mode == "live")
    ).all()
    model: dict[tuple[str, str], int] = {}
    mine: set[tuple[str, str]] = set()
    for r in held:
        key = (str(r.exchange), str(r.symbol))
        model[key] = model.get(key, 0) + int(r.quantity)
        if portfolio_id is not None and int(r.portfolio_id) == portfolio_id:
            mine.add(key)
    drift: list[dict[str, Any]] = []
    if synced_at is not None:
        h, n = broker_holdings.c, broker_net_positions.c
        hold_rows = [{"exchange": r.exchange, "tradingsymbol": r.symbol, "quantity": r.quantity,
                      "t1_quantity": r.t1_quantity, "isin": r.isin}
                     for r in conn.execute(sa.select(h.exchange, h.symbol, h.quantity, h.t1_quantity, h.isin)
                                           .where(h.account_id == account_id))]
        net_rows = [{"exchange": r.exchange, "tradingsymbol": r.symbol, "quantity": r.quantity,
                     "product": r.product}
                    for r in conn.execute(sa.select(n.exchange, n.symbol, n.quantity, n.product)
                                          .where(n.account_id == account_id))]
        drifts = reconcile(model, hold_rows, net_rows, isins)
        if portfolio_id is not None:
            drifts = [d for d in drifts if (d.exchange, d.symbol) in mine]
        drift += [d.to_dict() for d in drifts]
    gtts_synced_at, gtts, _ = _broker_orders(conn, account_id)
    if gtts_synced_at is not None:
        day = today or datetime.now(IST).date().isoformat()
        drift += [d.to_dict() for d in protection_drift(_protections(conn, account_id, portfolio_id), gtts, day)]
        unresolved = unresolved_fills(conn, account_id)
        s = signals.c
        for r in conn.execute(sa.select(s.id, s.portfolio_id, s.exchange, s.symbol)
                              .where(s.id.in_(sorted(unresolved))).order_by(s.id)):
            if portfolio_id is None or int(r.portfolio_id) == portfolio_id:
                drift.append({"kind": "fill_unresolved", "exchange": r.exchange, "symbol": r.symbol,
                              "signal_id": int(r.id), **unresolved[int(r.id)]})
    known = synced_at is not None or gtts_synced_at is not None
    return {"synced_at": synced_at, "positions_synced_at": row["positions_synced_at"] if row else None,
            "gtts_synced_at": gtts_synced_at, "drift": drift, "in_sync": (not drift) if known else None}


def _withdraw_reason(r: Any, switches: Sequence[Any]) -> str | None:
    """Why a placed live entry must come off the broker (its GTT deleted there first, then the expiry
    recorded by the agent's report), or None: a kill switch covers it, its portfolio is paused or
    retired, or its validity passed (the portfolio processed the bars of its last valid day)."""
    for rule in switches:
        if rule.portfolio_id is None or int(rule.portfolio_id) == int(r.portfolio_id):
            return f"kill switch engaged (rule {rule.id})"
    if r.portfolio_status in ("paused", "retired"):
        return f"portfolio {r.portfolio_status}"
    last_day, expires = r.portfolio_last_day, str(r.expires_at or "")[:10]
    if last_day and expires and str(last_day) >= expires:
        return f"validity passed (valid until {expires})"
    return None


def agent_queue(conn: Connection, account_id: int, state: str = "pending") -> list[dict[str, Any]]:
    """Placed signals of the account's live portfolios, oldest first, for the agent. `pending`: not yet at
    the broker (no gtt_id / order_id); `working`: at the broker, not yet executed or failed. Exit signals
    carry their position's quantity, stop_loss, target and average price. Entry signals carry `withdraw`:
    None, or why the entry must come off the broker (`_withdraw_reason`): the agent deletes its GTT at
    Kite (or never places it) and then reports it `expired`.

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
    rr = risk_rules.c
    switches = conn.execute(sa.select(rr.id, rr.portfolio_id).where(
        rr.account_id == account_id, rr.rule_type == "kill_switch")).all()
    out = []
    for r in rows:
        item = signal_public(r)
        if item["kind"] == "entry":
            item["withdraw"] = _withdraw_reason(r, switches)
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
