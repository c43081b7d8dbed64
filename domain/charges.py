"""Statutory and broker charges on equity trades (delivery and intraday), as date-effective rate tables.

Schedule ``zerodha_delivery`` (Zerodha CNC, NSE), per reference §5.2:

| component | rate | side |
|---|---|---|
| brokerage | 0 | both |
| STT | 0.1 % of turnover | both |
| exchange transaction charge (NSE) | dated, see `_ZERODHA_DELIVERY` (each row names its source): | both |
|   | 0.00325 % before 2021-01-01; 0.00345 % 2021-01-01..2023-03-31; 0.00325 % | |
|   | 2023-04-01..2024-09-30; 0.00297 % from 2024-10-01; 0.00307 % (incl. IPFT) | |
|   | from 2026-03-01 | |
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
- Rounding: each component (brokerage, STT, exchange charge, SEBI fee, stamp duty, GST) is computed
  on exact decimals -- the turnover in whole paise (or the decimal the price was written as), the
  rates as the decimals in the table, never binary floats -- and rounded half-up to the paisa, as a
  contract note shows them: stamp duty on Rs 10,500 is 0.015 % = 1.575 -> Rs 1.58. GST is 18 % of
  the rounded brokerage + exchange charge + SEBI fee (the taxable value printed on the note), rounded
  the same way. The total is the sum of the rounded components, so the breakdown always adds up. STT
  is NOT rounded to the rupee: contract notes round it over a whole day's trades, which a per-trade
  figure cannot reproduce.
- The DP charge is applied to every sell (one trade = one scrip on one day).
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import NamedTuple

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
    source: str = ""  # where the dated rate comes from (the exchange charge is the one that moves)


# The reference table the code reads: one row per change of NSE's cash-market transaction charge.
_ZERODHA_DELIVERY: tuple[ChargeRates, ...] = (
    ChargeRates(effective_from="0001-01-01", exchange_pct=0.00325, dp_charge=15.93,
                source="NSE Rs 325/crore before the IPFT increase (Zerodha support, \"What is the brokerage "
                       "at Zerodha for equity?\": NSE 0.00325 %)"),
    ChargeRates(effective_from="2021-01-01", exchange_pct=0.00345, dp_charge=15.93,
                source="NSE raised cash-market transaction charges by 6 % from 1 Jan 2021 to fund the NSE "
                       "IPFT (Rs 345/crore; Kite's order_margins mock charges 0.00345 %)"),
    ChargeRates(effective_from="2023-04-01", exchange_pct=0.00325, dp_charge=15.93,
                source="NSE board, 23-24 Mar 2023: the 6 % increase of 1 Jan 2021 rolled back from 1 Apr "
                       "2023 (press release reported by The Hindu / BusinessLine, 24 Mar 2023)"),
    ChargeRates(effective_from="2024-10-01", exchange_pct=0.00297, dp_charge=15.34,
                source="SEBI 'true to label' flat exchange charges from 1 Oct 2024: NSE Rs 297/crore "
                       "(zerodha.com/charges, Oct 2024)"),
    ChargeRates(effective_from="2026-03-01", exchange_pct=0.00307, dp_charge=15.34,
                source="NSE circular FA73061 (27 Feb 2026, effective 1 Mar 2026): exchange charge + IPFT "
                       "Rs 307/crore"),
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


@functools.lru_cache(maxsize=4096)
def _exact(x: float) -> Fraction:
    """A float as the decimal it was written as (``repr``: 0.00345 -> 345/10^7), exactly."""
    return Fraction(Decimal(repr(float(x))))


Ratio = tuple[int, int]  # numerator, denominator


def _ratio(x: Fraction) -> Ratio:
    return x.numerator, x.denominator


class _Exact(NamedTuple):
    """One table row's rates as exact ratios of the turnover in paise (flat amounts: paise)."""

    brokerage: int
    brokerage_pct: Ratio
    stt: Ratio
    exchange: Ratio
    sebi: Ratio
    stamp: Ratio
    gst: Ratio
    dp: int


@functools.lru_cache(maxsize=4096)
def _exact_rates(rates: ChargeRates) -> _Exact:
    def paise(rupees: float) -> int:
        return _half_up(*_ratio(_exact(rupees) * 100), 1, 1)

    return _Exact(paise(rates.brokerage), _ratio(_exact(rates.brokerage_pct) / 100),
                  _ratio(_exact(rates.stt_pct) / 100), _ratio(_exact(rates.exchange_pct) / 100),
                  _ratio(_exact(rates.sebi_per_crore) / 10_000_000), _ratio(_exact(rates.stamp_pct) / 100),
                  _ratio(_exact(rates.gst_pct) / 100), paise(rates.dp_charge))


def _half_up(tn: int, td: int, rn: int, rd: int) -> int:
    """(tn / td) x (rn / rd) paise, non-negative, rounded half-up to a whole paisa (integers only):
    (2n + d) // 2d is n / d rounded half-up, for n, d >= 0."""
    n, d = tn * rn, td * rd
    return (2 * n + d) // (2 * d)


def _turnover_paise(quantity: float, price: float) -> Ratio:
    """quantity x price in paise, exactly, as a ratio: whole shares at a price on the paise grid are an
    integer; anything else is the product of the decimals the numbers were written as."""
    pp = price * 100.0
    r = round(pp)
    if quantity == int(quantity) and abs(pp - r) < 1e-6:
        return int(quantity) * r, 1
    return _ratio(_exact(quantity) * _exact(price) * 100)


def _components(side: str, quantity: float, price: float,
                rates: ChargeRates) -> tuple[float, float, float, float, float, float, float, float]:
    """(brokerage, stt, exchange, sebi, stamp, gst, dp, total) in rupees: each component computed on exact
    decimals and rounded half-up to the paisa, the total their sum (see the module docstring)."""
    b, s, e, sebi, stamp, gst, dp, total = _paise(side, quantity, price, rates, _exact_rates(rates))
    return b / 100, s / 100, e / 100, sebi / 100, stamp / 100, gst / 100, dp / 100, total / 100


def _paise(side: str, quantity: float, price: float, rates: ChargeRates,
           x: _Exact) -> tuple[int, int, int, int, int, int, int, int]:
    """(brokerage, stt, exchange, sebi, stamp, gst, dp, total) in whole paise."""
    tn, td = _turnover_paise(quantity, price)
    if rates.brokerage_pct:  # min(pct of turnover, cap): compare exactly before rounding
        capped = tn * x.brokerage_pct[0] >= x.brokerage * td * x.brokerage_pct[1]
        brokerage = x.brokerage if capped else _half_up(tn, td, *x.brokerage_pct)
    else:
        brokerage = x.brokerage
    # _half_up(tn, td, rn, rd) written out: this runs twice per simulated trade
    tn2 = 2 * tn
    if rates.stt_sell_only and side == "buy":
        stt = 0
    else:
        rn, rd = x.stt
        stt = (tn2 * rn + td * rd) // (2 * td * rd)
    rn, rd = x.exchange
    exchange = (tn2 * rn + td * rd) // (2 * td * rd)
    rn, rd = x.sebi
    sebi = (tn2 * rn + td * rd) // (2 * td * rd)
    if side == "buy":
        rn, rd = x.stamp
        stamp = (tn2 * rn + td * rd) // (2 * td * rd)
    else:
        stamp = 0
    rn, rd = x.gst
    gst = (2 * (brokerage + exchange + sebi) * rn + rd) // (2 * rd)
    dp = x.dp if side == "sell" else 0
    return brokerage, stt, exchange, sebi, stamp, gst, dp, brokerage + stt + exchange + sebi + stamp + gst + dp


@functools.lru_cache(maxsize=8192)
def _schedule_on(day: str, schedule: str) -> tuple[ChargeRates, _Exact]:
    """A named schedule's rates on `day` with their exact ratios (the per-trade hot path's lookup)."""
    rates = rates_on(day, schedule)
    return rates, _exact_rates(rates)


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
    if quantity * price <= 0:
        return ChargeBreakdown(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    return ChargeBreakdown(*_components(side, quantity, price, rates))


class _Tariff(NamedTuple):
    """One side of a named schedule on one day, for a turnover of `tn` whole paise: each of STT, exchange
    charge, SEBI fee and stamp duty is (tn x a + b) // c paise -- `_paise`'s (2 tn rn + rd) // (2 rd) with
    its ratio rn / rd (0 / 1 for a component that side does not pay) -- and GST (base x a + b) // c of the
    base brokerage + exchange + SEBI; `brokerage` and `dp` are flat paise."""

    brokerage: int
    stt: tuple[int, int, int]
    exchange: tuple[int, int, int]
    sebi: tuple[int, int, int]
    stamp: tuple[int, int, int]
    gst: tuple[int, int, int]
    dp: int


def _ratio_terms(r: Ratio) -> tuple[int, int, int]:
    return 2 * r[0], r[1], 2 * r[1]


_NIL = (0, 1, 2)  # a component the side does not pay: (tn x 0 + 1) // 2 = 0


@functools.lru_cache(maxsize=8192)
def _tariff(side: str, day: str, schedule: str) -> _Tariff | None:
    """(side, day, schedule)'s tariff, or None when the turnover-based brokerage needs `_paise`."""
    rates, x = _schedule_on(day, schedule)
    if rates.brokerage_pct:
        return None
    return _Tariff(
        x.brokerage,
        _NIL if rates.stt_sell_only and side == "buy" else _ratio_terms(x.stt),
        _ratio_terms(x.exchange), _ratio_terms(x.sebi),
        _ratio_terms(x.stamp) if side == "buy" else _NIL,
        _ratio_terms(x.gst), x.dp if side == "sell" else 0,
    )


def total_charges(
    side: str, quantity: int, price: float, trade_date: DateLike, schedule: str | ChargeRates = "zerodha_delivery"
) -> float:
    """Only the total of `charges(...)` (the figure cash and P&L use): the same sum of the same rounded
    components, by `_paise`'s integer arithmetic written out for a whole number of shares at a price on the
    paise grid (the usual trade; anything else goes through `_paise` itself)."""
    if isinstance(schedule, ChargeRates) or not isinstance(trade_date, str) or side not in SIDES:
        return charges(side, quantity, price, trade_date, schedule).total
    day = trade_date[:10]
    t = _tariff(side, day, schedule)
    if quantity * price <= 0:
        return 0.0
    pp = price * 100.0
    r = round(pp)
    if t is None or quantity != int(quantity) or not abs(pp - r) < 1e-6:
        rates, x = _schedule_on(day, schedule)
        return _paise(side, quantity, price, rates, x)[7] / 100
    tn = int(quantity) * r
    brokerage = t.brokerage
    a, b, c = t.stt
    stt = (tn * a + b) // c
    a, b, c = t.exchange
    exchange = (tn * a + b) // c
    a, b, c = t.sebi
    sebi = (tn * a + b) // c
    a, b, c = t.stamp
    stamp = (tn * a + b) // c
    a, b, c = t.gst
    gst = ((brokerage + exchange + sebi) * a + b) // c
    return (brokerage + stt + exchange + sebi + stamp + gst + t.dp) / 100
