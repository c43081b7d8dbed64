"""Model portfolios, their dashboard and activity, signals, positions, scans and the cart."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from api.public.base import OpenObject, OpenPublic, Public
from api.public.risk import RiskStatePublic


class PortfolioPublic(Public):
    id: int
    account_id: int | None
    name: str
    mode: Literal["paper", "live"]
    status: Literal["active", "paused", "retired"]
    strategy_id: int | None
    strategy: OpenObject = Field(description="the strategy as deployed (name, base model, rules, parameters)")
    universe: str
    capital: float
    cash: float
    invested: float
    equity: float
    realized_pnl: float
    day_pnl: float
    position_size_pct: float
    max_positions: int
    max_per_sector: int | None
    auto_approve: bool
    slippage_bps: float
    charges: str
    deployed_on: str
    last_day: str | None = Field(description="the last market day it was stepped through")
    created_at: str | None
    updated_at: str | None
    total_pnl: float
    return_pct: float
    open_positions: int | None = None
    pending_signals: int | None = None
    in_cart_signals: int | None = None


class FillUnresolvedPublic(Public):
    order_id: str | None
    gtt_id: str | None
    detail: str
    since: str | None
    reported_at: str | None


class SignalPublic(Public):
    id: int
    portfolio_id: int
    account_id: int | None
    strategy_id: int | None
    exchange: str
    symbol: str
    sector: str
    side: Literal["buy", "sell"]
    kind: str = Field(description="entry or exit")
    conviction: float | None
    reference_price: float | None
    limit_price: float | None
    stop_loss: float | None
    target: float | None
    quantity: int
    status: Literal["pending_approval", "in_cart", "placed", "executed", "failed", "rejected", "expired"]
    reason: str
    day: str
    entry_order: str | None
    validity_days: int
    created_at: str | None
    expires_at: str = Field(description="ISO 8601, +05:30 (the market close)")
    updated_at: str | None
    gtt_id: str | None
    order_id: str | None
    fill_price: float | None
    filled_quantity: int | None
    failure_reason: str | None
    position_id: int | None
    fill_unresolved: FillUnresolvedPublic | None = Field(
        description="a live signal whose triggered GTT's order the agent cannot find at Kite")


class PositionPublic(Public):
    id: int
    portfolio_id: int
    account_id: int | None
    signal_id: int | None
    exchange: str
    symbol: str
    sector: str
    quantity: int
    avg_price: float
    entry_date: str
    stop_loss: float | None
    target: float | None
    status: str = Field(description="open, closed or reset")
    last_price: float
    unrealized_pnl: float | None
    exit_price: float | None
    exit_date: str | None
    exit_reason: str | None
    realized_pnl: float | None
    charges: float
    conviction: float | None
    exit_pending: bool
    updated_at: str | None


class ClosedPositionPublic(PositionPublic):
    outcome: Literal["closed", "reduced", "exit_queued"]


class EquityPointPublic(Public):
    date: str
    equity: float
    cash: float


class ActivityPublic(Public):
    portfolio_id: int | None = Field(default=None, description="GET /api/model/activity only")
    type: str = Field(description="the event's type")
    at: str | None
    summary: str
    data: OpenObject = Field(description="the event's data")


class SignalCounts(Public):
    pending_approval: int | None
    in_cart: int | None


class DriftPublic(OpenPublic):
    """One difference between the model and the broker; further keys depend on the kind."""

    kind: str = Field(description="missing, extra, quantity, gtt_missing, stop_drift, target_drift, gtt_quantity, "
                                  "fill_unresolved")
    exchange: str
    symbol: str


class ReconciliationPublic(Public):
    synced_at: str | None = Field(description="the agent's last holdings snapshot")
    positions_synced_at: str | None
    gtts_synced_at: str | None
    drift: list[DriftPublic]
    in_sync: bool | None = Field(description="null: the agent has pushed nothing yet")


class DashboardPublic(Public):
    portfolio: PortfolioPublic
    capital: float
    cash: float
    invested: float
    equity: float
    day_pnl: float
    total_pnl: float
    realized_pnl: float
    unrealized_pnl: float
    return_pct: float
    positions: list[PositionPublic] = Field(description="the open ones")
    signals: SignalCounts
    equity_curve: list[EquityPointPublic]
    activity: list[ActivityPublic] = Field(description="newest first")
    risk: RiskStatePublic = Field(description="as GET /api/risk/state, for this portfolio")
    reconciliation: ReconciliationPublic | None = Field(description="live portfolios: drift against the broker")


class ScanPublic(Public):
    portfolios: list[int]
    days: list[str] = Field(description="the market days stepped through")
    signals: list[SignalPublic] = Field(description="the new signals")


class RefusedPublic(Public):
    signal_id: int
    portfolio_id: int
    symbol: str
    reason: str


class PlacedEntryPublic(Public):
    """A placed signal as the command saw it (only where its row cannot be read back)."""

    signal_id: int
    portfolio_id: int
    symbol: str
    quantity: int
    order_type: str | None
    limit_price: float | None
    gtt_id: str | None
    order_id: str | None
    queued_for_agent: bool


class CartPlacedPublic(Public):
    placed: list[SignalPublic | PlacedEntryPublic]
    refused: list[RefusedPublic] = Field(description="these stay in_cart")
