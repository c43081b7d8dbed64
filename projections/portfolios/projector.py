"""The projector of the model-portfolio read models: it follows the Portfolio aggregate's `when_*` mutators
exactly (see the package's docstring) and logs one activity row per event."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from domain.status import LIVE_SIGNAL_STATUSES, PortfolioStatus, PositionStatus, SignalStatus
from projections.base import Projection, row_by, update_by
from projections.envelope import Envelope
from projections.portfolios.activity import activity_summary
from projections.portfolios.tables import (
    activity_log,
    metadata,
    portfolio_equity,
    portfolios,
    positions,
    signals,
)
from projections.values import expiry

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

    def _summary(self, conn: Connection, env: Envelope) -> str:
        d, t = env.data, env.type
        sym = d.get("symbol")
        if not sym and d.get("signal_id") is not None:
            sym = self._signal_symbol(conn, d["signal_id"])
        pos = None
        if d.get("position_id") is not None and (not sym or (t == "ExitSignalled" and not d.get("quantity"))):
            pos = self._position(conn, d["position_id"])
        if not sym:
            sym = pos.symbol if pos is not None else "?"
        return activity_summary(t, d, sym, pos.quantity if pos is not None else "")
