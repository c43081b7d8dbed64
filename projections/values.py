"""The value conversions read models share (no tables here): money rounding, timestamps on the wire, UTC
epochs, and a signal's expiry (the portfolios read model and the notification recorder compute it alike)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from domain.calendar import nse_calendar
from domain.market_hours import IST, SESSION_CLOSE

_CALENDAR = nse_calendar()


def expiry(day: str, validity_days: int) -> tuple[str, float]:
    """The market close (15:30 Asia/Kolkata) of the trading day `validity_days` trading days after
    `day`: as an ISO string with +05:30 and as UTC epoch seconds (what comparisons use)."""
    last = _CALENDAR.add_trading_days(date.fromisoformat(day), max(int(validity_days), 0))
    close = datetime.combine(last, SESSION_CLOSE, IST)
    return close.isoformat(), close.timestamp()


def utc_epoch(iso: str) -> float:
    """UTC epoch seconds of an ISO timestamp ("Z" accepted; no offset means UTC)."""
    dt = datetime.fromisoformat(iso.replace("Z", "+00:00") if iso.endswith("Z") else iso)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def wire_ts(ts: str | None) -> str | None:
    # Stored as Python isoformat; served as the API's other UTC timestamps are ("...Z").
    if ts is None:
        return None
    return ts[:-6] + "Z" if ts.endswith("+00:00") else ts


def money(x: float | None) -> float | None:
    return None if x is None else round(float(x), 2)
