"""The events of the Portfolio aggregate: deployment and status changes, the signal lifecycle, orders and
fills, positions opened, reduced and closed, the daily close, and the live-exit protocol's broker reports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from domain.events import DomainEvent, fast_init


@fast_init
@dataclass(frozen=True)
class PortfolioDeployed(DomainEvent):
    portfolio_id: int
    name: str
    mode: str
    strategy_id: int | None
    strategy: dict[str, Any]  # base_model, entry_rules, exit_rules, params (normalised)
    capital: float
    universe: str
    position_size_pct: float
    max_positions: int
    max_per_sector: int | None
    auto_approve: bool
    slippage_bps: float
    charges: str
    account_id: int | None
    day: str
    at: str


@fast_init
@dataclass(frozen=True)
class SignalGenerated(DomainEvent):
    signal_id: int
    day: str
    symbol: str
    exchange: str
    sector: str
    conviction: float
    reference_price: float
    entry_order: str
    limit_price: float | None
    quantity: int
    stop_loss: float | None  # indicative, from the expected price; the position's come from the fill
    target: float | None
    validity_days: int
    reason: str
    at: str


@fast_init
@dataclass(frozen=True)
class SignalApproved(DomainEvent):
    signal_id: int
    at: str


@fast_init
@dataclass(frozen=True)
class SignalRejected(DomainEvent):
    signal_id: int
    reason: str
    at: str


@fast_init
@dataclass(frozen=True)
class SignalExpired(DomainEvent):
    signal_id: int
    reason: str
    at: str


@fast_init
@dataclass(frozen=True)
class OrderPlaced(DomainEvent):
    signal_id: int
    day: str
    order_type: str
    limit_price: float | None
    quantity: int
    order_id: str | None
    gtt_id: str | None
    at: str


@fast_init
@dataclass(frozen=True)
class OrderFailed(DomainEvent):
    signal_id: int
    day: str
    reason: str
    at: str


@fast_init
@dataclass(frozen=True)
class EntryExpired(DomainEvent):
    signal_id: int
    day: str
    at: str


@fast_init
@dataclass(frozen=True)
class FillRecorded(DomainEvent):
    signal_id: int
    day: str
    side: str
    symbol: str
    quantity: int
    price: float
    charges: float
    at: str


@fast_init
@dataclass(frozen=True)
class PositionOpened(DomainEvent):
    position_id: int
    signal_id: int | None
    day: str
    symbol: str
    exchange: str
    sector: str
    quantity: int
    entry_price: float
    entry_charges: float
    stop_loss: float | None
    target: float | None
    conviction: float
    at: str


@fast_init
@dataclass(frozen=True)
class StopUpdated(DomainEvent):
    position_id: int
    day: str
    stop_loss: float | None
    trail: float | None
    reason: str  # the exit reason the stop now carries: stop_loss | trailing_stop
    at: str


@fast_init
@dataclass(frozen=True)
class ExitSignalled(DomainEvent):
    """Exit rules held at `day`'s close: the position exits at the next open. Live and paper portfolios
    give the exit its own signal id (shown as a `sell`/`exit` signal); backtests leave it None."""

    position_id: int
    day: str
    at: str
    signal_id: int | None = None
    symbol: str = ""
    quantity: int = 0
    reference_price: float | None = None
    reason: str = ""
    replaces: int | None = None  # the working exit order (its signal id) this one replaces: cancel that first


@fast_init
@dataclass(frozen=True)
class PositionClosed(DomainEvent):
    position_id: int
    day: str
    exit_price: float
    exit_reason: str
    exit_charges: float
    realized_pnl: float
    at: str
    signal_id: int | None = None  # the exit signal whose fill closed it (a broker-reported exit)


@fast_init
@dataclass(frozen=True)
class PositionReduced(DomainEvent):
    """An exit fill for part of an open position: the sold shares become a closed lot with its own
    position id (`lot_id`), carrying their share of the entry charges (FIFO); the rest stays open."""

    position_id: int
    lot_id: int
    signal_id: int | None
    day: str
    quantity: int  # shares sold
    exit_price: float
    exit_reason: str
    entry_charges: float  # the sold shares' part of the position's entry charges
    exit_charges: float
    realized_pnl: float
    at: str


@fast_init
@dataclass(frozen=True)
class DayClosed(DomainEvent):
    day: str
    marks: dict[str, float]  # closes of the held symbols that traded today
    cash: float
    equity: float
    at: str


@fast_init
@dataclass(frozen=True)
class PortfolioPaused(DomainEvent):
    at: str


@fast_init
@dataclass(frozen=True)
class PortfolioResumed(DomainEvent):
    at: str


@fast_init
@dataclass(frozen=True)
class PortfolioRetired(DomainEvent):
    at: str


@fast_init
@dataclass(frozen=True)
class PortfolioReset(DomainEvent):
    capital: float
    at: str


@fast_init
@dataclass(frozen=True)
class BrokerOrderRecorded(DomainEvent):
    """The broker accepted the order of an already-placed signal (entry or exit): its GTT trigger id
    and/or order id, as the agent reported them."""

    signal_id: int
    order_id: str | None
    gtt_id: str | None
    at: str


@fast_init
@dataclass(frozen=True)
class ExitOrderCancelled(DomainEvent):
    """A replaced exit order (a live position's protective OCO) is confirmed cancelled at the broker."""

    signal_id: int
    position_id: int
    reason: str
    at: str


@fast_init
@dataclass(frozen=True)
class ExitOrderFailed(DomainEvent):
    """The broker refused or cancelled a live exit order: the position stays open, without a pending exit."""

    signal_id: int
    position_id: int
    reason: str
    at: str
