"""The model-portfolio read models: portfolios, their signals and positions, the daily equity curve and
the activity timeline; plus the queries the API and the scheduler call.

Every Portfolio event but PortfolioDeployed names its portfolio only through the aggregate id, so
`rm_portfolios.aggregate_id` is kept (unique) and looked up. The rows follow the aggregate's `when_*`
mutators exactly: cash moves with fills (qty x price + charges) and closes (qty x exit price - exit
charges), rounded as the aggregate rounds; `DayClosed` carries the authoritative cash, equity and the
closes of the held symbols; `invested`/`equity` are recomputed from the open positions after every
change, in entry order, so they equal the aggregate's own `equity` to the paisa.

Resets: `PortfolioReset` keeps every row (history) but bumps the portfolio's `reset_seq`; equity-curve
rows carry the `reset_seq` of their day, and `equity_curve` serves only the current one. Open positions
become `reset`, live signals (pending_approval, in_cart, placed -- exit signals included) `expired`
with failure_reason "portfolio reset".

Activity: one row per Portfolio event (DayClosed left out: the equity curve shows the closes, and 250
of them would bury everything else) and per RiskBreached that names a portfolio; keyed by the store
position, read newest first through the (portfolio_id, position) index.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from domain.calendar import nse_calendar
from domain.market_hours import IST, SESSION_CLOSE
from domain.money import format_number
from domain.status import LIVE_SIGNAL_STATUSES, PortfolioStatus, PositionStatus, SignalStatus
from projections.base import Projection, page, row_by, update_by
from projections.envelope import Envelope

_CALENDAR = nse_calendar()

metadata = sa.MetaData()

portfolios = sa.Table(
    "rm_portfolios", metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("aggregate_id", sa.String(36), nullable=False, unique=True),
    sa.Column("account_id", sa.BigInteger, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("mode", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("strategy_id", sa.BigInteger, index=True),
    sa.Column("strategy", sa.JSON, nullable=False),
    sa.Column("universe", sa.String(200), nullable=False),
    sa.Column("capital", sa.Float, nullable=False),
    sa.Column("cash", sa.Float, nullable=False),
    sa.Column("invested", sa.Float, nullable=False),
    sa.Column("equity", sa.Float, nullable=False),
    sa.Column("realized_pnl", sa.Float, nullable=False),
    sa.Column("day_pnl", sa.Float, nullable=False),
    # the aggregate's close_equity / prev_close_equity: day_pnl = equity - prev_close_equity
    sa.Column("close_equity", sa.Float, nullable=False),
    sa.Column("prev_close_equity", sa.Float, nullable=False),
    sa.Column("position_size_pct", sa.Float, nullable=False),
    sa.Column("max_positions", sa.Integer, nullable=False),
    sa.Column("max_per_sector", sa.Integer),
    sa.Column("auto_approve", sa.Boolean, nullable=False),
    sa.Column("slippage_bps", sa.Float, nullable=False),
    sa.Column("charges", sa.String(32), nullable=False),
    sa.Column("deployed_on", sa.String(10), nullable=False),
    sa.Column("last_day", sa.String(10)),
    sa.Column("reset_seq", sa.Integer, nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
)

signals = sa.Table(
    "rm_signals", metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("portfolio_id", sa.BigInteger, nullable=False),
    sa.Column("account_id", sa.BigInteger),
    sa.Column("strategy_id", sa.BigInteger),
    sa.Column("exchange", sa.String(16), nullable=False),
    sa.Column("symbol", sa.String(32), nullable=False),
    sa.Column("sector", sa.String(100), nullable=False),
    sa.Column("side", sa.String(4), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("conviction", sa.Float),
    sa.Column("reference_price", sa.Float),
    sa.Column("limit_price", sa.Float),
    sa.Column("stop_loss", sa.Float),
    sa.Column("target", sa.Float),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("day", sa.String(10), nullable=False),
    sa.Column("entry_order", sa.String(16)),
    sa.Column("validity_days", sa.Integer, nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("expires_at", sa.String(40), nullable=False),  # ISO, +05:30 (the market close)
    sa.Column("expires_epoch", sa.Float, nullable=False),  # the same instant, UTC epoch seconds
    sa.Column("updated_at", sa.String(40), nullable=False),
    sa.Column("gtt_id", sa.String(64)),
    sa.Column("order_id", sa.String(64)),
    sa.Column("fill_price", sa.Float),
    sa.Column("filled_quantity", sa.Integer),
    sa.Column("failure_reason", sa.Text),
    sa.Column("position_id", sa.BigInteger),
    sa.Index("ix_rm_signals_account_id_id", "account_id", "id"),
    sa.Index("ix_rm_signals_portfolio_id_id", "portfolio_id", "id"),
    sa.Index("ix_rm_signals_status_expires", "status", "expires_epoch"),
)

positions = sa.Table(
    "rm_positions", metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("portfolio_id", sa.BigInteger, nullable=False),
    sa.Column("account_id", sa.BigInteger),
    sa.Column("signal_id", sa.BigInteger),
    sa.Column("exchange", sa.String(16), nullable=False),
    sa.Column("symbol", sa.String(32), nullable=False),
    sa.Column("sector", sa.String(100), nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("avg_price", sa.Float, nullable=False),
    sa.Column("entry_date", sa.String(10), nullable=False),
    sa.Column("entry_charges", sa.Float, nullable=False),
    sa.Column("stop_loss", sa.Float),
    sa.Column("stop_reason", sa.String(20), nullable=False),
    sa.Column("trail", sa.Float),
    sa.Column("target", sa.Float),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("last_price", sa.Float, nullable=False),
    sa.Column("unrealized_pnl", sa.Float),
    sa.Column("exit_price", sa.Float),
    sa.Column("exit_date", sa.String(10)),
    sa.Column("exit_reason", sa.String(20)),
    sa.Column("exit_charges", sa.Float, nullable=False),
    sa.Column("realized_pnl", sa.Float),
    sa.Column("charges", sa.Float, nullable=False),
    sa.Column("conviction", sa.Float),
    sa.Column("exit_pending", sa.Boolean, nullable=False),
    sa.Column("exit_signal_id", sa.BigInteger),
    sa.Column("updated_at", sa.String(40), nullable=False),
    sa.Index("ix_rm_positions_portfolio_status", "portfolio_id", "status"),
    sa.Index("ix_rm_positions_account_id_id", "account_id", "id"),
)

portfolio_equity = sa.Table(
    "rm_portfolio_equity", metadata,
    sa.Column("portfolio_id", sa.BigInteger, primary_key=True),
    sa.Column("day", sa.String(10), primary_key=True),
    sa.Column("reset_seq", sa.Integer, nullable=False),
    sa.Column("cash", sa.Float, nullable=False),
    sa.Column("equity", sa.Float, nullable=False),
)

activity_log = sa.Table(
    "rm_activity", metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),  # the envelope's position
    sa.Column("portfolio_id", sa.BigInteger, nullable=False),
    sa.Column("account_id", sa.BigInteger),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("at", sa.String(40), nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Index("ix_rm_activity_portfolio_position", "portfolio_id", "position"),
)


# ---------------------------------------------------------------------------------------------- helpers


def expiry(day: str, validity_days: int) -> tuple[str, float]:
    """The market close (15:30 Asia/Kolkata) of the trading day `validity_days` trading days after
    `day`: as an ISO string with +05:30 and as UTC epoch seconds (what comparisons use)."""
    last = _CALENDAR.add_trading_days(date.fromisoformat(day), max(int(validity_days), 0))
    close = datetime.combine(last, SESSION_CLOSE, IST)
    return close.isoformat(), close.timestamp()


def utc_epoch(iso: str) -> float:
    """UTC epoch seconds of an ISO timestamp ("Z" accepted; no offset means UTC)."""
    dt = datetime.fromisoformat(iso.replace("Z", "+00:00") if iso.endswith("Z") else iso)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def wire_ts(ts: str | None) -> str | None:
    # Stored as Python isoformat; served as the API's other UTC timestamps are ("...Z").
    if ts is None:
        return None
    return ts[:-6] + "Z" if ts.endswith("+00:00") else ts


def money(x: float | None) -> float | None:
    return None if x is None else round(float(x), 2)


def _fmt(x: float | None) -> str:
    """Prices and amounts in activity summaries: Indian grouping (14,720.50; 1,30,13,928.67)."""
    return "-" if x is None else format_number(x, 2)


# ---------------------------------------------------------------------------------------------- projection


class PortfoliosProjection(Projection):
    name = "portfolios"
    metadata = metadata

    def __init__(self) -> None:
        super().__init__()
        self._symbols: dict[int, str] = {}  # signal id -> symbol (never changes), for activity summaries

    def apply(self, conn: Connection, env: Envelope) -> None:
        if env.aggregate_type == "Portfolio":
            pf = None
            if env.type != "PortfolioDeployed":
                pf = self._pf(conn, env)
                if pf is None:
                    return  # a portfolio this read model never saw deployed: nothing to attach the event to
            super().apply(conn, env)
            if env.type != "DayClosed":
                if pf is None:
                    pf = self._pf(conn, env)
                self._log(conn, env, int(pf.id), pf.account_id)  # (id and owner never change)
            return
        super().apply(conn, env)
        if env.type == "RiskBreached" and env.data.get("portfolio_id") is not None:
            self._log(conn, env, int(env.data["portfolio_id"]), env.account_id)

    # ------------------------------------------------------------------ lookups and writes

    @staticmethod
    def _pf(conn: Connection, env: Envelope) -> Any:
        return row_by(conn, portfolios, "aggregate_id", env.aggregate_id)

    def _pf_required(self, conn: Connection, env: Envelope) -> Any:
        pf = self._pf(conn, env)
        if pf is None:
            raise LookupError(f"{env.type} at position {env.position}: no portfolio for aggregate {env.aggregate_id}")
        return pf

    @staticmethod
    def _signal(conn: Connection, signal_id: int) -> Any:
        return row_by(conn, signals, "id", signal_id)

    @staticmethod
    def _position(conn: Connection, position_id: int) -> Any:
        return row_by(conn, positions, "id", position_id)

    @staticmethod
    def _set_signal(conn: Connection, env: Envelope, signal_id: int, **values: Any) -> None:
        update_by(conn, signals, "id", signal_id, updated_at=env.occurred_at, **values)

    @staticmethod
    def _set_position(conn: Connection, env: Envelope, position_id: int, **values: Any) -> None:
        update_by(conn, positions, "id", position_id, updated_at=env.occurred_at, **values)

    @staticmethod
    def _revalue(conn: Connection, env: Envelope, pf: Any, *, equity: float | None = None, **values: Any) -> None:
        """Write the portfolio's money columns: invested from the open positions (in entry order, as the
        aggregate sums them), equity = cash + invested unless given (DayClosed), day_pnl against the
        previous close."""
        cash = float(values.get("cash", pf.cash))
        prev_close = float(values.get("prev_close_equity", pf.prev_close_equity))
        p = positions.c
        marks = conn.execute(sa.select(p.quantity, p.last_price)
                             .where(p.portfolio_id == pf.id, p.status == PositionStatus.OPEN).order_by(p.id)).all()
        invested = sum(int(r.quantity) * float(r.last_price) for r in marks)
        eq = round(cash + invested, 2) if equity is None else float(equity)
        update_by(conn, portfolios, "id", pf.id, invested=round(invested, 2), equity=eq,
                  day_pnl=round(eq - prev_close, 2), updated_at=env.occurred_at, **values)

    # ------------------------------------------------------------------ lifecycle

    def on_PortfolioDeployed(self, conn: Connection, env: Envelope) -> None:
        d = env.data
        capital = float(d["capital"])
        conn.execute(sa.insert(portfolios), dict(
            id=d["portfolio_id"], aggregate_id=env.aggregate_id,
            account_id=d["account_id"] if d.get("account_id") is not None else env.account_id,
            name=d["name"], mode=d["mode"], status=PortfolioStatus.ACTIVE, strategy_id=d["strategy_id"],
            strategy=d["strategy"],
            universe=d["universe"], capital=capital, cash=capital, invested=0.0, equity=capital, realized_pnl=0.0,
            day_pnl=0.0, close_equity=capital, prev_close_equity=capital,
            position_size_pct=d["position_size_pct"], max_positions=d["max_positions"],
            max_per_sector=d["max_per_sector"], auto_approve=d["auto_approve"], slippage_bps=d["slippage_bps"],
            charges=d["charges"], deployed_on=d["day"], last_day=None, reset_seq=0,
            created_at=env.occurred_at, updated_at=env.occurred_at,
        ))

    def _set_status(self, conn: Connection, env: Envelope, status: str) -> None:
        update_by(conn, portfolios, "aggregate_id", env.aggregate_id, status=status, updated_at=env.occurred_at)

    def on_PortfolioPaused(self, conn: Connection, env: Envelope) -> None:
        self._set_status(conn, env, "paused")

    def on_PortfolioResumed(self, conn: Connection, env: Envelope) -> None:
        self._set_status(conn, env, "active")

    def on_PortfolioRetired(self, conn: Connection, env: Envelope) -> None:
        self._set_status(conn, env, "retired")

    def on_PortfolioReset(self, conn: Connection, env: Envelope) -> None:
        pf = self._pf_required(conn, env)
        capital = float(env.data["capital"])
        s, p = signals.c, positions.c
        conn.execute(sa.update(signals).where(s.portfolio_id == pf.id, s.status.in_(LIVE_SIGNAL_STATUSES))
                     .values(status=SignalStatus.EXPIRED, failure_reason="portfolio reset", updated_at=env.occurred_at))
        conn.execute(sa.update(positions).where(p.portfolio_id == pf.id, p.status == PositionStatus.OPEN)
                     .values(status=PositionStatus.RESET, unrealized_pnl=None, exit_pending=False,
                             updated_at=env.occurred_at))
        self._revalue(conn, env, pf, cash=capital, close_equity=capital, prev_close_equity=capital,
                      realized_pnl=0.0, status=PortfolioStatus.ACTIVE, reset_seq=int(pf.reset_seq) + 1)

    # ------------------------------------------------------------------ signals

    def on_SignalGenerated(self, conn: Connection, env: Envelope) -> None:
        d = env.data
        pf = self._pf_required(conn, env)
        expires_at, expires_epoch = expiry(d["day"], d["validity_days"])
        conn.execute(sa.insert(signals), dict(
            id=d["signal_id"], portfolio_id=pf.id, account_id=pf.account_id, strategy_id=pf.strategy_id,
            exchange=d["exchange"], symbol=d["symbol"], sector=d["sector"], side="buy", kind="entry",
            conviction=d["conviction"], reference_price=d["reference_price"], limit_price=d["limit_price"],
            stop_loss=d["stop_loss"], target=d["target"], quantity=d["quantity"], status=SignalStatus.PENDING_APPROVAL,
            reason=d["reason"], day=d["day"], entry_order=d["entry_order"], validity_days=d["validity_days"],
            created_at=env.occurred_at, expires_at=expires_at, expires_epoch=expires_epoch,
            updated_at=env.occurred_at,
        ))
        self._remember_symbol(d["signal_id"], d["symbol"])

    def on_SignalApproved(self, conn: Connection, env: Envelope) -> None:
        self._set_signal(conn, env, env.data["signal_id"], status=SignalStatus.IN_CART)

    def on_SignalRejected(self, conn: Connection, env: Envelope) -> None:
        self._set_signal(conn, env, env.data["signal_id"], status=SignalStatus.REJECTED,
                         failure_reason=env.data["reason"])

    def on_SignalExpired(self, conn: Connection, env: Envelope) -> None:
        self._set_signal(conn, env, env.data["signal_id"], status=SignalStatus.EXPIRED,
                         failure_reason=env.data["reason"])

    def on_OrderPlaced(self, conn: Connection, env: Envelope) -> None:
        d = env.data
        sig = self._signal(conn, d["signal_id"])
        values: dict[str, Any] = {}
        if sig is not None:  # the order is live on the trading days after its placement day
            values["expires_at"], values["expires_epoch"] = expiry(d["day"], int(sig.validity_days))
        self._set_signal(conn, env, d["signal_id"], status=SignalStatus.PLACED, order_id=d["order_id"],
                         gtt_id=d["gtt_id"],
                         **values)

    def on_OrderFailed(self, conn: Connection, env: Envelope) -> None:
        self._set_signal(conn, env, env.data["signal_id"], status=SignalStatus.FAILED,
                         failure_reason=env.data["reason"])

    def on_EntryExpired(self, conn: Connection, env: Envelope) -> None:
        self._set_signal(conn, env, env.data["signal_id"], status=SignalStatus.EXPIRED,
                         failure_reason="entry order not filled within its validity")

    def on_FillRecorded(self, conn: Connection, env: Envelope) -> None:
        d = env.data
        self._set_signal(conn, env, d["signal_id"], status=SignalStatus.EXECUTED, fill_price=d["price"],
                         filled_quantity=d["quantity"])
        pf = self._pf_required(conn, env)
        cash = round(float(pf.cash) - int(d["quantity"]) * float(d["price"]) - float(d["charges"]), 2)
        self._revalue(conn, env, pf, cash=cash)

    # ------------------------------------------------------------------ positions

    def on_PositionOpened(self, conn: Connection, env: Envelope) -> None:
        d = env.data
        pf = self._pf_required(conn, env)
        entry, qty, fee = float(d["entry_price"]), int(d["quantity"]), float(d["entry_charges"])
        conn.execute(sa.insert(positions), dict(
            id=d["position_id"], portfolio_id=pf.id, account_id=pf.account_id, signal_id=d["signal_id"],
            exchange=d["exchange"], symbol=d["symbol"], sector=d["sector"], quantity=qty, avg_price=entry,
            entry_date=d["day"], entry_charges=fee, stop_loss=d["stop_loss"], stop_reason="stop_loss", trail=None,
            target=d["target"], status=PositionStatus.OPEN, last_price=entry, unrealized_pnl=round(-fee, 2),
            exit_charges=0.0, charges=fee, conviction=d["conviction"], exit_pending=False,
            updated_at=env.occurred_at,
        ))
        if d["signal_id"] is not None:
            self._set_signal(conn, env, d["signal_id"], position_id=d["position_id"])
        self._revalue(conn, env, pf)

    def on_StopUpdated(self, conn: Connection, env: Envelope) -> None:
        d = env.data
        self._set_position(conn, env, d["position_id"], stop_loss=d["stop_loss"], trail=d["trail"],
                           stop_reason=d["reason"])

    def on_ExitSignalled(self, conn: Connection, env: Envelope) -> None:
        d = env.data
        sid = d.get("signal_id")
        self._set_position(conn, env, d["position_id"], exit_pending=True, exit_signal_id=sid)
        if sid is None:
            return
        pf = self._pf_required(conn, env)
        pos = self._position(conn, d["position_id"])
        expires_at, expires_epoch = expiry(d["day"], 1)  # sold at the next open
        conn.execute(sa.insert(signals), dict(
            id=sid, portfolio_id=pf.id, account_id=pf.account_id, strategy_id=pf.strategy_id,
            exchange=pos.exchange if pos is not None else "NSE",
            symbol=d.get("symbol") or (pos.symbol if pos is not None else ""),
            sector=pos.sector if pos is not None else "", side="sell", kind="exit",
            conviction=pos.conviction if pos is not None else None, reference_price=d.get("reference_price"),
            limit_price=None, stop_loss=None, target=None,
            quantity=d.get("quantity") or (pos.quantity if pos is not None else 0), status=SignalStatus.PLACED,
            reason=d.get("reason") or "", day=d["day"], entry_order="next_open", validity_days=1,
            created_at=env.occurred_at, expires_at=expires_at, expires_epoch=expires_epoch,
            updated_at=env.occurred_at, position_id=d["position_id"],
        ))

    def on_PositionClosed(self, conn: Connection, env: Envelope) -> None:
        d = env.data
        pos = self._position(conn, d["position_id"])
        if pos is None:
            return
        exit_price, fee, pnl = float(d["exit_price"]), float(d["exit_charges"]), float(d["realized_pnl"])
        self._set_position(conn, env, pos.id, status=PositionStatus.CLOSED, exit_price=exit_price, exit_date=d["day"],
                           exit_reason=d["exit_reason"], exit_charges=fee, realized_pnl=pnl,
                           charges=round(float(pos.entry_charges) + fee, 2), last_price=exit_price,
                           unrealized_pnl=None, exit_pending=False)
        by = d.get("signal_id") or pos.exit_signal_id  # the exit fill that closed it, else the pending exit
        if by is not None:
            self._set_signal(conn, env, by, status=SignalStatus.EXECUTED, fill_price=exit_price,
                             filled_quantity=pos.quantity)
        pf = self._pf_required(conn, env)
        cash = round(float(pf.cash) + int(pos.quantity) * exit_price - fee, 2)
        self._revalue(conn, env, pf, cash=cash, realized_pnl=round(float(pf.realized_pnl) + pnl, 2))

    def on_PositionReduced(self, conn: Connection, env: Envelope) -> None:
        """The sold shares become a closed lot row of their own (with their part of the entry charges);
        the open row keeps the rest."""
        d = env.data
        pos = self._position(conn, d["position_id"])
        if pos is None:
            return
        qty, price = int(d["quantity"]), float(d["exit_price"])
        part, fee, pnl = float(d["entry_charges"]), float(d["exit_charges"]), float(d["realized_pnl"])
        row = dict(pos._mapping)
        row.update(id=d["lot_id"], quantity=qty, entry_charges=part, status=PositionStatus.CLOSED, last_price=price,
                   unrealized_pnl=None, exit_price=price, exit_date=d["day"], exit_reason=d["exit_reason"],
                   exit_charges=fee, realized_pnl=pnl, charges=round(part + fee, 2), exit_pending=False,
                   exit_signal_id=d["signal_id"], updated_at=env.occurred_at)
        conn.execute(sa.insert(positions), row)
        left = int(pos.quantity) - qty
        entry_left = round(float(pos.entry_charges) - part, 2)
        values: dict[str, Any] = dict(
            quantity=left, entry_charges=entry_left, charges=round(float(pos.charges) - part, 2),
            unrealized_pnl=round((float(pos.last_price) - float(pos.avg_price)) * left - entry_left, 2))
        if d["signal_id"] is not None and pos.exit_signal_id == d["signal_id"]:
            values.update(exit_pending=False, exit_signal_id=None)
        self._set_position(conn, env, pos.id, **values)
        if d["signal_id"] is not None:
            self._set_signal(conn, env, d["signal_id"], status=SignalStatus.EXECUTED, fill_price=price,
                             filled_quantity=qty,
                             position_id=pos.id)
        pf = self._pf_required(conn, env)
        cash = round(float(pf.cash) + qty * price - fee, 2)
        self._revalue(conn, env, pf, cash=cash, realized_pnl=round(float(pf.realized_pnl) + pnl, 2))

    def on_BrokerOrderRecorded(self, conn: Connection, env: Envelope) -> None:
        d = env.data
        self._set_signal(conn, env, d["signal_id"], order_id=d["order_id"], gtt_id=d["gtt_id"])

    def on_ExitOrderFailed(self, conn: Connection, env: Envelope) -> None:
        d = env.data
        self._set_signal(conn, env, d["signal_id"], status=SignalStatus.FAILED, failure_reason=d["reason"])
        p = positions.c
        conn.execute(sa.update(positions).where(p.id == d["position_id"], p.exit_signal_id == d["signal_id"])
                     .values(exit_pending=False, exit_signal_id=None, updated_at=env.occurred_at))

    def on_ExitOrderCancelled(self, conn: Connection, env: Envelope) -> None:
        d = env.data
        self._set_signal(conn, env, d["signal_id"], status=SignalStatus.FAILED,
                         failure_reason=f"replaced by a manual close; cancelled at the broker ({d['reason']})")

    def on_DayClosed(self, conn: Connection, env: Envelope) -> None:
        d = env.data
        pf = self._pf_required(conn, env)
        marks: dict[str, float] = d["marks"]
        p = positions.c
        if marks:
            held = conn.execute(sa.select(p.id, p.symbol, p.quantity, p.avg_price, p.entry_charges)
                                .where(p.portfolio_id == pf.id, p.status == PositionStatus.OPEN)).all()
            for r in held:
                mark = marks.get(r.symbol)
                if mark is not None:
                    self._set_position(conn, env, r.id, last_price=mark, unrealized_pnl=round(
                        (float(mark) - float(r.avg_price)) * int(r.quantity) - float(r.entry_charges), 2))
        cash, equity = float(d["cash"]), float(d["equity"])
        conn.execute(sa.insert(portfolio_equity), dict(
            portfolio_id=pf.id, day=d["day"], reset_seq=pf.reset_seq, cash=cash, equity=equity,
        ))
        self._revalue(conn, env, pf, equity=equity, cash=cash, last_day=d["day"],
                      prev_close_equity=float(pf.close_equity), close_equity=equity)

    # ------------------------------------------------------------------ activity

    def _log(self, conn: Connection, env: Envelope, portfolio_id: int, account_id: int | None) -> None:
        conn.execute(sa.insert(activity_log), dict(
            id=env.position, portfolio_id=portfolio_id, account_id=account_id, position=env.position,
            type=env.type, at=env.occurred_at, summary=self._summary(conn, env), data=env.data,
        ))

    def _signal_symbol(self, conn: Connection, signal_id: int) -> str | None:
        sym = self._symbols.get(signal_id)
        if sym is None:
            sig = self._signal(conn, signal_id)
            if sig is None:
                return None
            sym = self._remember_symbol(signal_id, sig.symbol)
        return sym

    def _remember_symbol(self, signal_id: int, symbol: str) -> str:
        if len(self._symbols) >= 200_000:
            self._symbols.clear()
        self._symbols[signal_id] = symbol
        return symbol

    def _summary(self, conn: Connection, env: Envelope) -> str:  # noqa: C901 (known debt: docs/DESIGN.md)
        d, t = env.data, env.type
        sym = d.get("symbol")
        if not sym and d.get("signal_id") is not None:
            sym = self._signal_symbol(conn, d["signal_id"])
        pos = None
        if d.get("position_id") is not None and (not sym or (t == "ExitSignalled" and not d.get("quantity"))):
            pos = self._position(conn, d["position_id"])
        if not sym:
            sym = pos.symbol if pos is not None else "?"
        if t == "PortfolioDeployed":
            return (f"Portfolio {d['portfolio_id']} deployed: {d['name']!r} ({d['mode']}) with capital "
                    f"{_fmt(d['capital'])}")
        if t == "SignalGenerated":
            price = d["limit_price"] if d["limit_price"] is not None else d["reference_price"]
            return (f"Signal {d['signal_id']} generated: BUY {d['quantity']} {sym} @ {_fmt(price)} "
                    f"(conviction {float(d['conviction']):.1f})")
        if t == "SignalApproved":
            return f"Signal {d['signal_id']} approved: {sym} added to the cart"
        if t == "SignalRejected":
            return f"Signal {d['signal_id']} rejected: {sym} ({d['reason']})"
        if t == "SignalExpired":
            return f"Signal {d['signal_id']} expired: {sym} ({d['reason']})"
        if t == "OrderPlaced":
            how = "at the next open" if d["limit_price"] is None else f"limit {_fmt(d['limit_price'])}"
            ref = (f" (GTT {d['gtt_id']})" if d.get("gtt_id")
                   else f" (order {d['order_id']})" if d.get("order_id") else "")
            return f"Order placed for signal {d['signal_id']}: BUY {d['quantity']} {sym} {how}{ref}"
        if t == "OrderFailed":
            return f"Order for signal {d['signal_id']} failed: {sym} ({d['reason']})"
        if t == "EntryExpired":
            return f"Entry order for signal {d['signal_id']} expired unfilled: {sym}"
        if t == "FillRecorded":
            return (f"Signal {d['signal_id']} filled: {str(d['side']).upper()} {d['quantity']} {sym} @ "
                    f"{_fmt(d['price'])}, charges {_fmt(d['charges'])}")
        if t == "PositionOpened":
            return (f"Position {d['position_id']} opened: {d['quantity']} {sym} @ {_fmt(d['entry_price'])}, "
                    f"stop {_fmt(d['stop_loss'])}, target {_fmt(d['target'])}")
        if t == "StopUpdated":
            kind = "trailing stop" if d["reason"] == "trailing_stop" else "stop"
            return f"Position {d['position_id']} {kind} moved to {_fmt(d['stop_loss'])}: {sym}"
        if t == "ExitSignalled":
            why = f" ({d['reason']})" if d.get("reason") else ""
            if d.get("replaces") is not None:
                why += f", replacing the protective order of signal {d['replaces']}"
            qty = d.get("quantity") or (pos.quantity if pos is not None else "")
            head = f"Signal {d['signal_id']}: " if d.get("signal_id") is not None else ""
            return f"{head}exit signalled for position {d['position_id']}: SELL {qty} {sym} at the next open{why}"
        if t == "PositionClosed":
            return (f"Position {d['position_id']} closed: {sym} at {_fmt(d['exit_price'])} ({d['exit_reason']}), "
                    f"P&L {_fmt(d['realized_pnl'])}")
        if t == "PositionReduced":
            return (f"Position {d['position_id']} reduced: sold {d['quantity']} {sym} at {_fmt(d['exit_price'])} "
                    f"({d['exit_reason']}), P&L {_fmt(d['realized_pnl'])}; the sold shares are closed position "
                    f"{d['lot_id']}")
        if t == "ExitOrderCancelled":
            return (f"Exit order for signal {d['signal_id']} cancelled at the broker: {sym} ({d['reason']}); "
                    "a manual close replaced it")
        if t == "PortfolioPaused":
            return "Portfolio paused: no new entries (exits still managed)"
        if t == "PortfolioResumed":
            return "Portfolio resumed"
        if t == "PortfolioRetired":
            return "Portfolio retired"
        if t == "PortfolioReset":
            return f"Portfolio reset to its capital {_fmt(d['capital'])}: positions and live signals cleared"
        if t == "RiskBreached":
            if d["action"] == "daily_loss":
                return f"Risk limit reached: {d['message']}"
            target = f" of signal {d['signal_id']}" if d.get("signal_id") is not None else ""
            return f"Risk rule {d['rule_id']} refused the {d['action']}{target}: {d['message']}"
        if t == "BrokerOrderRecorded":
            ref = " / ".join(x for x in (f"GTT {d['gtt_id']}" if d.get("gtt_id") else "",
                                          f"order {d['order_id']}" if d.get("order_id") else "") if x)
            return f"Signal {d['signal_id']} sent to the broker: {sym} ({ref})"
        if t == "ExitOrderFailed":
            return f"Exit order for signal {d['signal_id']} failed: {sym} ({d['reason']}); the position stays open"
        if t == "DayClosed":
            return f"Day {d['day']} closed: equity {_fmt(d['equity'])}, cash {_fmt(d['cash'])}"
        return t


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
