"""Notification preferences, quiet hours (IST) and the email text: pure rules."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from domain.errors import DomainError
from domain.notifications import (
    IST,
    channel_on,
    default_preferences,
    normalize_preferences,
    quiet_until,
    render,
    render_many,
)


def at_ist(hh: int, mm: int, day: int = 2) -> datetime:
    return datetime(2026, 3, day, hh, mm, tzinfo=IST).astimezone(UTC)


def test_quiet_hours_wrap_midnight_and_end_in_ist() -> None:
    prefs = normalize_preferences({"quiet_hours": {"start": "22:00", "end": "07:00"}})
    assert quiet_until(prefs, at_ist(21, 59)) is None
    assert quiet_until(prefs, at_ist(23, 30)) == datetime(2026, 3, 3, 7, 0, tzinfo=IST)
    assert quiet_until(prefs, at_ist(3, 0)) == datetime(2026, 3, 2, 7, 0, tzinfo=IST)
    assert quiet_until(prefs, at_ist(7, 0)) is None
    day = normalize_preferences({"quiet_hours": {"start": "12:00", "end": "13:30"}})
    assert quiet_until(day, at_ist(12, 45)) == datetime(2026, 3, 2, 13, 30, tzinfo=IST)
    assert quiet_until(day, at_ist(13, 30)) is None
    assert quiet_until(default_preferences(), at_ist(23, 0)) is None


def test_preferences_keep_defaults_and_refuse_unknowns() -> None:
    prefs = normalize_preferences({"kinds": {"fill_entry": {"email": False}}})
    assert channel_on(prefs, "fill_entry", "in_app") and not channel_on(prefs, "fill_entry", "email")
    assert channel_on(prefs, "signal_pending", "email") and not channel_on(prefs, "import_finished", "telegram")
    bad: dict[str, Any]
    for bad in ({"kinds": {"nope": {}}}, {"kinds": {"fill_entry": {"fax": True}}},
                {"kinds": {"fill_entry": {"email": 1}}},
                {"quiet_hours": {"start": "9", "end": "10:00"}}, {"quiet_hours": {"start": "10:00", "end": "10:00"}},
                {"quiet_hours": {"start": "10:00", "end": "11:00", "x": 1}}, {"kinds": []}):
        with pytest.raises(DomainError):
            normalize_preferences(bad)


def test_email_text_has_indian_money_ist_times_and_working_links() -> None:
    items = [{"signal_id": 1, "symbol": "INFY", "quantity": 12, "limit_price": 1510.35, "portfolio": "Dip",
              "expires_at": "2026-03-03T15:30:00+05:30"},
             {"signal_id": 2, "symbol": "TCS", "quantity": 3, "reference_price": 123456.5, "portfolio": "Dip",
              "expires_at": "2026-03-03T15:30:00+05:30"}]
    r = render("signal_pending", items, "/approvals", "https://trade.example.com/", "2026-03-02T10:15:00+00:00")
    assert r.subject == "TraderTape: 2 signals waiting for your approval"
    assert "BUY 12 INFY at \u20b91,510.35 (Dip), expires 3 Mar 2026, 15:30 IST" in r.text
    assert "\u20b91,23,456.50" in r.text and "\u20b91,23,456.50" in r.html
    assert "https://trade.example.com/approvals" in r.text and 'href="https://trade.example.com/approvals"' in r.html
    assert "2 Mar 2026, 15:45 IST" in r.text
    exit_ = render("fill_exit", [{"symbol": "INFY", "quantity": 12, "price": 1600, "reason": "trailing_stop",
                                  "pnl": -67372.36}], "/positions", "http://127.0.0.1:8000", "2026-03-02T10:15:00Z")
    assert "sold 12 INFY at \u20b91,600.00 (trailing stop); P&L \u2212\u20b967,372.36" in exit_.text
    both = render_many([("fill_entry", [{"symbol": "A", "quantity": 1, "price": 10}], "/positions"),
                        ("kill_switch", [{"loss": 250000, "limit": 200000}], "/risk")], "http://h",
                       "2026-03-02T10:15:00Z")
    assert both.subject == "TraderTape: 2 notifications" and "http://h/risk" in both.text
    assert "\u20b92,50,000.00" in both.text
    assert "<script>" not in render("risk_breach", [{"message": "<script>x</script>"}], "/risk", "http://h",
                                    "2026-03-02T10:15:00Z").html
