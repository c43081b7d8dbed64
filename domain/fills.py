"""The fill model: pure decisions about entry fills and exits on one daily bar.

The Portfolio aggregate calls these for paper portfolios and backtests alike; nothing else decides a
fill. Prices are raw (before slippage); `with_slippage` moves a decided price against the trader.

Entry orders (signal at day t's close):
- ``next_open``: a market order, filled at the open of the next bar.
- ``limit`` (a GTT): limit = close(t) x (1 - limit_offset_pct / 100) rounded DOWN to the tick. On each
  day it is live: filled at the open if open <= limit, else at the limit if low <= limit, else not
  filled. It is live for `entry_validity_days` trading days (t+1 .. t+N), then expires.

Exits, checked on every bar after the entry day, first match wins:
  1. gap through the stop:   open <= stop    -> exit at the open   (stop_loss / trailing_stop)
  2. gap through the target: open >= target  -> exit at the open   (target)
  3. max hold reached:       held >= max_hold_days bars -> exit at the open (max_hold)
  4. exit rules were true at the previous close -> exit at the open (signal)
  5. stop touched:           low <= stop     -> exit at the stop    (stop_loss / trailing_stop)
  6. target touched:         high >= target  -> exit at the target  (target)
Orders 3 and 4 are market orders at the open, so they come before the intraday touches 5-6 (a
position sold at the open cannot be stopped out later that day); a gap through a level at the same
open keeps the level's reason. When both the stop and the target are touched inside one bar the stop
wins (the conservative assumption without intraday data).

Stop and target levels: stop = fill x (1 - stop_loss_pct / 100) rounded DOWN to the tick, target =
fill x (1 + target_pct / 100) rounded UP to the tick -- never tighter than the configured percentages.
Trailing stop: after each close, trail = highest close since entry x (1 - trailing_stop_pct / 100)
rounded down to the tick; the effective stop is max(fixed stop, trail), and the exit reason is
``trailing_stop`` when the trail is strictly above the fixed stop.

Ticks (paper portfolios while a tick feed runs; `tick_entry_price`, `tick_exit`): the same GTTs
checked against each tick instead of a whole bar. A limit entry fills at the first tick at or under its
limit, at that tick's price -- min(tick, limit): at the session's first tick this is exactly the daily
rule's "open <= limit -> the open"; later in the day the daily rule assumes a continuous path and fills
at the limit itself, where a tick feed gives the price that actually traded (never above the limit).
A stop fires at the first tick at or under it (at min(tick, stop)), a target at the first tick at or
over it (at max(tick, target)). Market orders (next-open entries, max-hold and exit-rule exits) are
left to the daily bar's open.

NSE's closing session (from 3 Aug 2026, for stocks with derivatives): continuous trading ends at 15:15,
then a closing auction runs 15:15-15:35 -- no stop-loss orders, one auction price, which is the day's
close. A tick at or after 15:15 IST on such a day is therefore not a traded price a GTT can fill or
trigger on: paper tick fills and stop/target triggers stop at 15:15 (`in_closing_auction`), and what the
rest of the day decides is left to the daily step on the day's bar (whose close is the auction's). The
platform has no list of F&O stocks, so it applies the cut-off to every stock (conservative: a non-F&O
stock's 15:15-15:30 ticks also wait for the daily bar). Before 3 Aug 2026 continuous trading ran to 15:30.

Slippage: buys x (1 + bps / 10000), sells x (1 - bps / 10000), then rounded to 2 decimals with
Python's round() (not to the tick: slippage models the average price obtained).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from domain.market_hours import CLOSING_AUCTION_FROM, CONTINUOUS_UNTIL, IST
from domain.rounding import round2
from domain.ticks import DateLike, round_to_tick, tick_size

ENTRY_ORDERS = ("next_open", "limit")
EXIT_REASONS = ("target", "stop_loss", "trailing_stop", "max_hold", "signal", "manual", "end_of_data")


class Bar(NamedTuple):
    """One daily bar's prices."""

    open: float
    high: float
    low: float
    close: float


# (open, high, low, close): a `Bar` or any sequence in that order (the engine passes plain lists)
BarLike = Sequence[float]


class ExitDecision(NamedTuple):
    """An exit at the raw `price` (before slippage) for `reason`."""

    price: float
    reason: str


def limit_price(close: float, limit_offset_pct: float, on_date: DateLike) -> float:
    """The GTT limit for a signal at `close`: close x (1 - offset%), rounded down to the tick."""
    raw = close * (1.0 - limit_offset_pct / 100.0)
    return round_to_tick(raw, tick_size(raw, on_date), "down")


def entry_fill_price(order_type: str, limit: float | None, bar: BarLike) -> float | None:
    """The raw fill price of a live entry order on `bar`, or None when it does not fill."""
    if order_type == "next_open":
        return bar[0]
    if limit is None:
        raise ValueError("a limit entry needs a limit price")
    if bar[0] <= limit:
        return bar[0]
    if bar[2] <= limit:
        return limit
    return None


def in_closing_auction(at: datetime | str) -> bool:
    """Whether `at` (an aware datetime or ISO text with an offset) falls in NSE's closing auction: on or
    after 3 Aug 2026, at or after 15:15 IST. Text without an offset, or not a timestamp, is not."""
    if isinstance(at, str):
        try:
            at = datetime.fromisoformat(at)
        except ValueError:
            return False
    if at.tzinfo is None:
        return False
    local = at.astimezone(IST)
    return local.date().isoformat() >= CLOSING_AUCTION_FROM and local.time() >= CONTINUOUS_UNTIL


def tick_entry_price(limit: float | None, tick: float) -> float | None:
    """The raw fill price of a live limit (GTT) entry at a tick, or None when the tick is above the limit."""
    if limit is None:
        raise ValueError("a limit entry needs a limit price")
    return tick if tick <= limit else None


def tick_exit(tick: float, stop: float | None, stop_reason: str, target: float | None) -> ExitDecision | None:
    """Whether an open position's stop/target (its OCO GTT) fires at a tick, at what raw price and why.
    `stop` is the effective stop (see `effective_stop`)."""
    if stop is not None and tick <= stop:
        return ExitDecision(tick, stop_reason)
    if target is not None and tick >= target:
        return ExitDecision(tick, "target")
    return None


def with_slippage(price: float, side: str, bps: float) -> float:
    """`price` moved against the trader by `bps` basis points, rounded to 2 decimals."""
    if not bps:
        return round2(price)
    factor = 1.0 + bps / 10_000.0 if side == "buy" else 1.0 - bps / 10_000.0
    return round2(price * factor)


def stop_level(fill: float, stop_loss_pct: float | None, on_date: DateLike) -> float | None:
    """The fixed stop for an entry filled at `fill` (None when the stop is off)."""
    if stop_loss_pct is None:
        return None
    raw = fill * (1.0 - stop_loss_pct / 100.0)
    return round_to_tick(raw, tick_size(raw, on_date), "down")


def target_level(fill: float, target_pct: float | None, on_date: DateLike) -> float | None:
    """The target for an entry filled at `fill` (None when the target is off)."""
    if target_pct is None:
        return None
    raw = fill * (1.0 + target_pct / 100.0)
    return round_to_tick(raw, tick_size(raw, on_date), "up")


def trail_level(highest_close: float, trailing_stop_pct: float, on_date: DateLike) -> float:
    """The trailing stop after a close: highest close since entry x (1 - pct%), rounded down."""
    raw = highest_close * (1.0 - trailing_stop_pct / 100.0)
    return round_to_tick(raw, tick_size(raw, on_date), "down")


def effective_stop(fixed: float | None, trail: float | None) -> tuple[float | None, str]:
    """The binding stop level and its exit reason: the higher of the fixed stop and the trail."""
    if trail is not None and (fixed is None or trail > fixed):
        return trail, "trailing_stop"
    return fixed, "stop_loss"


def exit_decision(
    bar: BarLike,
    stop: float | None,
    stop_reason: str,
    target: float | None,
    bars_held: int,
    max_hold_days: int | None,
    exit_signal: bool,
) -> ExitDecision | None:
    """Whether a position exits on `bar`, and at what raw price and for which reason.

    `stop` is the effective stop (see `effective_stop`), `bars_held` the number of closes since
    entry (the entry day's included), `exit_signal` whether the exit rules were true at the previous
    close. Never call this on the entry day itself.
    """
    o = bar[0]
    if stop is not None and o <= stop:
        return ExitDecision(o, stop_reason)
    if target is not None and o >= target:
        return ExitDecision(o, "target")
    if max_hold_days is not None and bars_held >= max_hold_days:
        return ExitDecision(o, "max_hold")
    if exit_signal:
        return ExitDecision(o, "signal")
    if stop is not None and bar[2] <= stop:
        return ExitDecision(stop, stop_reason)
    if target is not None and bar[1] >= target:
        return ExitDecision(target, "target")
    return None
