"""The web app's one formatter module (api/web/assets/js/format.js), run in the real browser: Indian digit
grouping, ₹ with a true minus sign, signed P&L, percentages, IST times, NSE calendar days, countdowns."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import App

CASES: list[tuple[str, str]] = [
    ("f.inr(13013928.666)", "₹1,30,13,928.67"),
    ("f.inr(-67372.355)", "\u2212₹67,372.36"),
    ("f.inr(0)", "₹0.00"),
    ("f.inr(999.999)", "₹1,000.00"),
    ("f.inr(100000)", "₹1,00,000.00"),
    ("f.inr(1234567890123)", "₹12,34,56,78,90,123.00"),
    ("f.inr(1.005)", "₹1.01"),
    ("f.inr(-0.001)", "₹0.00"),
    ("f.inr(null)", "—"),
    ("f.inr(NaN)", "—"),
    ("f.inr(12.5, 0)", "₹13"),
    ("f.number(1000)", "1,000.00"),
    ("f.number(12345.6, 1)", "12,345.6"),
    ("f.groupIndian('123')", "123"),
    ("f.groupIndian('1234')", "1,234"),
    ("f.groupIndian('123456')", "1,23,456"),
    ("f.groupIndian('1234567')", "12,34,567"),
    ("f.pnl(1200)", "+₹1,200.00"),
    ("f.pnl(-5)", "\u2212₹5.00"),
    ("f.pnl(0)", "₹0.00"),
    ("f.pnl(0.001)", "₹0.00"),
    ("f.inrShort(13013928.67)", "₹1.30 Cr"),
    ("f.inrShort(-450000)", "\u2212₹4.50 L"),
    ("f.inrShort(12500)", "₹12,500"),
    ("f.pct(23.456)", "23.46 %"),
    ("f.pct(-1.5, 1)", "\u22121.5 %"),
    ("f.pct(2, 2, true)", "+2.00 %"),
    ("f.pct(0.001, 2, true)", "0.00 %"),
    ("f.price(2580.5)", "2,580.50"),
    ("f.dateTime('2026-08-03T10:00:00Z')", "03 Aug 2026, 15:30 IST"),
    ("f.dateTime('2026-08-03T15:30:00+05:30')", "03 Aug 2026, 15:30 IST"),
    ("f.dateTime('not a date')", "—"),
    ("f.timeIST('2026-08-03T18:45:05Z')", "00:15:05"),
    ("f.dateTimeSeconds('2026-08-03T18:45:05Z')", "04 Aug 2026, 00:15:05 IST"),
    ("f.dateTimeSeconds('')", "—"),
    ("f.day('2026-08-03')", "03 Aug 2026"),
    ("f.todayIST(new Date('2026-08-03T19:00:00Z'))", "2026-08-04"),
    ("f.countdown('2026-08-03T10:00:00Z', Date.parse('2026-08-03T09:15:00Z'))", "45 min"),
    ("f.countdown('2026-08-05T12:00:00Z', Date.parse('2026-08-03T09:00:00Z'))", "2 d 3 h"),
    ("f.countdown('2026-08-03T10:00:00Z', Date.parse('2026-08-03T11:00:00Z'))", "expired"),
    ("f.tone(-2)", "down"),
    ("f.tone(0)", ""),
    ("f.words('trailing_stop')", "trailing stop"),
    ("f.words(null)", "—"),
]


@pytest.fixture(scope="module")
def fmt(browser: Any, app: App) -> Any:
    ctx = browser.new_context()
    page = ctx.new_page()
    page.goto(app.url + "/signin")
    yield page
    ctx.close()


@pytest.mark.parametrize(("expr", "expected"), CASES)
def test_format(fmt: Any, expr: str, expected: str) -> None:
    got = fmt.evaluate(f"async () => {{ const f = await import('/assets/js/format.js'); return {expr}; }}")
    assert got == expected
