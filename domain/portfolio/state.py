"""What the Portfolio aggregate keeps of each signal and position (rebuilt from its events by its `when_*`
mutators), the shared book open positions are marked through, and a scan's outcome."""

from __future__ import annotations

from dataclasses import dataclass

from domain.events import fast_init
from domain.portfolio.events import (
    PositionOpened,
    PositionReduced,
    SignalGenerated,
)
from domain.status import PositionStatus, SignalStatus


class SignalState:
    """A signal and, once placed, its entry order."""

    __slots__ = (
        "conviction", "day", "days_waiting", "entry_order", "failure_reason", "fill_price",
        "filled_quantity", "gtt_id", "limit_price", "order_id", "position_id", "quantity", "reason",
        "reference_price", "sector", "signal_id", "status", "stop_loss", "symbol", "target",
        "validity_days",
    )

    def __init__(self, e: SignalGenerated) -> None:
        self.signal_id = e.signal_id
        self.day = e.day
        self.symbol = e.symbol
        self.sector = e.sector
        self.conviction = e.conviction
        self.reference_price = e.reference_price
        self.entry_order = e.entry_order
        self.limit_price = e.limit_price
        self.quantity = e.quantity
        self.stop_loss = e.stop_loss
        self.target = e.target
        self.validity_days = e.validity_days
        self.reason = e.reason
        self.status = SignalStatus.PENDING_APPROVAL
        self.days_waiting = 0  # closes since generation (or since placement, once placed)
        self.order_id: str | None = None
        self.gtt_id: str | None = None
        self.fill_price: float | None = None
        self.filled_quantity: int | None = None
        self.failure_reason: str | None = None
        self.position_id: int | None = None


class MarkBook:
    """What every open position of a portfolio shares: the number of closes marked so far and each held
    symbol's latest mark (its entry price until a close marks it). `DayClosed` updates it in one step
    instead of touching each open position; an open position reads its `bars_held` and `last_price`
    from it, and keeps its own once closed."""

    __slots__ = ("closes", "price")

    def __init__(self) -> None:
        self.closes = 0
        self.price: dict[str, float] = {}


class PositionState:
    """An open or closed position."""

    __slots__ = (
        "_bars_held", "_book", "_last_price", "_opened_at", "conviction", "entry_charges", "entry_day",
        "entry_price", "exit_charges", "exit_day", "exit_pending", "exit_price", "exit_quantity", "exit_reason",
        "exit_signal_id", "exit_signal_reason", "fixed_stop", "highest_close", "position_id", "quantity",
        "realized_pnl", "sector", "seq", "signal_id", "status", "stop_loss", "stop_reason", "symbol", "target",
        "trail",
    )

    def __init__(self, e: PositionOpened, book: MarkBook | None = None, seq: int = 0) -> None:
        self.position_id = e.position_id
        self.signal_id = e.signal_id
        self.symbol = e.symbol
        self.sector = e.sector
        self.quantity = e.quantity
        self.entry_price = e.entry_price
        self.entry_day = e.day
        self.entry_charges = e.entry_charges
        self.fixed_stop = e.stop_loss
        self.stop_loss = e.stop_loss  # the effective stop: max(fixed, trail)
        self.stop_reason = "stop_loss"
        self.trail: float | None = None
        self.target = e.target
        self.conviction = e.conviction
        self.highest_close: float | None = None  # tracked for portfolios with a trailing stop (its only reader)
        self.seq = seq  # the order the portfolio opened it in
        # open: marked through the portfolio's book; closed (or without a book): its own figures
        self._book = book
        self._opened_at = 0 if book is None else book.closes
        self._bars_held = 0
        self._last_price = e.entry_price
        if book is not None:
            book.price[e.symbol] = e.entry_price
        self.exit_pending = False
        self.exit_signal_id: int | None = None
        self.exit_quantity: int | None = None  # the pending exit's shares (None: all of them)
        self.exit_signal_reason = ""
        self.status = PositionStatus.OPEN
        self.exit_price: float | None = None
        self.exit_day: str | None = None
        self.exit_reason: str | None = None
        self.exit_charges = 0.0
        self.realized_pnl: float | None = None

    @classmethod
    def sold_lot(cls, parent: PositionState, e: PositionReduced) -> PositionState:
        """The closed lot a partial exit splits off `parent`."""
        lot = cls.__new__(cls)
        for name in cls.__slots__:
            setattr(lot, name, getattr(parent, name))
        lot._book = None
        lot._bars_held = parent.bars_held
        lot.position_id = e.lot_id
        lot.quantity = e.quantity
        lot.entry_charges = e.entry_charges
        lot.exit_pending = False
        lot.exit_signal_id = e.signal_id
        lot.exit_quantity = None
        lot.status = PositionStatus.CLOSED
        lot.exit_price = e.exit_price
        lot.exit_day = e.day
        lot.exit_reason = e.exit_reason
        lot.exit_charges = e.exit_charges
        lot.realized_pnl = e.realized_pnl
        lot.last_price = e.exit_price
        return lot

    @property
    def bars_held(self) -> int:
        """Closes since entry, the entry day's included (frozen at the exit)."""
        book = self._book
        return self._bars_held if book is None else book.closes - self._opened_at

    @property
    def last_price(self) -> float:
        """The latest close marked while open (the entry price before the first); the exit price once closed."""
        book = self._book
        return self._last_price if book is None else book.price[self.symbol]

    @last_price.setter
    def last_price(self, price: float) -> None:
        self.detach()
        self._last_price = price

    def detach(self) -> None:
        """Stop following the portfolio's marks (closed, reset): keep the figures reached so far."""
        book = self._book
        if book is not None:
            self._bars_held = book.closes - self._opened_at
            self._last_price = book.price[self.symbol]
            self._book = None

    @property
    def unrealized_pnl(self) -> float:
        """Mark-to-market P&L net of the entry charges (exit charges not yet incurred)."""
        return round((self.last_price - self.entry_price) * self.quantity - self.entry_charges, 2)


@fast_init  # one per day with candidates in a backtest
@dataclass(frozen=True)
class ScanOutcome:
    """What `record_signals` did with a day's candidates."""

    signal_ids: tuple[int, ...]
    considered: int  # candidates not already held or pending
    skipped_max_positions: int
    skipped_max_per_sector: int
    skipped_zero_quantity: int
    paused: bool = False
