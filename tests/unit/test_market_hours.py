"""IST and the NSE session times, defined once (domain/market_hours.py) for every layer."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from domain.market_hours import IST, SESSION_CLOSE, SESSION_OPEN, kite_token_expiry


def test_ist_is_asia_kolkata_and_says_ist() -> None:
    kolkata = ZoneInfo("Asia/Kolkata")
    for moment in (datetime(2015, 1, 1, tzinfo=UTC), datetime(2026, 8, 3, 9, 45, tzinfo=UTC)):
        assert moment.astimezone(IST).utcoffset() == moment.astimezone(kolkata).utcoffset()
        assert moment.astimezone(IST).isoformat().endswith("+05:30")
    assert datetime(2026, 1, 1, tzinfo=IST).strftime("%H:%M %Z") == "00:00 IST"
    assert (SESSION_OPEN.isoformat(), SESSION_CLOSE.isoformat()) == ("09:15:00", "15:30:00")


def test_kite_token_expires_at_the_next_six_am_ist() -> None:
    before_six = datetime(2026, 3, 2, 0, 10, tzinfo=UTC)  # 05:40 IST: today's 06:00
    assert kite_token_expiry(before_six).isoformat() == "2026-03-02T06:00:00+05:30"
    after_six = datetime(2026, 3, 2, 0, 30, tzinfo=UTC)  # 06:00 IST sharp: tomorrow's
    assert kite_token_expiry(after_six).isoformat() == "2026-03-03T06:00:00+05:30"
    evening = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)  # 18:30 IST
    assert kite_token_expiry(evening).isoformat() == "2026-03-03T06:00:00+05:30"
