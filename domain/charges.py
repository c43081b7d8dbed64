"""Statutory and broker charges on equity trades (delivery and intraday), as date-effective rate tables.

Schedule ``zerodha_delivery`` (Zerodha CNC, NSE), per reference §5.2:

| component | rate | side |
|---|---|---|
| brokerage | 0 | both |
| STT | 0.1 % of turnover | both |
| exchange transaction charge (NSE) | 0.00345 % before 2024-10-01, 0.00297 % from then, | both |
|   | 0.00307 % (incl. IPFT) from 2026-03-01 | |
| SEBI turnover fee | Rs 10 / crore (0.0001 %) | both |
| stamp duty | 0.015 % | buy only |
| GST | 18 % of (brokerage + exchange charge + SEBI fee) | both |
| DP charge | Rs 13.50 + 18 % GST = 15.93 before 2024-10-01, Rs 13 + GST = 15.34 from then | sell, per |
|   |   | scrip per day |

Schedule ``zerodha_intraday`` (MIS; Zerodha also charges CNC bought and sold the same day as intraday):
brokerage min(0.03 % of turnover, Rs 20) per order, STT 0.025 % on the sell side only, stamp duty
0.003 % on the buy side, no DP charge; exchange charge, SEBI fee and GST as above. Imported tradebooks
charge the shares squared off the same day with it and the rest as delivery (`domain.pnl.trade_charges`).

Choices (documented because a contract note can differ by a paisa):
- Stamp duty before its national unification on 2020-07-01 varied by the client's state; the
  simulator applies the unified 0.015 % throughout.
- The DP charge fell from Rs 13.50 + GST to Rs 13 + GST; the exact date was not collected, so the
  table switches on 2024-10-01 (the SEBI "true to label" date of the exchange-charge change).
- Rounding: every component is computed exactly except stamp duty, which is rounded to the paisa
  first (as Kite's charges calculator does: 0.015 % of 1,498 is shown as 0.22); the total is the sum
  rounded to the paisa with Python's ``round(x, 2)``. The components in the breakdown are each
  shown rounded to the paisa, so they may differ from the total by a paisa. STT is NOT rounded to
  the rupee: contract notes round it over a whole day's trades, which a per-trade figure cannot
  reproduce.
- The DP charge is applied to every sell (one trade = one scrip on one day).
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

from domain.ticks import DateLike, iso_date

SCHEDULES = ("zerodha_delivery", "none")  # what a backtest or a portfolio may charge
INTRADAY = "zerodha_intraday"  # same-day round trips in imported tradebooks (`domain.pnl.trade_charges`)
SIDES = ("buy", "sell")


@dataclass(frozen=True)
class ChargeRates:
    """Rates in force from `effective_from` (ISO date) until the next entry of the same schedule."""

    effective_from: str
    brokerage: float = 0.0  # flat rupees per order
    stt_pct: float = 0.1
    exchange_pct: float = 0.00345
    sebi_per_crore: float = 10.0
    stamp_pct: float = 0.015  # buy side only
    gst_pct: float = 18.0
    dp_charge: float = 15.93  # rupees incl. GST, sell side only
    brokerage_pct: float = 0.0  # when set: brokerage = min(this % of turnover, `brokerage` as the cap)
    stt_sell_only: bool = False  # intraday: STT on the sell side only


_ZERODHA_DELIVERY: tuple[ChargeRates, ...] = (
    ChargeRates(effective_from="0001-01-01", exchange_pct=0.00345, dp_charge=15.93),
    ChargeRates(effective_from="2024-10-01", exchange_pct=0.00297, dp_charge=15.34),
    ChargeRates(effective_from="2026-03-01", exchange_pct=0.00307, dp_charge=15.34),
)
_NONE = ChargeRates(
    effective_from="0001-01-01", brokerage=0.0, stt_pct=0.0, exchange_pct=0.0, sebi_per_crore=0.0,
    stamp_pct=0.0, gst_pct=0.0, dp_charge=0.0,
)


@dataclass(frozen=True)
class ChargeBreakdown:
    """One trade's charges in rupees, each component rounded to the paisa, and their total."""

    brokerage: float
    stt: float
    exchange_txn: float
    sebi_fee: float
    stamp_duty: float
    gst: float
    dp_charge: float
    total: float

    def to_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


def rates_on(trade_date: DateLike, schedule: str = "zerodha_delivery") -> ChargeRates:
    """The rates of `schedule` in force on `trade_date`."""
    if schedule == "none":
        return _NONE
    if schedule == INTRADAY:
        return _intraday_rates(iso_date(trade_date))
    if schedule != "zerodha_delivery":
        raise ValueError(f"unknown charges schedule {schedule!r}; use one of: {', '.join((*SCHEDULES, INTRADAY))}")
    return _zerodha_rates(iso_date(trade_date))


@functools.lru_cache(maxsize=8192)
def _intraday_rates(day: str) -> ChargeRates:
    """Zerodha intraday (MIS, and CNC bought and sold the same day): brokerage min(0.03 %, Rs 20) per
    order, STT 0.025 % on the sell side only, stamp duty 0.003 % on the buy side, no DP charge; exchange,
    SEBI and GST as for delivery on that date."""
    return dataclasses.replace(_zerodha_rates(day), brokerage=20.0, brokerage_pct=0.03, stt_pct=0.025,
                               stt_sell_only=True, stamp_pct=0.003, dp_charge=0.0)


@functools.lru_cache(maxsize=8192)
def _zerodha_rates(day: str) -> ChargeRates:
    chosen = _ZERODHA_DELIVERY[0]
    for rates in _ZERODHA_DELIVERY:
        if rates.effective_from <= day:
            chosen = rates
    return chosen


def order_rates(rates: ChargeRates, order_turnover: float) -> ChargeRates:
    """The rates for one trade of an order whose brokerage is min(pct of the order's turnover, cap): a
    trade pays its turnover's share of the order's brokerage."""
    if not rates.brokerage_pct or order_turnover <= 0:
        return rates
    pct = min(rates.brokerage_pct, rates.brokerage * 100.0 / order_turnover)
    return dataclasses.replace(rates, brokerage_pct=pct)


def _components(side: str, turnover: float,
                rates: ChargeRates) -> tuple[float, float, float, float, float, float, float, float]:
    """(brokerage, stt, exchange, sebi, stamp, gst, dp, total): the components unrounded but stamp duty,
    and the total rounded to the paisa (see the module docstring)."""
    brokerage = min(turnover * rates.brokerage_pct / 100.0, rates.brokerage) if rates.brokerage_pct \
        else rates.brokerage
    stt = 0.0 if rates.stt_sell_only and side == "buy" else turnover * rates.stt_pct / 100.0
    exchange = turnover * rates.exchange_pct / 100.0
    sebi = turnover * rates.sebi_per_crore / 1e7
    stamp = round(turnover * rates.stamp_pct / 100.0, 2) if side == "buy" else 0.0
    gst = (brokerage + exchange + sebi) * rates.gst_pct / 100.0
    dp = rates.dp_charge if side == "sell" else 0.0
    total = round(brokerage + stt + exchange + sebi + stamp + gst + dp, 2)
    return brokerage, stt, exchange, sebi, stamp, gst, dp, total


def _rates_for(side: str, trade_date: DateLike, schedule: str | ChargeRates) -> ChargeRates:
    if side not in SIDES:
        raise ValueError(f"side must be 'buy' or 'sell', got {side!r}")
    return schedule if isinstance(schedule, ChargeRates) else rates_on(trade_date, schedule)


def charges(
    side: str,
    quantity: int,
    price: float,
    trade_date: DateLike,
    schedule: str | ChargeRates = "zerodha_delivery",
) -> ChargeBreakdown:
    """Charges on one delivery trade of `quantity` shares at `price` on `trade_date`.

    `schedule` is a schedule name (``zerodha_delivery`` or ``none``) or an explicit `ChargeRates`
    (used by tests and by callers with a broker-specific table). See the module docstring for the
    rounding rules.
    """
    rates = _rates_for(side, trade_date, schedule)
    turnover = quantity * price
    if turnover <= 0:
        zero = ChargeBreakdown(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        return zero
    brokerage, stt, exchange, sebi, stamp, gst, dp, total = _components(side, turnover, rates)
    return ChargeBreakdown(
        brokerage=round(brokerage, 2),
        stt=round(stt, 2),
        exchange_txn=round(exchange, 2),
        sebi_fee=round(sebi, 2),
        stamp_duty=stamp,
        gst=round(gst, 2),
        dp_charge=round(dp, 2),
        total=total,
    )


def total_charges(
    side: str, quantity: int, price: float, trade_date: DateLike, schedule: str | ChargeRates = "zerodha_delivery"
) -> float:
    """Only the total of `charges(...)` (the figure cash and P&L use), without the breakdown."""
    rates = _rates_for(side, trade_date, schedule)
    turnover = quantity * price
    if turnover <= 0:
        return 0.0
    return _components(side, turnover, rates)[7]
