"""FIFO lot matching, realized P&L, open lots, holding periods and capital-gains terms.

Rules (those of a broker's tax P&L, Zerodha Console's among them):
- Trades of one symbol are taken day by day, in execution order within a day.
- Same-day buys and sells are matched with each other first (an intraday round trip, `term` =
  ``intraday``), whatever older lots are held; what remains of the day's sells then consumes the oldest
  open lots (FIFO), and what remains of the day's buys becomes new lots.
- A sell with nothing left to match (history not imported, or a short) is reported as unmatched and
  makes no P&L.
- Terms: ``intraday`` (same day), ``long`` when the shares were held for more than twelve months
  (sold after the first anniversary of the buy), else ``short``.
- Corporate actions apply at the start of their ex-date: a split multiplies each open lot's quantity by
  new/old and divides its price by it (holding period unchanged); a bonus adds, for each lot, a lot of
  floor(quantity x new/old) shares at zero cost acquired on the ex-date (the cost of bonus shares is nil
  for tax).
- Charges come from `domain.charges` (the date-effective tables the backtest uses), per trade: the
  shares squared off the same day at intraday rates (Zerodha charges CNC bought and sold the same day as
  intraday, with brokerage capped at Rs 20 per order), the rest at delivery rates with the DP charge once
  per scrip per sell day (Zerodha's rule) instead of on every fill. An intraday match takes its share of
  the intraday charges of its two trades, any other match its share of their delivery charges (a lot
  carries the buy's delivery charges): intraday and delivery P&L are separate tax heads.
- Money is rounded to the paisa per match: `gross_pnl` = sell value - buy value (the broker's
  "realized P&L", before charges), `net_pnl` = gross - charges.
"""

from __future__ import annotations

import functools
import itertools
import math
import operator
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import NamedTuple

from domain.charges import INTRADAY, order_rates, rates_on, total_charges

EPS = 1e-9
_DAY_SEQ = operator.attrgetter("day", "seq")  # a book's order: day by day, in execution order within a day
_DAY = operator.attrgetter("day")


class Fill(NamedTuple):
    """One trade in a book: `seq` orders trades within a day (execution time, then trade id)."""

    key: str
    symbol: str
    day: str
    seq: str
    side: str  # buy | sell
    quantity: float
    price: float
    charges: float = 0.0
    order: str = ""  # the broker's order id: intraday brokerage is capped per order ("" = the trade alone)


@dataclass(frozen=True)
class Action:
    """A corporate action: `split` (new:old shares, e.g. 5:1 for a ten-to-two face-value split) or `bonus`
    (new bonus shares for every `old` held, e.g. 1:1)."""

    symbol: str
    ex_date: str
    kind: str
    ratio_new: float
    ratio_old: float


@dataclass
class Lot:
    symbol: str
    buy_key: str
    buy_date: str
    quantity: float
    price: float
    charges: float  # buy charges not yet matched


class Match(NamedTuple):
    """One sell's quantity matched against one lot (a tuple: a million are cheap to make and to turn into
    columns)."""

    symbol: str
    buy_key: str
    sell_key: str
    buy_date: str
    sell_date: str
    quantity: float
    buy_price: float
    sell_price: float
    buy_value: float
    sell_value: float
    gross_pnl: float
    charges: float
    net_pnl: float
    holding_days: int
    term: str  # intraday | short | long


@dataclass
class FifoResult:
    matches: list[Match] = field(default_factory=list)
    lots: list[Lot] = field(default_factory=list)
    unmatched: list[tuple[str, float]] = field(default_factory=list)  # (sell key, quantity)
    charges: dict[str, float] = field(default_factory=dict)  # per trade key, when computed (a schedule)


@functools.lru_cache(maxsize=65536)
def _d(day: str) -> date:
    return date.fromisoformat(day[:10])


@functools.lru_cache(maxsize=65536)
def term_of(buy_date: str, sell_date: str) -> str:
    b, s = _d(buy_date), _d(sell_date)
    if b == s:
        return "intraday"
    try:
        anniversary = b.replace(year=b.year + 1)
    except ValueError:  # 29 February
        anniversary = date(b.year + 1, 3, 1)
    return "long" if s > anniversary else "short"


def _squared_off(todays: Sequence[Fill]) -> dict[str, float]:
    """One symbol's trades of one day, in execution order: per trade key, the shares squared off that day.
    The day's sells take its buys in execution order -- exactly as `match_symbol`'s intraday pass
    matches them -- and both sides of what they take are intraday."""
    out: dict[str, float] = defaultdict(float)
    keys = [f.key for f in todays if f.side == "buy"]
    open_qty = [f.quantity for f in todays if f.side == "buy"]
    i = 0
    for sell in (f for f in todays if f.side == "sell"):
        left = sell.quantity
        while left > EPS and i < len(keys):
            take = min(open_qty[i], left)
            open_qty[i] -= take
            left -= take
            out[keys[i]] += take
            out[sell.key] += take
            if open_qty[i] <= EPS:
                i += 1
    return out


def _day_charges(todays: Sequence[Fill], schedule: str) -> dict[str, tuple[float, float, float]]:
    """One symbol's trades of one day, in execution order: per trade key (shares squared off that day,
    their charges, the charges of the rest). Squared-off shares pay intraday rates, with brokerage capped
    per order (Rs 20 on the order's intraday turnover, shared by its trades); the rest pays `schedule`'s
    rates, with the DP charge once for the day's delivery sells."""
    same_day = _squared_off(todays) if schedule == "zerodha_delivery" else {}
    order_turnover: dict[str, float] = defaultdict(float)
    for f in todays:
        order_turnover[f.order or f.key] += same_day.get(f.key, 0.0) * f.price
    out: dict[str, tuple[float, float, float]] = {}
    dp_paid = False
    for f in todays:
        sq = min(same_day.get(f.key, 0.0), f.quantity)
        rest = f.quantity - sq
        intraday = 0.0
        if sq > EPS:
            rates = order_rates(rates_on(f.day, INTRADAY), order_turnover[f.order or f.key])
            intraday = total_charges(f.side, sq, f.price, f.day, rates)  # type: ignore[arg-type]
        delivery = 0.0
        if rest > EPS:
            delivery = total_charges(f.side, rest, f.price, f.day, schedule)  # type: ignore[arg-type]
            if f.side == "sell" and rest * f.price > 0:
                if dp_paid:
                    delivery -= round(rates_on(f.day, schedule).dp_charge, 2)
                dp_paid = True
        out[f.key] = (sq, round(intraday, 2), round(delivery, 2))
    return out


def _by_symbol_day(fills: Iterable[Fill]) -> Iterator[list[Fill]]:
    ordered = sorted(fills, key=lambda f: (f.symbol, f.day, f.seq))
    for _, group in itertools.groupby(ordered, key=lambda f: (f.symbol, f.day)):
        yield list(group)


def intraday_quantities(fills: Iterable[Fill]) -> dict[str, float]:
    """Per trade key, the shares squared off the same day (Zerodha charges CNC bought and sold the same
    day as intraday)."""
    out: dict[str, float] = {}
    for todays in _by_symbol_day(fills):
        out.update(_squared_off(todays))
    return out


def trade_charges(fills: Iterable[Fill], schedule: str = "zerodha_delivery") -> dict[str, float]:
    """Charges per trade key from the date-effective tables (see `_day_charges`); `match_fifo` with a
    schedule computes the same while it matches."""
    out: dict[str, float] = {}
    for todays in _by_symbol_day(fills):
        out.update({k: round(i + d, 2) for k, (_, i, d) in _day_charges(todays, schedule).items()})
    return out


def price_factor(a: Action) -> float:
    """What a price before the ex-date is divided by to compare with prices after it: new/old for a split,
    (old + new)/old for a bonus (1:1 doubles the shares and halves the price)."""
    if a.ratio_new <= 0 or a.ratio_old <= 0:
        return 1.0
    if a.kind == "split":
        return a.ratio_new / a.ratio_old
    if a.kind == "bonus":
        return (a.ratio_old + a.ratio_new) / a.ratio_old
    return 1.0


def _apply_action(lots: list[Lot], a: Action) -> list[Lot]:
    if a.ratio_new <= 0 or a.ratio_old <= 0:
        return lots
    factor = a.ratio_new / a.ratio_old
    if a.kind == "split":
        for lot in lots:
            lot.quantity = lot.quantity * factor
            lot.price = lot.price / factor
        return lots
    if a.kind == "bonus":
        extra = [Lot(a.symbol, f"bonus:{a.ex_date}:{lot.buy_key}", a.ex_date, float(math.floor(lot.quantity * factor
                                                                                              + EPS)), 0.0, 0.0)
                 for lot in lots]
        return lots + [x for x in extra if x.quantity > EPS]
    return lots


def _match(lot: Lot, q: float, sell: Fill, sell_charge_share: float) -> Match:
    buy_charges = lot.charges * (q / lot.quantity) if lot.quantity > EPS else lot.charges
    lot.charges -= buy_charges
    buy_value = round(q * lot.price, 2)
    sell_value = round(q * sell.price, 2)
    gross = round(q * sell.price - q * lot.price, 2)
    ch = round(buy_charges + sell_charge_share, 2)
    days, term = _span(lot.buy_date, sell.day)
    return Match(sell.symbol, lot.buy_key, sell.key, lot.buy_date, sell.day, q, lot.price, sell.price, buy_value,
                 sell_value, gross, ch, round(gross - ch, 2), days, term)


@functools.lru_cache(maxsize=65536)
def _span(buy_date: str, sell_date: str) -> tuple[int, str]:
    """(holding days, term) of a match (cached: a book has far fewer date pairs than matches)."""
    return (_d(sell_date) - _d(buy_date)).days, term_of(buy_date, sell_date)


def _consume(lots: list[Lot], sell: Fill, left: float, per_share: float, out: FifoResult) -> float:
    """Match `left` of `sell` against `lots` in order, each match taking `per_share` of the sell's charges
    per share; returns what is left unmatched."""
    while left > EPS and lots:
        lot = lots[0]
        q = min(lot.quantity, left)
        out.matches.append(_match(lot, q, sell, per_share * q))
        lot.quantity -= q
        left -= q
        if lot.quantity <= EPS:
            lots.pop(0)
    return left


def _given_charges(todays: Sequence[Fill]) -> dict[str, tuple[float, float, float]]:
    """The trades' own `charges`, split between the shares squared off that day and the rest by quantity."""
    same_day = _squared_off(todays)
    out = {}
    for f in todays:
        sq = min(same_day.get(f.key, 0.0), f.quantity)
        part = f.charges * sq / f.quantity if f.quantity > EPS else 0.0
        out[f.key] = (sq, part, f.charges - part)
    return out


def match_symbol(fills: Sequence[Fill], actions: Sequence[Action] = (), schedule: str | None = None) -> FifoResult:
    """FIFO over one symbol's fills (any order; sorted here). `schedule`: compute each trade's charges
    from the date-effective tables (`_day_charges`: intraday rates for the shares squared off the same
    day, the rest at the schedule's) into `FifoResult.charges`; None: use the fills' own `charges`.
    Intraday matches take only the intraday part of their trades' charges, the others only the rest."""
    out = FifoResult()
    lots: list[Lot] = []
    pending = sorted(actions, key=lambda a: a.ex_date)
    for day, group in itertools.groupby(sorted(fills, key=_DAY_SEQ), key=_DAY):
        while pending and pending[0].ex_date <= day:
            lots = _apply_action(lots, pending.pop(0))
        todays = list(group)
        parts = _given_charges(todays) if schedule is None else _day_charges(todays, schedule)
        if schedule is not None:
            out.charges.update({k: round(i + d, 2) for k, (_, i, d) in parts.items()})
        # the day's buys: the shares squared off today (consumed whole by the intraday pass) and the rest
        squared = [Lot(f.symbol, f.key, f.day, parts[f.key][0], f.price, parts[f.key][1])
                   for f in todays if f.side == "buy" and parts[f.key][0] > EPS]
        for sell in (f for f in todays if f.side == "sell"):
            sq, intraday, delivery = parts[sell.key]
            left = _consume(squared, sell, sell.quantity, intraday / sq if sq > EPS else 0.0, out)
            rest = sell.quantity - sq
            left = _consume(lots, sell, left, delivery / rest if rest > EPS else 0.0, out)
            if left > EPS:
                out.unmatched.append((sell.key, left))
        lots.extend(Lot(f.symbol, f.key, f.day, f.quantity - parts[f.key][0], f.price, parts[f.key][2])
                    for f in todays if f.side == "buy" and f.quantity - parts[f.key][0] > EPS)
    for a in pending:
        lots = _apply_action(lots, a)
    out.lots = lots
    return out


def match_fifo(fills: Iterable[Fill], actions: Iterable[Action] = (), schedule: str | None = None) -> FifoResult:
    """FIFO over a whole book: each symbol on its own (`schedule`: see `match_symbol`)."""
    per: dict[str, list[Fill]] = defaultdict(list)
    for f in fills:
        per[f.symbol].append(f)
    acts: dict[str, list[Action]] = defaultdict(list)
    for a in actions:
        acts[a.symbol].append(a)
    out = FifoResult()
    for symbol in sorted(per.keys() | acts.keys()):
        r = match_symbol(per.get(symbol, []), acts.get(symbol, []), schedule)
        out.charges.update(r.charges)
        out.matches.extend(r.matches)
        out.lots.extend(r.lots)
        out.unmatched.extend(r.unmatched)
    return out


def average_cost(lots: Sequence[Lot]) -> float:
    qty = sum(lot.quantity for lot in lots)
    return sum(lot.quantity * lot.price for lot in lots) / qty if qty > EPS else 0.0
