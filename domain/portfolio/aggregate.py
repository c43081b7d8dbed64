"""The Portfolio aggregate: one model portfolio's cash, positions, signals, orders and fills.

It is the single state machine behind backtests (driven in memory by `backtest.engine`), paper
portfolios (driven day by day by the scanner and the simulated broker) and live portfolios (whose
fills the agent reports). Its methods take values in -- the trading day, prices, the caller's
timestamp `at` -- and never read a clock. The limits it guards (max_positions, max_per_sector, cash)
cannot be broken by any sequence of calls.

Signal lifecycle (API "Signals"): ``pending_approval`` -> ``in_cart`` (approve) -> ``placed`` (place)
-> ``executed`` (filled) | ``failed`` (refused at fill time, e.g. not enough cash) | ``expired`` (an
unfilled GTT past its validity); ``pending_approval``/``in_cart`` -> ``rejected`` | ``expired``.

A trading day, for a paper portfolio or a backtest, is three calls after the close:
  1. `process_bars(day, bars, at)`  -- that day's bars for the held and pending symbols: exits first
     (fill model in `domain.fills`), then pending entries fill or expire, then the close is marked
     (`DayClosed`) and trailing stops ratchet (`StopUpdated`);
  2. `record_exit_signals(day, symbols, at)` -- positions whose exit rules held at this close exit at
     the next open;
  3. `record_signals(day, candidates, at)` -- the day's scan: ranked, limited, sized; with
     `auto_approve` each accepted signal is approved and placed at once.
Live portfolios skip the simulated fills in step 1 (mode ``live``): the agent's reports arrive as
`place_signal`/`record_fill`/`record_exit_fill`. The methods that create signals or positions take
`ids` (an `IdSource`, `ids("signal")`, `ids("position")`): a live or paper portfolio's command passes the
platform's sequences (ids unique across portfolios) and each exit becomes a signal of its own; a backtest
passes nothing (None): the portfolio numbers its signals and positions from 1 and only flags a position
that is to exit (`record_exit_signals`).

Paper portfolios while a tick feed runs: `process_ticks(day, prices, at)` fills placed limit (GTT)
entries and fires open positions' stop/target at ticks of `day`, the next day `process_bars` will be
called for (the fill model's tick rules in `domain.fills`); the daily step then finds those orders
executed and never fills them twice.

Exits of live portfolios: after an entry fill the position gets a protective stop/target exit (one
OCO GTT at the broker). A manual close (`request_exit`) replaces it: the protective exit stays
"replaced" (still working at the broker) until the agent reports it cancelled, and the agent places
the close order only once the cancellation is confirmed, so the shares are never sold twice. An exit
fill for fewer shares than the position holds (`record_exit_fill`) splits the sold shares off as a
closed lot (`PositionReduced`, FIFO: they carry their share of the entry charges); the rest stays open.

Counting: `bars_held` is the number of closes since entry, the entry day's included, so a position
entered on day e has bars_held = k on the morning of day e + k and exits at that open when
k >= max_hold_days. An order placed after day t's close is live on t+1 .. t+entry_validity_days.

Its events are `domain.portfolio.events`, its records of signals and positions `domain.portfolio.state`.
Over 500 lines because `Portfolio` is one state machine: every method above guards the same invariants
(cash, the position and sector limits, one live exit per position) through the same `when_*` mutators;
splitting the class by job (lifecycle, daily steps, ticks, live exits) is left as known debt (docs/DESIGN.md).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from operator import attrgetter, itemgetter
from typing import Any, ClassVar

from domain.aggregate import Aggregate, IdSource, aggregate_uuid
from domain.base_models import get_base_model
from domain.charges import SCHEDULES, total_charges
from domain.errors import Conflict, DomainError, InvalidTransition, NotFound
from domain.events import DomainEvent, maker
from domain.fills import (
    BarLike,
    effective_stop,
    entry_fill_price,
    exit_decision,
    in_closing_auction,
    stop_level,
    target_level,
    tick_entry_price,
    tick_exit,
    trail_level,
    with_slippage,
)
from domain.money import format_inr
from domain.portfolio.events import (
    BrokerOrderRecorded,
    DayClosed,
    EntryExpired,
    ExitOrderCancelled,
    ExitOrderFailed,
    ExitSignalled,
    FillRecorded,
    OrderFailed,
    OrderPlaced,
    PortfolioDeployed,
    PortfolioPaused,
    PortfolioReset,
    PortfolioResumed,
    PortfolioRetired,
    PositionClosed,
    PositionOpened,
    PositionReduced,
    SignalApproved,
    SignalExpired,
    SignalGenerated,
    SignalRejected,
    StopUpdated,
)
from domain.portfolio.state import MarkBook, PositionState, ScanOutcome, SignalState
from domain.risk import Exposure
from domain.rounding import round2, round4
from domain.sizing import Candidate, check_limits, rank_candidates, select_candidates
from domain.status import PortfolioStatus, PositionStatus, SignalStatus

EXCHANGE = "NSE"
MODES = ("paper", "live", "backtest")
PROTECTIVE_REASON = "protective stop/target (OCO GTT)"  # the reason of a live position's protective exit
INSUFFICIENT_CASH = "insufficient cash"  # how an entry refused at the fill for cash starts its reason
NOT_FILLED = "entry order not filled within its validity"  # an expired entry's reason
FILL_BAND = 2.0  # a reported fill outside [price / 2, price x 2] of its signal's is refused as implausible

_CLOSE = itemgetter(3)  # a bar's close
_SEQ = attrgetter("seq")

# The events a backtest records by the thousand, built by their `maker` functions: the same events as the
# classes build, at about half the cost of a class call with keywords.
_signal_generated = maker(SignalGenerated)
_signal_approved = maker(SignalApproved)
_order_placed = maker(OrderPlaced)
_fill_recorded = maker(FillRecorded)
_position_opened = maker(PositionOpened)
_exit_signalled = maker(ExitSignalled)
_position_closed = maker(PositionClosed)
_day_closed = maker(DayClosed)

# ---------------------------------------------------------------------------------------------
# events


# ---------------------------------------------------------------------------------------------
# state records (mutated only by the when_* mutators)


# ---------------------------------------------------------------------------------------------
# the aggregate


class Portfolio(Aggregate):
    """A model portfolio (see the module docstring for the calls a day is made of)."""

    aggregate_type: ClassVar[str] = "Portfolio"

    def __init__(self, aggregate_id: uuid.UUID) -> None:
        super().__init__(aggregate_id)
        self.portfolio_id = 0
        self.status = PortfolioStatus.NEW
        self.cash = 0.0
        self.signals: dict[int, SignalState] = {}
        self.positions: dict[int, PositionState] = {}
        self.open_positions: dict[int, PositionState] = {}  # position_id -> open position, in entry order
        self.closed_positions: list[PositionState] = []  # in exit order
        self._open_by_symbol: dict[str, PositionState] = {}  # in entry order, as open_positions
        self._marks = MarkBook()  # the open positions' closes counter and latest marks
        self._exiting: dict[int, PositionState] = {}  # open positions with an exit pending
        self._opened = 0  # positions opened so far (their `seq`)
        self._at_close = False  # no cash or position changed since the last DayClosed
        self._live: dict[int, SignalState] = {}  # pending_approval, in_cart, placed
        self._placed: dict[int, SignalState] = {}  # placed, in placement order
        self._engaged: set[str] = set()  # symbols held or with a live signal
        self._occupied = 0  # open + in_cart + placed: what max_positions limits
        self._sector_occupied: dict[str, int] = {}
        self._sector_engaged: dict[str, int] = {}  # open + every live signal (selection counts these)
        self._next_signal_id = 1
        self._next_position_id = 1
        self.last_day: str | None = None
        # exits that carry a signal id (live and paper), by exit signal id
        self.exit_signals: dict[int, int] = {}  # -> position id
        self.exit_orders: dict[int, tuple[str | None, str | None]] = {}  # -> broker (order id, GTT id)
        self.failed_exits: dict[int, int] = {}  # refused by the broker -> position id
        self.replaced_exits: dict[int, int] = {}  # protective exits a manual close replaced -> position id
        self.cancelled_exits: dict[int, int] = {}  # replaced exits the broker confirmed cancelled -> position id
        self.exit_results: dict[int, tuple[float, int, int]] = {}  # fills -> (price, shares, closed position/lot)
        self.stats: dict[str, int] = {
            "entries_filled": 0, "entries_expired": 0, "orders_failed": 0, "skipped_cash": 0,
            "exits": 0, "stop_updates": 0,
        }

    # ----------------------------------------------------------------------------- creation

    @staticmethod
    def uuid_for(portfolio_id: int) -> uuid.UUID:
        return aggregate_uuid("portfolio", portfolio_id)

    @classmethod
    def deploy(  # noqa: PLR0913
        cls,
        portfolio_id: int,
        *,
        name: str,
        mode: str,
        strategy: Mapping[str, Any],
        capital: float,
        position_size_pct: float,
        max_positions: int,
        day: str,
        at: str,
        max_per_sector: int | None = None,
        auto_approve: bool = False,
        slippage_bps: float = 0.0,
        charges: str = "zerodha_delivery",
        universe: str = "",
        strategy_id: int | None = None,
        account_id: int | None = None,
    ) -> Portfolio:
        """Create a portfolio (PortfolioDeployed). `strategy` is a normalised strategy body
        (base_model, entry_rules, exit_rules, params); missing params take the base model's defaults."""
        if mode not in MODES:
            raise DomainError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        check_limits(capital, position_size_pct, max_positions, max_per_sector)
        if charges not in SCHEDULES:
            raise DomainError(f"charges must be one of {', '.join(SCHEDULES)}, got {charges!r}")
        if slippage_bps < 0:
            raise DomainError(f"slippage_bps must be 0 or more, got {slippage_bps!r}")
        model = get_base_model(str(strategy.get("base_model")))
        body = {
            "base_model": model.name,
            "entry_rules": strategy.get("entry_rules") or model.entry_rules,
            "exit_rules": dict(strategy.get("exit_rules") or model.exit_rules),
            "params": {**model.defaults(), **dict(strategy.get("params") or {})},
        }
        obj = cls(cls.uuid_for(portfolio_id))
        obj.account_id = account_id
        obj._record(PortfolioDeployed(
            portfolio_id=portfolio_id, name=name, mode=mode, strategy_id=strategy_id, strategy=body,
            capital=float(capital), universe=universe, position_size_pct=float(position_size_pct),
            max_positions=max_positions, max_per_sector=max_per_sector, auto_approve=auto_approve,
            slippage_bps=float(slippage_bps), charges=charges, account_id=account_id, day=day, at=at,
        ))
        return obj

    # ----------------------------------------------------------------------------- queries

    @property
    def equity(self) -> float:
        """Cash plus open positions at their last marks."""
        if self._at_close:  # nothing moved since the close: the figure DayClosed recorded
            return self.close_equity
        return round(self.cash + self._open_value(), 2)

    def _open_value(self, closes: Iterable[float] | None = None) -> float:
        """Sum of quantity x price over the open positions, in entry order, added one by one from 0.0 --
        at their marks, or at `closes` (one per open position, in that order)."""
        if closes is None:
            closes = map(self._marks.price.__getitem__, self._open_by_symbol)
        value = 0.0
        for pos, price in zip(self.open_positions.values(), closes, strict=False):  # cheaper than a reduce
            value += pos.quantity * price
        return value

    @property
    def day_pnl(self) -> float:
        """Realized + unrealized P&L since the previous close (the equity change)."""
        return round(self.equity - self.prev_close_equity, 2)

    def exposure(self, orders_today: int = 0) -> Exposure:
        """What this portfolio holds and has committed, for the risk rules."""
        sectors: dict[str, int] = {k: v for k, v in self._sector_occupied.items() if v}
        committed = sum(s.quantity * (s.limit_price or s.reference_price) for s in self._live.values()
                        if s.status in (SignalStatus.IN_CART, SignalStatus.PLACED))
        invested = self._open_value() if self.open_positions else 0
        return Exposure(capital=self.capital, invested=round(invested, 2), committed=round(committed, 2),
                        open_positions=self._occupied, sectors=sectors, orders_today=orders_today,
                        day_pnl=self.day_pnl)

    @property
    def free_slots(self) -> int:
        """Slots a new signal may take: max_positions - open - every live signal."""
        return self.max_positions - len(self.open_positions) - len(self._live)

    def symbols_needing_bars(self) -> list[str]:
        """Symbols whose next bar `process_bars` needs: open positions, then placed entries."""
        return [*self._open_by_symbol, *(s.symbol for s in self._placed.values())]

    def bar_symbols(self) -> list[str]:
        """The symbols whose whole next bar `process_bars` reads: open positions an exit can fire for
        (every one, unless only pending exit signals can), then placed entries. The other held symbols
        need only their close (`process_bars(..., closes=)`)."""
        return [*(p.symbol for p in self._exit_candidates()), *(s.symbol for s in self._placed.values())]

    def holds(self, symbol: str) -> bool:
        return symbol in self._open_by_symbol

    def position_of(self, symbol: str) -> PositionState | None:
        return self._open_by_symbol.get(symbol)

    def live_signals(self) -> list[SignalState]:
        """Signals waiting for approval, in the cart, or placed."""
        return list(self._live.values())

    # ----------------------------------------------------------------------------- lifecycle

    def pause(self, at: str) -> None:
        """Stop new entries; exits are still managed."""
        if self.status != PortfolioStatus.ACTIVE:
            raise InvalidTransition(f"portfolio is {self.status}; only an active portfolio can be paused")
        self._record(PortfolioPaused(at=at))

    def resume(self, at: str) -> None:
        if self.status != PortfolioStatus.PAUSED:
            raise InvalidTransition(f"portfolio is {self.status}; only a paused portfolio can be resumed")
        self._record(PortfolioResumed(at=at))

    def retire(self, at: str) -> None:
        """Retire for good; refused (409) while positions are open. Live signals expire -- except a live
        portfolio's placed entries, whose GTTs are at the broker: the agent deletes them there first and
        then reports them expired (`withdraw_entry`)."""
        if self.status == PortfolioStatus.RETIRED:
            raise InvalidTransition("portfolio is already retired")
        if self.open_positions:
            raise Conflict(
                f"portfolio has {len(self.open_positions)} open position(s); close them before retiring it"
            )
        for sig in list(self._live.values()):
            if self.mode == "live" and sig.status == SignalStatus.PLACED:
                continue
            self._record(SignalExpired(signal_id=sig.signal_id, reason="portfolio retired", at=at))
        self._record(PortfolioRetired(at=at))

    def reset(self, at: str) -> None:
        """Paper only: back to the initial capital with no positions or signals (history stays)."""
        if self.mode == "live":
            raise DomainError("only paper portfolios can be reset; a live portfolio holds real positions")
        if self.status == PortfolioStatus.RETIRED:
            raise InvalidTransition("portfolio is retired; deploy a new one instead")
        self._record(PortfolioReset(capital=self.capital, at=at))

    # ----------------------------------------------------------------------------- signals

    def record_signals(self, day: str, candidates: Iterable[Candidate], at: str,
                       gate: Callable[[SignalState], bool] | None = None, *,
                       ids: IdSource | None = None) -> ScanOutcome:
        """Turn a scan's candidates (entry rules true at `day`'s close) into signals.

        Candidates already held or with a live signal are ignored. The rest are ranked by
        conviction (ties by symbol), limited by free slots and max_per_sector and sized from the
        equity at this close (`domain.sizing`). Each accepted one is a SignalGenerated; with
        `auto_approve` it is approved and placed at once -- unless `gate` (the account's risk rules)
        refuses it, when it waits for a person like any other signal. Paused/retired portfolios record
        nothing.
        """
        fresh = [c for c in candidates if c.symbol not in self._engaged]
        if self.status != PortfolioStatus.ACTIVE:
            return ScanOutcome((), len(fresh), 0, 0, 0, paused=True)
        free = self.free_slots
        if free <= 0:  # nothing can fit: skip the ranking work
            return ScanOutcome((), len(fresh), len(fresh), 0, 0)
        selection = select_candidates(
            rank_candidates(fresh),
            free_slots=free,
            sector_counts=self._sector_engaged,
            max_per_sector=self.max_per_sector,
            equity=self.equity,
            position_size_pct=self.position_size_pct,
            entry_order=self.entry_order,
            limit_offset_pct=self.limit_offset_pct,
            on_date=day,
        )
        generated: list[int] = []
        auto, signals, record = self.auto_approve, self.signals, self._record
        entry_order, validity = self.entry_order, self.entry_validity_days
        stop_pct, target_pct = self.stop_loss_pct, self.target_pct
        for sized in selection.accepted:
            cand = sized.candidate
            sid = self._next_signal_id if ids is None else ids("signal")
            expected = sized.expected_price
            record(_signal_generated(
                signal_id=sid, day=day, symbol=cand.symbol, exchange=EXCHANGE, sector=cand.sector,
                conviction=round4(float(cand.conviction)), reference_price=round2(float(cand.close)),
                entry_order=entry_order, limit_price=sized.limit_price, quantity=sized.quantity,
                stop_loss=None if stop_pct is None else stop_level(expected, stop_pct, day),
                target=None if target_pct is None else target_level(expected, target_pct, day),
                validity_days=validity, reason=cand.reason, at=at,
            ))
            generated.append(sid)
            if auto:
                sig = signals[sid]
                if gate is None or gate(sig):
                    self._approve(sig, at)
                    self._place(sig, at, day)
        return ScanOutcome(
            tuple(generated), len(fresh), selection.skipped_max_positions, selection.skipped_max_per_sector,
            selection.skipped_zero_quantity,
        )

    def approve_signal(self, signal_id: int, at: str) -> None:
        """pending_approval -> in_cart; refused when it would exceed max_positions or max_per_sector."""
        self._approve(self._signal(signal_id), at)

    def _approve(self, sig: SignalState, at: str) -> None:
        if sig.status != SignalStatus.PENDING_APPROVAL:
            raise InvalidTransition(
                f"signal {sig.signal_id} is {sig.status}; only a pending_approval signal can be approved"
            )
        if self.status != PortfolioStatus.ACTIVE:
            raise DomainError(f"portfolio is {self.status}; resume it before approving signals")
        if self._occupied >= self.max_positions:
            raise DomainError(
                f"max_positions ({self.max_positions}) reached by open positions and approved signals; "
                "close a position or reject an approved signal first"
            )
        if self.max_per_sector is not None and self._sector_occupied.get(sig.sector, 0) >= self.max_per_sector:
            raise DomainError(
                f"max_per_sector ({self.max_per_sector}) reached for sector {sig.sector!r}; "
                "close a position in that sector or reject an approved signal first"
            )
        self._record(_signal_approved(signal_id=sig.signal_id, at=at))

    def reject_signal(self, signal_id: int, at: str, reason: str = "rejected by user") -> None:
        """pending_approval or in_cart -> rejected."""
        sig = self._signal(signal_id)
        if sig.status not in (SignalStatus.PENDING_APPROVAL, SignalStatus.IN_CART):
            raise InvalidTransition(f"signal {signal_id} is {sig.status}; only pending or in-cart signals "
                                    "can be rejected")
        self._record(SignalRejected(signal_id=signal_id, reason=reason, at=at))

    def expire_signal(self, signal_id: int, at: str, reason: str = "expired by user") -> None:
        """pending_approval or in_cart -> expired."""
        sig = self._signal(signal_id)
        if sig.status not in (SignalStatus.PENDING_APPROVAL, SignalStatus.IN_CART):
            raise InvalidTransition(f"signal {signal_id} is {sig.status}; only pending or in-cart signals "
                                    "can be expired")
        self._record(SignalExpired(signal_id=signal_id, reason=reason, at=at))

    def place_signal(
        self, signal_id: int, at: str, day: str | None = None, order_id: str | None = None,
        gtt_id: str | None = None,
    ) -> None:
        """in_cart -> placed (the GTT/market order exists); its validity counts from here."""
        self._place(self._signal(signal_id), at, day, order_id, gtt_id)

    def _place(self, sig: SignalState, at: str, day: str | None = None, order_id: str | None = None,
               gtt_id: str | None = None) -> None:
        if sig.status != SignalStatus.IN_CART:
            raise InvalidTransition(f"signal {sig.signal_id} is {sig.status}; only an in_cart signal can be placed")
        self._record(_order_placed(
            signal_id=sig.signal_id, day=day or sig.day, order_type=sig.entry_order, limit_price=sig.limit_price,
            quantity=sig.quantity, order_id=order_id, gtt_id=gtt_id, at=at,
        ))

    def record_fill(
        self, signal_id: int, day: str, price: float, at: str, quantity: int | None = None, *,
        ids: IdSource | None = None,
    ) -> int:
        """A reported entry fill (live agent, or a broker adapter): placed -> executed, position
        opened at `price` (no slippage added: it is what the broker reported). Returns the position id."""
        sig = self._signal(signal_id)
        if sig.status != SignalStatus.PLACED:
            raise InvalidTransition(f"signal {signal_id} is {sig.status}; only a placed signal can be filled")
        qty = sig.quantity if quantity is None else quantity
        if qty < 1:
            raise DomainError("filled_quantity must be at least 1")
        if qty > sig.quantity:
            raise DomainError(f"filled_quantity is more than the {sig.quantity} shares signal {signal_id} ordered")
        price = float(price)
        ref = sig.limit_price if sig.limit_price is not None else sig.reference_price
        if not math.isfinite(price) or price <= 0:
            raise DomainError("fill_price must be a positive price")
        if ref and not ref / FILL_BAND <= price <= ref * FILL_BAND:
            raise DomainError(f"fill_price is implausible for signal {signal_id} (its price was {ref:.2f}): "
                              "check what the broker reported")
        return self._open(sig, day, price, qty, at, None, ids)

    def record_order_failure(self, signal_id: int, day: str, reason: str, at: str) -> None:
        """A placed order the broker refused or cancelled: placed -> failed."""
        sig = self._signal(signal_id)
        if sig.status != SignalStatus.PLACED:
            raise InvalidTransition(f"signal {signal_id} is {sig.status}; only a placed signal can fail")
        self._record(OrderFailed(signal_id=signal_id, day=day, reason=reason, at=at))

    def withdraw_entry(self, signal_id: int, reason: str, at: str) -> None:
        """Live: a placed entry taken off the broker (its GTT deleted there, or never sent) because its
        validity passed, a kill switch or a pause: placed -> expired."""
        sig = self._signal(signal_id)
        if self.mode != "live" or sig.status != SignalStatus.PLACED:
            raise InvalidTransition(f"signal {signal_id} is {sig.status}; only a placed live entry can be "
                                    "withdrawn")
        self._record(SignalExpired(signal_id=signal_id, reason=reason, at=at))

    def record_broker_order(self, signal_id: int, order_id: str | None, gtt_id: str | None, at: str) -> bool:
        """The broker's ids for a placed entry or an exit signal (live: the agent placed it). Returns False
        (nothing recorded) when the same ids are recorded already; a different id is a Conflict; a signal
        that is not placed (entry) or an exit that is neither pending nor replaced is an InvalidTransition
        (a replaced exit may still reach the broker: its ids are kept so it can be cancelled there)."""
        if not order_id and not gtt_id:
            raise DomainError("a placed result needs an order_id or a gtt_id")
        sig = self.signals.get(signal_id)
        if sig is not None:
            current: tuple[str | None, str | None] = (sig.order_id, sig.gtt_id)
            if sig.status != SignalStatus.PLACED and current == (None, None):
                raise InvalidTransition(f"signal {signal_id} is {sig.status}; only a placed signal can be sent "
                                        "to the broker")
        else:
            state = self.exit_state(signal_id)
            current = self.exit_orders.get(signal_id, (None, None))
            if current == (None, None) and state not in ("pending", "replaced"):
                raise InvalidTransition(f"exit signal {signal_id} is no longer pending")
        if current != (None, None):
            if (order_id or current[0], gtt_id or current[1]) == current:
                return False
            raise Conflict(f"signal {signal_id} was already reported placed with order {current[0]} / "
                           f"GTT {current[1]}")
        self._record(BrokerOrderRecorded(signal_id=signal_id, order_id=order_id, gtt_id=gtt_id, at=at))
        return True

    def exit_position(self, signal_id: int) -> PositionState:
        """The position an exit signal belongs to (open or closed); NotFound when no exit has that id."""
        pid = self.exit_signals.get(signal_id)
        if pid is None:
            raise NotFound(f"signal {signal_id} not found in this portfolio")
        return self.positions[pid]

    def exit_state(self, signal_id: int) -> str:
        """Where an exit signal stands: ``pending`` (the position's exit order, to place or working),
        ``replaced`` (a protective order a manual close replaced, until the broker confirms it cancelled),
        ``executed``, ``failed``, ``cancelled``, or ``stale`` (the position ended otherwise)."""
        pos = self.exit_position(signal_id)
        if signal_id in self.exit_results:
            return "executed"
        if signal_id in self.failed_exits:
            return "failed"
        if signal_id in self.cancelled_exits:
            return "cancelled"
        if signal_id in self.replaced_exits:
            return "replaced"
        if pos.exit_signal_id == signal_id:
            if pos.status == PositionStatus.OPEN:
                return "pending"
            if pos.status == PositionStatus.CLOSED:  # closed before exit fills named their signal
                return "executed"
        return "stale"

    def record_exit_failure(self, signal_id: int, reason: str, at: str) -> None:
        """A live exit order the broker refused: the position stays open and may be signalled again."""
        pos = self.exit_position(signal_id)
        if self.exit_state(signal_id) != "pending":
            raise InvalidTransition(f"exit signal {signal_id} is no longer pending")
        self._record(ExitOrderFailed(signal_id=signal_id, position_id=pos.position_id, reason=reason, at=at))

    def record_exit_cancelled(self, signal_id: int, reason: str, at: str) -> None:
        """The broker confirms a replaced exit order cancelled (e.g. the protective OCO GTT deleted)."""
        pos = self.exit_position(signal_id)
        state = self.exit_state(signal_id)
        if state != "replaced":
            raise InvalidTransition(f"exit signal {signal_id} is {state}; only a replaced exit can be cancelled")
        self._record(ExitOrderCancelled(signal_id=signal_id, position_id=pos.position_id, reason=reason, at=at))

    def _to_close(self, position_id: int, quantity: int | None) -> tuple[PositionState, int]:
        """The open position and how many of its shares to close (all when None), or the error why not."""
        pos = self.open_positions.get(position_id)
        if pos is None:
            if position_id in self.positions:
                raise InvalidTransition(f"position {position_id} is {self.positions[position_id].status}; only an "
                                        "open position can be closed")
            raise NotFound(f"position {position_id} not found in this portfolio")
        qty = pos.quantity if quantity is None else quantity
        if not 1 <= qty <= pos.quantity:
            raise DomainError(f"quantity must be from 1 to {pos.quantity} (the shares position {position_id} "
                              f"holds), got {qty}")
        return pos, qty

    def request_exit(self, position_id: int, day: str, at: str, reason: str, quantity: int | None = None, *,
                     ids: IdSource | None = None) -> int:
        """Live: queue a market exit of `quantity` shares (all when None) for the agent; returns its signal
        id. A working protective exit is replaced (cancelled at the broker before the exit is placed);
        any other pending exit refuses a second one."""
        pos, qty = self._to_close(position_id, quantity)
        replaces = None
        if pos.exit_pending:
            if pos.exit_signal_reason != PROTECTIVE_REASON or pos.exit_signal_id is None:
                raise DomainError(f"position {position_id} already has an exit queued for the agent "
                                  f"(signal {pos.exit_signal_id})")
            replaces = pos.exit_signal_id
        sid = self._new_id("signal", ids)
        self._record(ExitSignalled(
            position_id=position_id, day=day, at=at, signal_id=sid, symbol=pos.symbol, quantity=qty,
            reference_price=pos.last_price, reason=reason, replaces=replaces,
        ))
        return sid

    def record_exit_fill(self, signal_id: int, day: str, price: float, at: str, reason: str,
                         quantity: int | None = None, *, ids: IdSource | None = None) -> int:
        """A reported exit fill (live agent): the whole position closes, or -- for fewer shares than it
        holds -- the sold shares split off as a closed lot (`PositionReduced`). A fill of a replaced
        protective order fails the exit that replaced it (it was never sent: the shares are gone).
        Returns the id of the closed position or lot."""
        pos = self.exit_position(signal_id)
        state = self.exit_state(signal_id)
        if state not in ("pending", "replaced"):
            raise InvalidTransition(f"exit signal {signal_id} is {state}; it cannot be executed now")
        if pos.status != PositionStatus.OPEN:
            raise Conflict(f"position {pos.position_id} is already {pos.status}; a fill of exit signal {signal_id} "
                           "would be a second sale: check the broker's holdings")
        if quantity is None:
            quantity = (pos.exit_quantity or pos.quantity) if state == "pending" else pos.quantity
        if quantity < 1:
            raise DomainError("filled_quantity must be at least 1")
        if quantity > pos.quantity:
            raise DomainError(f"filled_quantity {quantity} exceeds the {pos.quantity} shares position "
                              f"{pos.position_id} holds")
        other = pos.exit_signal_id if pos.exit_signal_id not in (None, signal_id) else None
        if quantity == pos.quantity:
            self._close(pos, day, float(price), reason, at, signal_id)
            out = pos.position_id
        else:
            out = self._reduce(pos, day, float(price), quantity, reason, at, signal_id, ids)
        if other is not None:
            self._record(ExitOrderFailed(signal_id=other, position_id=pos.position_id, at=at,
                                         reason=f"not sent: exit signal {signal_id} sold the shares first"))
        return out

    # ----------------------------------------------------------------------------- positions

    def close_position(self, position_id: int, day: str, price: float, at: str, reason: str = "manual",
                       quantity: int | None = None, *, ids: IdSource | None = None) -> int:
        """Close an open position at `price` (a paper manual close at the latest price); sell charges are
        applied. With `quantity` below the shares held, only those are sold (a closed lot splits off).
        Returns the id of the closed position or lot."""
        pos, qty = self._to_close(position_id, quantity)
        if qty < pos.quantity:
            return self._reduce(pos, day, float(price), qty, reason, at, None, ids)
        self._close(pos, day, float(price), reason, at)
        return position_id

    def record_exit_signals(self, day: str, symbols: Iterable[str], at: str,
                            reasons: Mapping[str, str] | None = None, *, ids: IdSource | None = None) -> int:
        """Exit rules held at `day`'s close for `symbols`: those held exit at the next open.
        Symbols not held are ignored. Returns how many positions were flagged.

        With `ids` (live and paper) each exit is a signal of its own (`ExitSignalled` with a signal id,
        symbol, quantity and reason) and a position's protective exit is replaced by the new one (see
        `request_exit`); without (a backtest) the position is only flagged. Any other pending exit stands."""
        flagged = 0
        by_symbol = self._open_by_symbol
        reason_of = (reasons or {}).get
        for sym in symbols:
            pos = by_symbol.get(sym)
            if pos is None:
                continue
            reason = reason_of(sym, "")
            if pos.exit_pending:
                if (ids is None or pos.exit_signal_reason != PROTECTIVE_REASON
                        or reason == PROTECTIVE_REASON):
                    continue
                self.request_exit(pos.position_id, day, at, reason, ids=ids)
            elif ids is None:
                self._record(_exit_signalled(position_id=pos.position_id, day=day, at=at))
            else:
                self._record(ExitSignalled(
                    position_id=pos.position_id, day=day, at=at, signal_id=ids("signal"),
                    symbol=sym, quantity=pos.quantity, reference_price=pos.last_price, reason=reason,
                ))
            flagged += 1
        return flagged

    def cancel_placed_entries(self, day: str, reason: str, at: str) -> list[int]:
        """Cancel every placed entry order (e.g. the kill switch engaged): placed -> failed."""
        ids = list(self._placed)
        for sid in ids:
            self._record(OrderFailed(signal_id=sid, day=day, reason=reason, at=at))
        return ids

    # ----------------------------------------------------------------------------- paper fills from ticks

    def _tick_armed(self, pos: PositionState, day: str) -> bool:
        """Whether an open position's stop/target may fire at a tick of `day`: not on its entry day (as
        the daily model), and not when a market exit at the open is due (exit rules, max hold) -- the
        daily bar's open sells it first."""
        return (pos.entry_day < day and not pos.exit_pending
                and (self.max_hold_days is None or pos.bars_held < self.max_hold_days))

    def tick_levels(self, day: str) -> dict[str, tuple[float | None, float | None]]:
        """Paper: per symbol, (the highest level a tick at or under fires, the lowest a tick at or over
        fires) among placed limit entries and armed stops/targets -- what a tick source watches for."""
        if self.mode != "paper" or self.status in (PortfolioStatus.NEW, PortfolioStatus.RETIRED):
            return {}
        levels: dict[str, tuple[float | None, float | None]] = {}

        def note(sym: str, below: float | None, above: float | None) -> None:
            lo, hi = levels.get(sym, (None, None))
            if below is not None and (lo is None or below > lo):
                lo = below
            if above is not None and (hi is None or above < hi):
                hi = above
            if lo is not None or hi is not None:
                levels[sym] = (lo, hi)

        for pos in self.open_positions.values():
            if self._tick_armed(pos, day):
                note(pos.symbol, pos.stop_loss, pos.target)
        for sig in self._placed.values():
            if sig.entry_order == "limit":
                note(sig.symbol, sig.limit_price, None)
        return levels

    def process_ticks(self, day: str, prices: Mapping[str, float], at: str, tick_time: str | None = None, *,
                      ids: IdSource | None = None) -> int:
        """Paper portfolios while a tick feed runs: the latest tick `prices` of `day` (the next trading day
        `process_bars` will be called for; the caller checks that) against the working GTTs -- armed
        stops/targets first, then placed limit entries, each at the tick's price with the daily model's
        slippage and charges (`domain.fills.tick_exit` / `tick_entry_price`). Returns how many filled.
        `tick_time` (ISO with offset) is when the ticks traded: in NSE's closing auction (from 3 Aug 2026,
        15:15 IST on) nothing fills or triggers (`domain.fills.in_closing_auction`); None (a demo feed that
        ignores the session schedule) skips that check."""
        if self.mode != "paper" or self.status in (PortfolioStatus.NEW, PortfolioStatus.RETIRED):
            return 0
        if self.last_day is not None and day <= self.last_day:
            return 0
        if tick_time is not None and in_closing_auction(tick_time):  # no continuous trading nor SL orders
            return 0
        filled = 0
        for pos in list(self.open_positions.values()):
            tick = prices.get(pos.symbol)
            if tick is None or not self._tick_armed(pos, day):
                continue
            decision = tick_exit(float(tick), pos.stop_loss, pos.stop_reason, pos.target)
            if decision is not None:
                self._close(pos, day, with_slippage(decision.price, "sell", self.slippage_bps), decision.reason, at)
                filled += 1
        for sig in list(self._placed.values()):
            tick = prices.get(sig.symbol)
            if tick is None or sig.entry_order != "limit":
                continue
            raw = tick_entry_price(sig.limit_price, float(tick))
            if raw is not None and self._fill_entry(sig, day, raw, at, ids):
                filled += 1
        return filled

    # ----------------------------------------------------------------------------- the daily step

    def process_bars(self, day: str, bars: Mapping[str, BarLike], at: str,
                     closes: Mapping[str, float] | None = None, *, ids: IdSource | None = None) -> None:
        """Apply `day`'s bars ((open, high, low, close) per symbol; symbols without a bar today are
        left out): expire stale unplaced signals, simulate exits then entry fills (not in live
        mode), mark the close, ratchet trailing stops. Call once per trading day, in order.

        `closes`: the day's closes of (at least) the `symbols_needing_bars()` (held, and placed entries that
        may be held by the close), for a caller that sends whole bars only for the symbols `bar_symbols()` names:
        the others' closes are all the day needs of them. The marks are read from it; without it, from
        the bars."""
        if self.status in (PortfolioStatus.NEW, PortfolioStatus.RETIRED):
            raise InvalidTransition(f"portfolio is {self.status}; it cannot process bars")
        if self.last_day is not None and day <= self.last_day:
            raise DomainError(f"bars for {day} arrive after {self.last_day}; process each day once, in order")
        if len(self._live) > len(self._placed):  # signals not placed yet (every placed one is live)
            for sig in [s for s in self._live.values() if s.status != SignalStatus.PLACED]:
                if sig.days_waiting >= sig.validity_days:
                    self._record(SignalExpired(signal_id=sig.signal_id, reason="not placed in time", at=at))
        if self.mode != "live":
            self._simulate_exits(day, bars, at)
            self._simulate_entries(day, bars, at, ids)
        marks, value = self._day_marks(bars, closes)
        self._record(_day_closed(day=day, marks=marks, cash=self.cash, equity=round2(self.cash + value), at=at))
        if self.trailing_stop_pct is not None:
            self._ratchet_trailing(day, at)

    def _day_marks(self, bars: Mapping[str, BarLike],
                   closes: Mapping[str, float] | None) -> tuple[dict[str, float], float]:
        """(the held symbols' closes today -- DayClosed's marks --, the open positions' value at this close:
        `_open_value` at each one's mark, or its last mark when its symbol has no bar today)."""
        held = self._open_by_symbol
        if closes is not None:
            if len(held) == len(self.open_positions):  # one position per symbol (always): entry order alike
                # every held symbol traded today (the usual day): the marks and the value in one pass, the
                # value added as `_open_value` adds it
                marks: dict[str, float] = {}
                value = 0.0
                try:
                    for sym, pos in held.items():
                        price = marks[sym] = closes[sym]
                        value += pos.quantity * price
                except KeyError:
                    pass
                else:
                    return marks, value
            marks = {sym: closes[sym] for sym in held if sym in closes}
        elif all(map(bars.__contains__, held)):
            prices = list(map(_CLOSE, map(bars.__getitem__, held)))
            return dict(zip(held, prices, strict=True)), self._open_value(prices)
        else:
            marks = {sym: bars[sym][3] for sym in held if sym in bars}
        last = self._marks.price
        return marks, self._open_value([marks[sym] if sym in marks else last[sym] for sym in held])

    def _exit_candidates(self) -> list[PositionState]:
        """The open positions an exit can fire for at the next bar, in entry order."""
        if self.max_hold_days is None and self.stop_loss_pct is None and self.target_pct is None \
                and self.trailing_stop_pct is None:
            # no position has a stop, a target or a holding limit: only a pending exit can fire
            return sorted(self._exiting.values(), key=_SEQ) if len(self._exiting) > 1 \
                else list(self._exiting.values())
        return list(self.open_positions.values())

    def _simulate_exits(self, day: str, bars: Mapping[str, BarLike], at: str) -> None:
        max_hold = self.max_hold_days
        for pos in self._exit_candidates():
            if not pos.exit_pending and max_hold is None and pos.stop_loss is None and pos.target is None:
                continue  # nothing could exit it today (`exit_decision` would say None): skip the lookups
            bar = bars.get(pos.symbol)
            if bar is None or pos.entry_day >= day:  # no trade today, or bought today at a tick: it waits
                continue
            decision = exit_decision(bar, pos.stop_loss, pos.stop_reason, pos.target, pos.bars_held, max_hold,
                                     pos.exit_pending)
            if decision is not None:
                self._close(pos, day, with_slippage(decision.price, "sell", self.slippage_bps), decision.reason, at)

    def _simulate_entries(self, day: str, bars: Mapping[str, BarLike], at: str, ids: IdSource | None) -> None:
        for sig in list(self._placed.values()):
            bar = bars.get(sig.symbol)
            raw = None if bar is None else entry_fill_price(sig.entry_order, sig.limit_price, bar)
            if raw is None:
                if sig.days_waiting + 1 >= sig.validity_days:
                    self._record(EntryExpired(signal_id=sig.signal_id, day=day, at=at))
                continue
            self._fill_entry(sig, day, raw, at, ids)

    def _fill_entry(self, sig: SignalState, day: str, raw: float, at: str, ids: IdSource | None) -> bool:
        """Fill a placed entry at `raw` (before slippage) -- a bar's or a tick's price -- or fail it when the
        cash does not cover the fill and its charges. True if filled."""
        price = with_slippage(raw, "buy", self.slippage_bps)
        fee = total_charges("buy", sig.quantity, price, day, self.charges)
        cost = sig.quantity * price + fee
        if cost > self.cash + 1e-9:
            self._record(OrderFailed(
                signal_id=sig.signal_id, day=day,
                reason=f"{INSUFFICIENT_CASH}: the fill needs {format_inr(cost)}, cash is {format_inr(self.cash)}",
                at=at,
            ))
            return False
        self._open(sig, day, price, sig.quantity, at, fee, ids)
        return True

    def _ratchet_trailing(self, day: str, at: str) -> None:
        pct = self.trailing_stop_pct
        assert pct is not None
        for pos in self.open_positions.values():
            if pos.highest_close is None:
                continue
            trail = trail_level(pos.highest_close, pct, day)
            if pos.trail is not None and trail <= pos.trail:
                continue
            stop, reason = effective_stop(pos.fixed_stop, trail)
            if stop != pos.stop_loss or reason != pos.stop_reason:
                self._record(StopUpdated(position_id=pos.position_id, day=day, stop_loss=stop, trail=trail,
                                         reason=reason, at=at))

    # ----------------------------------------------------------------------------- helpers

    def _signal(self, signal_id: int) -> SignalState:
        sig = self.signals.get(signal_id)
        if sig is None:
            raise NotFound(f"signal {signal_id} not found in this portfolio")
        return sig

    def _new_id(self, kind: str, ids: IdSource | None) -> int:
        if ids is not None:
            return ids(kind)
        return self._next_signal_id if kind == "signal" else self._next_position_id

    def _open(self, sig: SignalState, day: str, price: float, qty: int, at: str, fee: float | None,
              ids: IdSource | None) -> int:
        if fee is None:
            fee = total_charges("buy", qty, price, day, self.charges)
        self._record(_fill_recorded(signal_id=sig.signal_id, day=day, side="buy", symbol=sig.symbol, quantity=qty,
                                    price=price, charges=fee, at=at))
        pid = self._next_position_id if ids is None else ids("position")
        stop_pct, target_pct = self.stop_loss_pct, self.target_pct
        self._record(_position_opened(
            position_id=pid, signal_id=sig.signal_id, day=day, symbol=sig.symbol, exchange=EXCHANGE,
            sector=sig.sector, quantity=qty, entry_price=price, entry_charges=fee,
            stop_loss=None if stop_pct is None else stop_level(price, stop_pct, day),
            target=None if target_pct is None else target_level(price, target_pct, day),
            conviction=sig.conviction, at=at,
        ))
        return pid

    def _close(self, pos: PositionState, day: str, price: float, reason: str, at: str,
               signal_id: int | None = None) -> None:
        fee = total_charges("sell", pos.quantity, price, day, self.charges)
        pnl = round2((price - pos.entry_price) * pos.quantity - pos.entry_charges - fee)
        self._record(_position_closed(position_id=pos.position_id, day=day, exit_price=price, exit_reason=reason,
                                      exit_charges=fee, realized_pnl=pnl, at=at, signal_id=signal_id))

    def _reduce(self, pos: PositionState, day: str, price: float, quantity: int, reason: str, at: str,
                signal_id: int | None, ids: IdSource | None) -> int:
        """Sell `quantity` (< held) shares: they take their pro-rata part of the entry charges (one lot,
        so FIFO and pro-rata agree) and pay the sell charges on their own turnover."""
        part = round(pos.entry_charges * quantity / pos.quantity, 2)
        fee = total_charges("sell", quantity, price, day, self.charges)
        pnl = round((price - pos.entry_price) * quantity - part - fee, 2)
        lot_id = self._new_id("position", ids)
        self._record(PositionReduced(
            position_id=pos.position_id, lot_id=lot_id, signal_id=signal_id, day=day, quantity=quantity,
            exit_price=price, exit_reason=reason, entry_charges=part, exit_charges=fee, realized_pnl=pnl, at=at,
        ))
        return lot_id

    def _release_signal(self, sig: SignalState) -> None:
        """A live signal ends without a position: free its symbol, slot and sector place."""
        self._live.pop(sig.signal_id, None)
        self._placed.pop(sig.signal_id, None)
        self._engaged.discard(sig.symbol)
        self._sector_engaged[sig.sector] -= 1
        if sig.status in (SignalStatus.IN_CART, SignalStatus.PLACED):
            self._occupied -= 1
            self._sector_occupied[sig.sector] -= 1

    # ----------------------------------------------------------------------------- mutators

    def when_PortfolioDeployed(self, e: PortfolioDeployed) -> None:
        self._at_close = False
        self.portfolio_id = e.portfolio_id
        self.account_id = e.account_id
        self.name = e.name
        self.mode = e.mode
        self.status = PortfolioStatus.ACTIVE
        self.strategy_id = e.strategy_id
        self.strategy = e.strategy
        self.capital = e.capital
        self.cash = e.capital
        self.close_equity = e.capital
        self.prev_close_equity = e.capital
        self.universe = e.universe
        self.position_size_pct = e.position_size_pct
        self.max_positions = e.max_positions
        self.max_per_sector = e.max_per_sector
        self.auto_approve = e.auto_approve
        self.slippage_bps = e.slippage_bps
        self.charges = e.charges
        self.deployed_on = e.day
        exits = e.strategy["exit_rules"]
        params = e.strategy["params"]
        self.stop_loss_pct: float | None = _opt_float(exits.get("stop_loss_pct"))
        self.target_pct: float | None = _opt_float(exits.get("target_pct"))
        self.trailing_stop_pct: float | None = _opt_float(exits.get("trailing_stop_pct"))
        hold = exits.get("max_hold_days")
        self.max_hold_days: int | None = None if hold is None else int(hold)
        self.entry_order: str = str(params.get("entry_order", "next_open"))
        self.entry_validity_days: int = int(params.get("entry_validity_days", 1))
        self.limit_offset_pct: float = float(params.get("limit_offset_pct", 0.0))

    def when_SignalGenerated(self, e: SignalGenerated) -> None:
        sig = SignalState(e)
        self.signals[e.signal_id] = sig
        self._live[e.signal_id] = sig
        self._engaged.add(e.symbol)
        self._sector_engaged[e.sector] = self._sector_engaged.get(e.sector, 0) + 1
        if e.signal_id >= self._next_signal_id:
            self._next_signal_id = e.signal_id + 1

    def when_SignalApproved(self, e: SignalApproved) -> None:
        sig = self.signals[e.signal_id]
        sig.status = SignalStatus.IN_CART
        self._occupied += 1
        self._sector_occupied[sig.sector] = self._sector_occupied.get(sig.sector, 0) + 1

    def when_SignalRejected(self, e: SignalRejected) -> None:
        sig = self.signals[e.signal_id]
        self._release_signal(sig)
        sig.status = SignalStatus.REJECTED
        sig.failure_reason = e.reason

    def when_SignalExpired(self, e: SignalExpired) -> None:
        sig = self.signals[e.signal_id]
        self._release_signal(sig)
        sig.status = SignalStatus.EXPIRED
        sig.failure_reason = e.reason

    def when_OrderPlaced(self, e: OrderPlaced) -> None:
        sig = self.signals[e.signal_id]
        sig.status = SignalStatus.PLACED
        sig.order_id = e.order_id
        sig.gtt_id = e.gtt_id
        sig.days_waiting = 0
        self._placed[e.signal_id] = sig

    def when_OrderFailed(self, e: OrderFailed) -> None:
        sig = self.signals[e.signal_id]
        self._release_signal(sig)
        sig.status = SignalStatus.FAILED
        sig.failure_reason = e.reason
        self.stats["orders_failed"] += 1
        if e.reason.startswith(INSUFFICIENT_CASH):
            self.stats["skipped_cash"] += 1

    def when_EntryExpired(self, e: EntryExpired) -> None:
        sig = self.signals[e.signal_id]
        self._release_signal(sig)
        sig.status = SignalStatus.EXPIRED
        sig.failure_reason = NOT_FILLED
        self.stats["entries_expired"] += 1

    def when_FillRecorded(self, e: FillRecorded) -> None:
        self._at_close = False
        sig = self.signals[e.signal_id]
        self._live.pop(e.signal_id, None)
        self._placed.pop(e.signal_id, None)
        sig.status = SignalStatus.EXECUTED
        sig.fill_price = e.price
        sig.filled_quantity = e.quantity
        self.cash = round2(self.cash - e.quantity * e.price - e.charges)
        self.stats["entries_filled"] += 1
        # the slot, sector place and symbol pass from the signal to the position (PositionOpened)

    def when_PositionOpened(self, e: PositionOpened) -> None:
        self._at_close = False
        pos = PositionState(e, self._marks, self._opened)
        self._opened += 1
        self.positions[e.position_id] = pos
        self.open_positions[e.position_id] = pos
        self._open_by_symbol[e.symbol] = pos
        if e.position_id >= self._next_position_id:
            self._next_position_id = e.position_id + 1
        sig = self.signals.get(e.signal_id) if e.signal_id is not None else None
        if sig is not None:
            sig.position_id = e.position_id

    def when_StopUpdated(self, e: StopUpdated) -> None:
        pos = self.positions[e.position_id]
        pos.stop_loss = e.stop_loss
        pos.trail = e.trail
        pos.stop_reason = e.reason
        self.stats["stop_updates"] += 1

    def when_ExitSignalled(self, e: ExitSignalled) -> None:
        pos = self.positions[e.position_id]
        pos.exit_pending = True
        if e.position_id in self.open_positions:
            self._exiting[e.position_id] = pos
        pos.exit_signal_id = e.signal_id
        pos.exit_signal_reason = e.reason
        pos.exit_quantity = e.quantity if 0 < e.quantity < pos.quantity else None
        if e.signal_id is not None:
            self.exit_signals[e.signal_id] = e.position_id
            self._next_signal_id = max(self._next_signal_id, e.signal_id + 1)
        if e.replaces is not None:
            self.replaced_exits[e.replaces] = e.position_id

    def when_PositionClosed(self, e: PositionClosed) -> None:
        self._at_close = False
        pos = self.open_positions.pop(e.position_id)
        del self._open_by_symbol[pos.symbol]
        self._exiting.pop(e.position_id, None)
        pos.status = PositionStatus.CLOSED
        pos.exit_price = e.exit_price
        pos.exit_day = e.day
        pos.exit_reason = e.exit_reason
        pos.exit_charges = e.exit_charges
        pos.realized_pnl = e.realized_pnl
        pos.last_price = e.exit_price
        if e.signal_id is not None:
            self.exit_results[e.signal_id] = (e.exit_price, pos.quantity, pos.position_id)
        self.closed_positions.append(pos)
        self.cash = round2(self.cash + pos.quantity * e.exit_price - e.exit_charges)
        self._engaged.discard(pos.symbol)
        self._occupied -= 1
        self._sector_occupied[pos.sector] -= 1
        self._sector_engaged[pos.sector] -= 1
        self.stats["exits"] += 1

    def when_PositionReduced(self, e: PositionReduced) -> None:
        self._at_close = False
        pos = self.open_positions[e.position_id]
        lot = PositionState.sold_lot(pos, e)
        pos.quantity -= e.quantity
        pos.entry_charges = round(pos.entry_charges - e.entry_charges, 2)
        if e.signal_id is not None and pos.exit_signal_id == e.signal_id:
            pos.exit_pending = False
            self._exiting.pop(pos.position_id, None)
            pos.exit_signal_id = None
            pos.exit_signal_reason = ""
            pos.exit_quantity = None
        elif pos.exit_quantity is not None and pos.exit_quantity >= pos.quantity:
            pos.exit_quantity = None
        self.positions[e.lot_id] = lot
        self.closed_positions.append(lot)
        self._next_position_id = max(self._next_position_id, e.lot_id + 1)
        self.cash = round(self.cash + e.quantity * e.exit_price - e.exit_charges, 2)
        if e.signal_id is not None:
            self.exit_results[e.signal_id] = (e.exit_price, e.quantity, e.lot_id)
        self.stats["exits"] += 1

    def when_DayClosed(self, e: DayClosed) -> None:
        marks = e.marks
        book = self._marks
        book.price.update(marks)  # the open positions' last_price
        book.closes += 1  # and their bars_held
        self._at_close = True
        if self.trailing_stop_pct is not None:
            for pos in self.open_positions.values():
                mark = marks.get(pos.symbol)
                if mark is not None and (pos.highest_close is None or mark > pos.highest_close):
                    pos.highest_close = mark
        for sig in self._live.values():
            sig.days_waiting += 1
        self.last_day = e.day
        self.prev_close_equity = self.close_equity
        self.close_equity = e.equity

    def when_PortfolioPaused(self, e: PortfolioPaused) -> None:
        self.status = PortfolioStatus.PAUSED

    def when_PortfolioResumed(self, e: PortfolioResumed) -> None:
        self.status = PortfolioStatus.ACTIVE

    def when_PortfolioRetired(self, e: PortfolioRetired) -> None:
        self.status = PortfolioStatus.RETIRED

    def when_PortfolioReset(self, e: PortfolioReset) -> None:
        self._at_close = False
        # history stays in the event log; the working state starts over (ids keep increasing)
        for sig in self._live.values():
            sig.status = SignalStatus.EXPIRED
            sig.failure_reason = "portfolio reset"
        for pos in self.open_positions.values():
            pos.status = PositionStatus.RESET
            pos.detach()
        self._marks = MarkBook()
        self._exiting = {}
        self.cash = e.capital
        self.close_equity = self.prev_close_equity = e.capital
        self.open_positions = {}
        self.closed_positions = []
        self._open_by_symbol = {}
        self._live = {}
        self._placed = {}
        self._engaged = set()
        self._occupied = 0
        self._sector_occupied = {}
        self._sector_engaged = {}
        self.status = PortfolioStatus.ACTIVE

    def when_BrokerOrderRecorded(self, e: BrokerOrderRecorded) -> None:
        sig = self.signals.get(e.signal_id)
        if sig is not None:
            sig.order_id = e.order_id
            sig.gtt_id = e.gtt_id
        else:
            self.exit_orders[e.signal_id] = (e.order_id, e.gtt_id)

    def when_ExitOrderFailed(self, e: ExitOrderFailed) -> None:
        pos = self.positions[e.position_id]
        if pos.exit_signal_id == e.signal_id:
            pos.exit_pending = False
            self._exiting.pop(pos.position_id, None)
            pos.exit_signal_id = None
            pos.exit_signal_reason = ""
            pos.exit_quantity = None
        self.failed_exits[e.signal_id] = e.position_id

    def when_ExitOrderCancelled(self, e: ExitOrderCancelled) -> None:
        self.cancelled_exits[e.signal_id] = e.position_id


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def engaged_counts(portfolio: Portfolio) -> dict[str, int]:
    """Open + live-signal counts per sector (a read helper for dashboards and tests)."""
    return {k: v for k, v in portfolio._sector_engaged.items() if v}


def rebuild(portfolio_id: int, events: Sequence[DomainEvent]) -> Portfolio:
    """A portfolio rebuilt from its events (the audit "as of" view uses a prefix of them)."""
    return Portfolio.rehydrate(Portfolio.uuid_for(portfolio_id), events)
