"""`domain.rounding.round2` and `round4` answer exactly `round(x, 2)` and `round(x, 4)`: the same float, the sign of
zero included."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.rounding import round2, round4


def _same(a: float, b: float) -> bool:
    return struct.pack("<d", a) == struct.pack("<d", b) or (math.isnan(a) and math.isnan(b))


ROUNDERS = {2: round2, 4: round4}


@pytest.mark.parametrize("digits", [2, 4])
@settings(max_examples=3000)
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_any_float(digits: int, x: float) -> None:
    assert _same(ROUNDERS[digits](x), round(x, digits))


@pytest.mark.parametrize("digits", [2, 4])
@settings(max_examples=3000)
@given(st.integers(-10**12, 10**12), st.integers(-4, 4), st.sampled_from([1.0, 0.5, 0.1, 1e-3, 1e-6]))
def test_near_the_grid_and_its_halves(digits: int, n: int, ulps: int, scale: float) -> None:
    """Amounts on and beside the grid (paise; 10^-4 for percentages) and its ties, a few ulps either way."""
    toward = math.inf if ulps >= 0 else -math.inf
    unit = 10**digits
    for x in (n / unit, (n + 0.5) / unit, n / unit * scale):
        for _ in range(abs(ulps)):
            x = math.nextafter(x, toward)
        assert _same(ROUNDERS[digits](x), round(x, digits)), x


def test_amounts_a_trade_produces() -> None:
    cash = 10_000_000.0
    for i in range(1, 20_000):
        price = round(50 + i * 0.37, 2)
        qty = 1 + i % 977
        cash = cash - qty * price - (i % 300) / 100
        for x in (cash, price * 1.0005, price * 0.9995, qty * price, -cash / 7, 0.005 * i, -0.001 * i):
            assert _same(round2(x), round(x, 2)), x
    for x in (0.0, -0.0, 0.004, -0.004, 0.005, -0.005, 0.015, 2.675, 1.005, -2.675, 1e15, -1e15, 123456789012.345):
        assert _same(round2(x), round(x, 2)), x


def test_round4_figures_a_backtest_produces() -> None:
    for i in range(1, 20_000):
        value = round(50 + i * 0.37, 2) * (1 + i % 977)
        pnl = (i % 601 - 300) * 1.37 - (i % 300) / 100
        for x in (pnl / value * 100.0, (value - pnl) / value * 100.0, 100.0 * i / 7919, -0.00005 * i):
            assert _same(round4(x), round(x, 4)), x
    for x in (0.0, -0.0, 0.00005, -0.00005, 0.00015, 1.00005, 2.67505, 1e13, -1e13, 99.99995):
        assert _same(round4(x), round(x, 4)), x
