from datetime import date, timedelta

import numpy as np
import pytest

from domain.calendar import (
    NSE_ANNUAL_HOLIDAYS,
    NSE_HOLIDAYS,
    NSE_MUHURAT_SESSIONS,
    NSE_SPECIAL_SESSIONS,
    TradingCalendar,
    nse_calendar,
)

CAL = nse_calendar()


def test_is_trading_day_on_weekend_is_false():
    assert not CAL.is_trading_day(date(2024, 3, 23))  # Saturday
    assert not CAL.is_trading_day(date(2024, 3, 24))  # Sunday
    assert CAL.is_trading_day(date(2024, 3, 22))  # Friday


@pytest.mark.parametrize(
    "holiday",
    [date(2024, 1, 22), date(2024, 3, 25), date(2025, 10, 2), date(2026, 11, 24), date(2019, 10, 21)],
)
def test_is_trading_day_on_nse_holiday_is_false(holiday):
    assert holiday.weekday() < 5
    assert not CAL.is_trading_day(holiday)


def test_is_trading_day_on_budget_saturday_is_true():
    assert CAL.is_trading_day(date(2025, 2, 1))
    assert CAL.is_trading_day(date(2024, 1, 20))


def test_muhurat_day_when_default_is_trading_and_when_excluded_is_closed():
    diwali_weekday, diwali_sunday = date(2024, 11, 1), date(2023, 11, 12)
    assert CAL.is_trading_day(diwali_weekday) and CAL.is_trading_day(diwali_sunday)
    strict = nse_calendar(extra_holidays=NSE_MUHURAT_SESSIONS)
    assert not strict.is_trading_day(diwali_weekday)
    assert not strict.is_trading_day(diwali_sunday)


def test_trading_days_around_holi_and_good_friday_skips_both():
    days = CAL.trading_days(date(2024, 3, 21), date(2024, 4, 2))
    assert days == [
        date(2024, 3, 21),
        date(2024, 3, 22),
        date(2024, 3, 26),
        date(2024, 3, 27),
        date(2024, 3, 28),
        date(2024, 4, 1),
        date(2024, 4, 2),
    ]


def test_trading_days_when_end_before_start_is_empty():
    assert CAL.trading_days(date(2024, 5, 2), date(2024, 5, 1)) == []
    assert CAL.trading_days_array(date(2024, 5, 2), date(2024, 5, 1)).size == 0


def test_trading_days_array_matches_day_by_day_check_over_twelve_years():
    start, end = date(2015, 1, 1), date(2026, 12, 31)
    expected = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    expected = [d for d in expected if CAL.is_trading_day(d)]
    got = CAL.trading_days_array(start, end)
    assert got.dtype == np.dtype("datetime64[D]")
    assert got.astype(object).tolist() == expected
    assert CAL.trading_days(start, end) == expected
    # roughly 245-250 sessions a year, as on NSE
    assert 240 * 12 <= len(expected) <= 252 * 12


def test_next_trading_day_over_holiday_weekend_lands_after_it():
    assert CAL.next_trading_day(date(2024, 3, 22)) == date(2024, 3, 26)
    assert CAL.next_trading_day(date(2024, 3, 23)) == date(2024, 3, 26)


def test_previous_trading_day_over_holiday_weekend_lands_before_it():
    assert CAL.previous_trading_day(date(2024, 3, 26)) == date(2024, 3, 22)
    assert CAL.previous_trading_day(date(2024, 4, 1)) == date(2024, 3, 28)


def test_on_or_before_and_on_or_after_keep_trading_days_and_roll_others():
    assert CAL.on_or_before(date(2024, 3, 22)) == date(2024, 3, 22)
    assert CAL.on_or_before(date(2024, 3, 25)) == date(2024, 3, 22)
    assert CAL.on_or_after(date(2024, 3, 25)) == date(2024, 3, 26)


def test_add_trading_days_forward_backward_and_zero():
    assert CAL.add_trading_days(date(2024, 3, 21), 2) == date(2024, 3, 26)
    assert CAL.add_trading_days(date(2024, 3, 26), -2) == date(2024, 3, 21)
    assert CAL.add_trading_days(date(2024, 3, 25), 0) == date(2024, 3, 26)
    assert CAL.add_trading_days(date(2024, 3, 22), 0) == date(2024, 3, 22)


def test_add_trading_days_when_walked_back_returns_to_start():
    days = CAL.trading_days(date(2023, 1, 1), date(2023, 12, 31))
    for d in days[::17]:
        assert CAL.add_trading_days(CAL.add_trading_days(d, 37), -37) == d
        assert CAL.count_trading_days(d, CAL.add_trading_days(d, 37)) == 38


def test_nse_calendar_with_extra_holiday_closes_that_day():
    closure = date(2025, 6, 10)
    assert CAL.is_trading_day(closure)
    assert not nse_calendar(extra_holidays=[closure]).is_trading_day(closure)


def test_nse_calendar_with_replacement_set_reopens_builtin_holidays():
    own = nse_calendar(holidays=[date(2025, 6, 10)], special_sessions=[])
    assert own.is_trading_day(date(2024, 3, 25))  # Holi is not in the replacement set
    assert not own.is_trading_day(date(2025, 6, 10))
    assert not own.is_trading_day(date(2025, 2, 1))  # no special sessions either


def test_calendar_without_tables_trades_every_weekday():
    plain = TradingCalendar()
    assert plain.trading_days(date(2024, 3, 22), date(2024, 3, 26)) == [
        date(2024, 3, 22),
        date(2024, 3, 25),
        date(2024, 3, 26),
    ]


def test_holiday_table_entries_are_weekdays_and_special_sessions_are_weekends():
    # a weekend "holiday" or a weekday "special session" would be a typo in the tables
    assert all(d.weekday() < 5 for d in NSE_HOLIDAYS)
    assert all(d.weekday() >= 5 for d in NSE_SPECIAL_SESSIONS)
    assert not (NSE_HOLIDAYS & NSE_MUHURAT_SESSIONS)
    assert {d.year for d in NSE_HOLIDAYS} == set(range(2015, 2027))


@pytest.mark.parametrize("d", [date(2027, 1, 26), date(2028, 10, 2), date(2030, 8, 15), date(2031, 5, 1),
                               date(2029, 12, 25)])
def test_fixed_date_holidays_close_years_past_the_table(d):
    assert d.weekday() < 5
    assert not CAL.is_trading_day(d)
    assert d not in CAL.trading_days(date(d.year, 1, 1), date(d.year, 12, 31))
    assert CAL.next_trading_day(d - timedelta(days=1)) != d


def test_the_fixed_date_holidays_were_closed_in_every_year_of_the_table():
    for year in range(2015, 2027):
        for month, day in NSE_ANNUAL_HOLIDAYS:
            d = date(year, month, day)
            if d.weekday() < 5:
                assert not CAL.is_trading_day(d), d


def test_table_agrees_with_exchange_calendars_xbom_except_nse_sessions():
    """The maintained `exchange_calendars` XBOM calendar (BSE shares NSE's holidays) day by day over
    2015-2026: the only differences allowed are NSE's special/muhurat sessions (which XBOM lacks) and
    the two closures NSE's circulars list that XBOM does not."""
    import exchange_calendars as xc

    xbom = xc.get_calendar("XBOM", start="2015-01-01")
    theirs = {ts.date() for ts in xbom.sessions_in_range("2015-01-01", "2026-12-31")}
    ours = set(CAL.trading_days(date(2015, 1, 1), date(2026, 12, 31)))
    assert ours - theirs == set(NSE_SPECIAL_SESSIONS | NSE_MUHURAT_SESSIONS)
    assert theirs - ours == {date(2015, 10, 23), date(2017, 2, 21)}
