"""The NSE equity trading calendar: which dates have a daily bar.

A trading day is a weekday that is not an exchange holiday, plus the odd weekend "special session"
(Union Budget Saturdays, Diwali muhurat trading on a weekend, disaster-recovery drills with live
trading). The calendar answers the question the bar store and the backtest ask: "is there a daily
bar for this date?". That is why a muhurat trading day (Diwali Laxmi Pujan), which NSE lists as a
holiday but on which a one-hour evening session produces a daily bar in bhavcopies and in Kite's
history, counts as a trading day here. Callers who want those short sessions excluded pass
``nse_calendar(extra_holidays=NSE_MUHURAT_SESSIONS)``.

The tables are best knowledge of NSE's capital-market circulars for 2015-2026 (ad-hoc election
and special closures included). Years past the table (NSE publishes next year's list in December)
close on the holidays whose date never moves -- Republic Day (26 Jan), Maharashtra Day (1 May),
Independence Day (15 Aug), Gandhi Jayanti (2 Oct) and Christmas (25 Dec), closed in every year of
the table -- so a simulated 2027 never trades on 26 January; the moveable festival holidays of such a
year are unknown until added (`extra_holidays`, or a newer table). Nothing here is authoritative:
deployments can add holidays or replace the whole set.

Why not the `exchange_calendars` package (XBOM; it has no XNSE): its holiday list is hard-coded per
release and ends on the last day of the current year (4.13.2 raises DateOutOfBounds for any 2027
date), so it cannot answer for the years `sim advance` reaches either; it has none of NSE's weekend
special sessions or muhurat sessions; it disagrees with NSE's circulars on 2015-10-23 and 2017-02-21;
and it would put pandas into the pure domain layer. tests/unit/test_calendar.py instead checks this
table against XBOM day by day (a dev dependency): a new release that moves a day fails that test.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import numpy.typing as npt

__all__ = [
    "NSE_ANNUAL_HOLIDAYS",
    "NSE_HOLIDAYS",
    "NSE_MUHURAT_SESSIONS",
    "NSE_SPECIAL_SESSIONS",
    "TradingCalendar",
    "nse_calendar",
]


def _dates(*isos: str) -> frozenset[date]:
    return frozenset(date.fromisoformat(s) for s in isos)


# Weekday closures of the NSE capital-market segment. Holidays falling on a Saturday or Sunday are
# left out: the weekend rule already closes those days.
NSE_HOLIDAYS: frozenset[date] = _dates(
    # 2015
    "2015-01-26", "2015-02-17", "2015-03-06", "2015-04-02", "2015-04-03", "2015-04-14",
    "2015-05-01", "2015-09-17", "2015-09-25", "2015-10-02", "2015-10-22", "2015-10-23",
    "2015-11-12", "2015-11-25", "2015-12-25",
    # 2016
    "2016-01-26", "2016-03-07", "2016-03-24", "2016-03-25", "2016-04-14", "2016-04-15",
    "2016-04-19", "2016-07-06", "2016-08-15", "2016-09-05", "2016-09-13", "2016-10-11",
    "2016-10-12", "2016-10-31", "2016-11-14",
    # 2017 (21 Feb: Mumbai civic elections)
    "2017-01-26", "2017-02-21", "2017-02-24", "2017-03-13", "2017-04-04", "2017-04-14",
    "2017-05-01", "2017-06-26", "2017-08-15", "2017-08-25", "2017-10-02", "2017-10-20",
    "2017-12-25",
    # 2018
    "2018-01-26", "2018-02-13", "2018-03-02", "2018-03-29", "2018-03-30", "2018-05-01",
    "2018-08-15", "2018-08-22", "2018-09-13", "2018-09-20", "2018-10-02", "2018-10-18",
    "2018-11-08", "2018-11-23", "2018-12-25",
    # 2019 (29 Apr: Lok Sabha polls in Mumbai; 21 Oct: Maharashtra assembly polls)
    "2019-03-04", "2019-03-21", "2019-04-17", "2019-04-19", "2019-04-29", "2019-05-01",
    "2019-06-05", "2019-08-12", "2019-08-15", "2019-09-02", "2019-09-10", "2019-10-02",
    "2019-10-08", "2019-10-21", "2019-10-28", "2019-11-12", "2019-12-25",
    # 2020
    "2020-02-21", "2020-03-10", "2020-04-02", "2020-04-06", "2020-04-10", "2020-04-14",
    "2020-05-01", "2020-05-25", "2020-10-02", "2020-11-16", "2020-11-30", "2020-12-25",
    # 2021
    "2021-01-26", "2021-03-11", "2021-03-29", "2021-04-02", "2021-04-14", "2021-04-21",
    "2021-05-13", "2021-07-21", "2021-08-19", "2021-09-10", "2021-10-15", "2021-11-05",
    "2021-11-19",
    # 2022
    "2022-01-26", "2022-03-01", "2022-03-18", "2022-04-14", "2022-04-15", "2022-05-03",
    "2022-08-09", "2022-08-15", "2022-08-31", "2022-10-05", "2022-10-26", "2022-11-08",
    # 2023 (Bakri Id moved from 28 to 29 June by a later circular)
    "2023-01-26", "2023-03-07", "2023-03-30", "2023-04-04", "2023-04-07", "2023-04-14",
    "2023-05-01", "2023-06-29", "2023-08-15", "2023-09-19", "2023-10-02", "2023-10-24",
    "2023-11-14", "2023-11-27", "2023-12-25",
    # 2024 (22 Jan: Ram Mandir consecration; 20 May and 20 Nov: elections in Mumbai)
    "2024-01-22", "2024-01-26", "2024-03-08", "2024-03-25", "2024-03-29", "2024-04-11",
    "2024-04-17", "2024-05-01", "2024-05-20", "2024-06-17", "2024-07-17", "2024-08-15",
    "2024-10-02", "2024-11-15", "2024-11-20", "2024-12-25",
    # 2025
    "2025-02-26", "2025-03-14", "2025-03-31", "2025-04-10", "2025-04-14", "2025-04-18",
    "2025-05-01", "2025-08-15", "2025-08-27", "2025-10-02", "2025-10-22", "2025-11-05",
    "2025-12-25",
    # 2026 (15 Jan: Mumbai civic elections)
    "2026-01-15", "2026-01-26", "2026-03-03", "2026-03-26", "2026-03-31", "2026-04-03",
    "2026-04-14", "2026-05-01", "2026-05-28", "2026-06-26", "2026-09-14", "2026-10-02",
    "2026-10-20", "2026-11-10", "2026-11-24", "2026-12-25",
)  # fmt: skip

# Diwali Laxmi Pujan days with an evening muhurat session (weekday and weekend ones).
NSE_MUHURAT_SESSIONS: frozenset[date] = _dates(
    "2015-11-11", "2016-10-30", "2017-10-19", "2018-11-07", "2019-10-27", "2020-11-14",
    "2021-11-04", "2022-10-24", "2023-11-12", "2024-11-01", "2025-10-21", "2026-11-08",
)  # fmt: skip

# Saturdays and Sundays on which the capital market traded: Union Budget days, live trading from
# the disaster-recovery site in 2024, and muhurat sessions that fell on a weekend.
NSE_SPECIAL_SESSIONS: frozenset[date] = _dates(
    "2015-02-28", "2020-02-01", "2024-01-20", "2024-03-02", "2024-05-18", "2025-02-01",
    "2026-02-01",
) | frozenset(d for d in NSE_MUHURAT_SESSIONS if d.weekday() >= 5)  # fmt: skip

# NSE holidays on fixed dates, closed every year (when a weekday); applied past the table's last year
NSE_ANNUAL_HOLIDAYS: frozenset[tuple[int, int]] = frozenset({(1, 26), (5, 1), (8, 15), (10, 2), (12, 25)})
NSE_TABLE_LAST_YEAR = max(d.year for d in NSE_HOLIDAYS)  # 2026: adding a year to the table moves it

_ONE_DAY = timedelta(days=1)
_EPOCH = date(1970, 1, 1)


@dataclass(frozen=True)
class TradingCalendar:
    """A daily exchange calendar: weekdays minus `holidays`, plus weekend `special_sessions`.

    `weekend` holds ``date.weekday()`` numbers (Monday = 0); Saturday and Sunday by default.
    `annual` (month, day) holidays close every year after `known_through` (the table's last year).
    """

    holidays: frozenset[date] = frozenset()
    special_sessions: frozenset[date] = frozenset()
    weekend: frozenset[int] = field(default=frozenset({5, 6}))
    annual: frozenset[tuple[int, int]] = frozenset()
    known_through: int = 9999

    def is_trading_day(self, d: date) -> bool:
        """True when the exchange holds a session (and so a daily bar exists) on `d`."""
        if d in self.special_sessions:
            return True
        if d.year > self.known_through and (d.month, d.day) in self.annual:
            return False
        return d.weekday() not in self.weekend and d not in self.holidays

    def _annual_closures(self, start: date, end: date) -> frozenset[date]:
        if not self.annual or end.year <= self.known_through:
            return frozenset()
        return frozenset(date(y, m, dd) for y in range(max(start.year, self.known_through + 1), end.year + 1)
                         for m, dd in self.annual)

    def trading_days(self, start: date, end: date) -> list[date]:
        """Trading days from `start` to `end`, both inclusive, ascending (empty if end < start)."""
        return [_EPOCH + timedelta(days=int(n)) for n in self.trading_days_array(start, end).astype(np.int64)]

    def trading_days_array(self, start: date, end: date) -> npt.NDArray[np.datetime64]:
        """Like `trading_days` but as a numpy ``datetime64[D]`` array (what `BarMatrix.dates` holds)."""
        if end < start:
            return np.empty(0, dtype="datetime64[D]")
        days = np.arange(np.datetime64(start, "D"), np.datetime64(end, "D") + 1, dtype="datetime64[D]")
        # 1970-01-01 was a Thursday (weekday 3)
        weekday = (days.astype(np.int64) + 3) % 7
        keep = ~np.isin(weekday, np.fromiter(self.weekend, dtype=np.int64, count=len(self.weekend)))
        closed = self.holidays | self._annual_closures(start, end)
        if closed:
            keep &= ~np.isin(days, self._as_array(closed))
        if self.special_sessions:
            keep |= np.isin(days, self._as_array(self.special_sessions))
        return days[keep]

    def next_trading_day(self, d: date) -> date:
        """The first trading day strictly after `d`."""
        d += _ONE_DAY
        while not self.is_trading_day(d):
            d += _ONE_DAY
        return d

    def previous_trading_day(self, d: date) -> date:
        """The last trading day strictly before `d`."""
        d -= _ONE_DAY
        while not self.is_trading_day(d):
            d -= _ONE_DAY
        return d

    def on_or_after(self, d: date) -> date:
        """`d` itself when it is a trading day, else the next trading day."""
        return d if self.is_trading_day(d) else self.next_trading_day(d)

    def on_or_before(self, d: date) -> date:
        """`d` itself when it is a trading day, else the previous trading day."""
        return d if self.is_trading_day(d) else self.previous_trading_day(d)

    def add_trading_days(self, d: date, n: int) -> date:
        """The `n`-th trading day after `d` (before it when `n` < 0).

        With ``n == 0`` the result is `d` rolled forward to a trading day, so that
        ``add_trading_days(d, 0)`` is always a trading day.
        """
        if n == 0:
            return self.on_or_after(d)
        step = self.next_trading_day if n > 0 else self.previous_trading_day
        for _ in range(abs(n)):
            d = step(d)
        return d

    def count_trading_days(self, start: date, end: date) -> int:
        """How many trading days lie from `start` to `end`, both inclusive."""
        return int(self.trading_days_array(start, end).size)

    def with_holidays(self, extra: Iterable[date]) -> TradingCalendar:
        """A copy of this calendar with `extra` closures added (special sessions on them dropped)."""
        extra_set = frozenset(extra)
        return TradingCalendar(
            holidays=self.holidays | extra_set,
            special_sessions=self.special_sessions - extra_set,
            weekend=self.weekend,
            annual=self.annual,
            known_through=self.known_through,
        )

    @staticmethod
    def _as_array(days: frozenset[date]) -> npt.NDArray[np.datetime64]:
        return np.array(sorted(days), dtype="datetime64[D]")


def nse_calendar(
    extra_holidays: Iterable[date] = (),
    *,
    holidays: Iterable[date] | None = None,
    special_sessions: Iterable[date] | None = None,
) -> TradingCalendar:
    """The NSE equity calendar from the built-in tables, adjusted by configuration.

    `extra_holidays` are added to the built-in set (an unexpected closure announced at short
    notice). `holidays` and `special_sessions`, when given, replace the built-in tables entirely
    (a deployment that maintains its own list).
    """
    base_holidays = NSE_HOLIDAYS if holidays is None else frozenset(holidays)
    sessions = NSE_SPECIAL_SESSIONS if special_sessions is None else frozenset(special_sessions)
    return TradingCalendar(holidays=base_holidays, special_sessions=sessions, annual=NSE_ANNUAL_HOLIDAYS,
                           known_through=NSE_TABLE_LAST_YEAR).with_holidays(extra_holidays)
