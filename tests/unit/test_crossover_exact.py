"""Crossovers of price-derived indicators are exact for ties and independent of the data window.

On NSE's price grid two moving averages can be exactly equal (sum10 x 3 == sum30). A rounding error
in the SMA gives such a tie a random sign, so `crosses_above` fires a day early or late, and which
way depends on where the data window starts -- a backtest and a live scan (reading a shorter window)
then disagree about the same day. `domain.indicators._sma` sums whole paise, so ties stay ties.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from domain.bars import BarMatrix
from domain.evaluate import evaluate_rules
from domain.indicators import sma
from domain.rules import parse_rules

RULES = [
    {"all": [{"left": {"ind": "sma", "period": 10}, "op": "crosses_above", "right": {"ind": "sma", "period": 30}}]},
    {"all": [{"left": {"ind": "sma", "period": 10}, "op": "crosses_below", "right": {"ind": "sma", "period": 30}}]},
    {"all": [{"left": {"ind": "sma", "period": 10}, "op": ">=", "right": {"ind": "sma", "period": 30}}]},
    {"all": [{"left": {"ind": "sma", "period": 3}, "op": "<", "right": {"ind": "sma", "period": 6}}]},
    {"all": [{"left": {"ind": "close"}, "op": ">", "right": {"ind": "bb_upper", "period": 20}}]},
    {"all": [{"left": {"ind": "close"}, "op": "crosses_above", "right": {"ind": "sma", "period": 5}}]},
]


def _bars(paise_steps: list[int], start: int) -> BarMatrix:
    """A price path on the 0.05 grid (as read from a CSV), from bar `start` on."""
    ticks = 20_000 + np.cumsum(np.asarray(paise_steps, dtype=np.int64))  # in units of 5 paise
    close = np.array([float(f"{t * 5 / 100:.2f}") for t in ticks])[start:]
    n = close.size
    dates = np.arange(np.datetime64("2020-01-01"), np.datetime64("2020-01-01") + n)
    c = close[None, :]
    return BarMatrix(symbols=("X",), dates=dates, open=c.copy(), high=c + 1, low=c - 1, close=c.copy(),
                     volume=np.ones_like(c))


# a 300-bar path found on main: on bar 297 sma(10) == sma(30) exactly; the running-sum rounding
# made them equal read from bar 0 and sma(10) < sma(30) read from bar 3
REGRESSION = [
    0, 4, 4, -1, -1, -3, -4, 1, -3, 2, -1, 3, 3, 0, -2, -4, -3, 1, -2, 4, -4, 1, -2, 2, 1, 0, -1, -2, -1, -2,
    1, 3, -2, 0, 1, 3, 2, 2, -2, -1, 2, -1, -4, -4, -3, 1, 1, 3, 3, 3, -3, 3, -4, 3, 4, 1, -2, 4, 0, 4,
    4, 4, 3, 1, 1, 3, 4, 2, 4, 4, 4, 3, 4, 1, -1, 2, 0, 0, 4, 4, -2, 2, -4, 3, 0, -3, 2, 1, -1, -4,
    -2, -1, 3, 1, 1, 4, 2, 3, -3, 1, 1, -4, -2, 3, -1, 1, 3, 0, 2, 3, -3, 1, 2, -2, 3, -4, 2, 1, 4, -1,
    -1, 4, 4, -2, 2, 2, -2, -2, 4, 0, -2, 4, -1, -1, 3, 2, 2, 4, 2, 4, 0, 0, 4, 4, 1, 0, 3, -2, 3, 3,
    2, 3, -3, 2, 3, 3, 2, 2, 1, -2, 3, 3, -4, -2, -1, -3, 3, -1, 2, 0, 4, 4, 4, 4, -2, -1, -2, 4, 2, 3,
    3, -2, 1, 3, 1, 0, -4, 0, -2, 0, 0, 2, -1, 0, -3, -3, 3, -1, -1, 3, 1, 1, -4, 0, 4, 4, -4, -2, -3, -1,
    -4, -1, -2, -3, 1, -2, 4, 4, 0, -2, -4, -3, -1, -1, 4, 3, -3, -1, 4, 4, 4, 0, -1, -2, 1, 2, -4, 0, -1, 2,
    1, -1, 1, 1, -1, -3, 1, 4, 1, 1, 4, 2, 4, 1, -3, 0, 4, -3, -3, 4, 0, 2, -3, -2, 2, -4, 4, -3, 4, -3,
    0, 0, 4, -3, -3, 2, -1, -4, -3, 0, 4, 3, -2, 4, 0, 1, -1, -4, 2, -4, -4, 4, 0, 3, 4, 0, 2, 4, 0, -3,
]


@settings(max_examples=150, deadline=None)
@given(steps=st.lists(st.integers(min_value=-4, max_value=4), min_size=45, max_size=300),
       start=st.integers(min_value=1, max_value=40))
@example(steps=REGRESSION, start=3)
def test_signals_do_not_depend_on_where_the_window_starts(steps: list[int], start: int) -> None:
    full = _bars(steps, 0)
    late = _bars(steps, start)
    for raw in RULES:
        rules = parse_rules(raw)
        a = evaluate_rules(rules, full)[0, start:]
        b = evaluate_rules(rules, late)[0]
        ready = rules.lookback  # from here on the late window has all the history the rule reads
        assert a[ready:].tolist() == b[ready:].tolist(), raw


def test_equal_means_are_equal_floats_whatever_the_start() -> None:
    # on bar 297 of REGRESSION the ten- and thirty-bar means are exactly equal (whole paise)
    for start in (0, 3, 17):
        close = _bars(REGRESSION, start).close
        t = 297 - start
        ten = sma(close, 10)[0, t]
        thirty = sma(close, 30)[0, t]
        exact = Fraction(sum(round(v * 100) for v in close[0, t - 9:t + 1]), 1000)
        assert exact == Fraction(sum(round(v * 100) for v in close[0, t - 29:t + 1]), 3000)
        assert ten == thirty == float(exact), start


def test_a_tie_is_not_a_cross_and_the_next_bar_above_is() -> None:
    # sma(2) and sma(4) meet exactly at 0.15 on bar 4, then sma(2) moves above on bar 5
    close = np.array([[0.1, 0.2, 0.1, 0.2, 0.1, 0.3]])
    dates = np.arange(np.datetime64("2020-01-01"), np.datetime64("2020-01-07"))
    bars = BarMatrix(symbols=("X",), dates=dates, open=close, high=close, low=close, close=close,
                     volume=np.ones_like(close))
    rule = parse_rules({"all": [{"left": {"ind": "sma", "period": 2}, "op": "crosses_above",
                                 "right": {"ind": "sma", "period": 4}}]})
    assert evaluate_rules(rule, bars)[0].tolist() == [False, False, False, False, False, True]
