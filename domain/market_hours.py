"""India Standard Time and the NSE equity session's clock times: the one definition every layer uses.

IST is a fixed UTC+05:30 (India has kept it since 1945 and has no daylight saving), named "IST" so
`strftime("%Z")` and `tzname()` say so. Trading *days* (weekends, holidays, special sessions) are
`domain.calendar`'s.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

__all__ = ["CLOSING_AUCTION_FROM", "CONTINUOUS_UNTIL", "IST", "KITE_TOKEN_EXPIRES_AT", "SESSION_CLOSE",
           "SESSION_OPEN", "kite_token_expiry"]

IST = timezone(timedelta(hours=5, minutes=30), "IST")

SESSION_OPEN = time(9, 15)  # the normal market opens (continuous trading)
SESSION_CLOSE = time(15, 30)  # the normal market closes; a day's bar is final after it
CONTINUOUS_UNTIL = time(15, 15)  # from CLOSING_AUCTION_FROM on: continuous trading ends, the closing auction runs
CLOSING_AUCTION_FROM = "2026-08-03"  # NSE: continuous trading to 15:15, closing auction 15:15-15:35
KITE_TOKEN_EXPIRES_AT = time(6, 0)  # a Kite access token is valid until 06:00 IST (regulatory)


def kite_token_expiry(now: datetime) -> datetime:
    """When a Kite access token issued at `now` (aware) expires, in IST: 06:00 IST on the next day
    (before 06:00 IST: today's)."""
    local = now.astimezone(IST)
    six = local.replace(hour=KITE_TOKEN_EXPIRES_AT.hour, minute=KITE_TOKEN_EXPIRES_AT.minute, second=0,
                        microsecond=0)
    return six if local < six else six + timedelta(days=1)
