"""Rule evaluation: operators, crosses, offsets, nesting, NaN handling and no look-ahead."""

from __future__ import annotations

import numpy as np

from domain.bars import BarMatrix
from domain.evaluate import describe_conditions, evaluate_rules
from domain.indicators import IndicatorCache
from domain.rules import parse_rules


def bars_from(close: list[list[float]] | list[list[int]] | np.ndarray, volume: np.ndarray | None = None) -> BarMatrix:
    c = np.asarray(close, dtype=float)
    n, d = c.shape
    dates = np.arange(np.datetime64("2022-01-03"), np.datetime64("2022-01-03") + d)
    return BarMatrix(symbols=tuple(f"S{i}" for i in range(n)), dates=dates, open=c.copy(), high=c + 1,
                     low=c - 1, close=c, volume=np.ones_like(c) if volume is None else volume)


def ev(rules: dict, bars: BarMatrix) -> np.ndarray:
    return evaluate_rules(parse_rules(rules), bars)


def cond(left, op, right) -> dict:
    return {"all": [{"left": left, "op": op, "right": right}]}


def test_compare_with_constant_is_elementwise() -> None:
    b = bars_from([[1, 5, 3, 7]])
    assert ev(cond({"ind": "close"}, ">", 4), b).tolist() == [[False, True, False, True]]
    assert ev(cond({"ind": "close"}, "<=", 3), b).tolist() == [[True, False, True, False]]
    assert ev(cond({"ind": "close"}, ">=", 5), b).tolist() == [[False, True, False, True]]
    assert ev(cond({"ind": "close"}, "<", 3), b).tolist() == [[True, False, False, False]]


def test_crosses_above_needs_previous_bar_at_or_below() -> None:
    # close vs constant 5: 4 -> 5 (touch, no cross) -> 6 (cross: prev 5 <= 5) -> 7 (no) -> 4 -> 6 (cross)
    b = bars_from([[4, 5, 6, 7, 4, 6]])
    got = ev(cond({"ind": "close"}, "crosses_above", 5), b)
    assert got.tolist() == [[False, False, True, False, False, True]]


def test_crosses_below_is_symmetric() -> None:
    b = bars_from([[6, 5, 4, 3, 6, 4]])
    got = ev(cond({"ind": "close"}, "crosses_below", 5), b)
    assert got.tolist() == [[False, False, True, False, False, True]]


def test_crosses_of_two_indicators_uses_both_series() -> None:
    close = [[10, 10, 10, 10, 13, 13, 9, 9]]
    b = bars_from(close)
    # sma(2) vs sma(4): equal until the jump, fast above after it, fast below after the drop
    up = ev(cond({"ind": "sma", "period": 2}, "crosses_above", {"ind": "sma", "period": 4}), b)
    down = ev(cond({"ind": "sma", "period": 2}, "crosses_below", {"ind": "sma", "period": 4}), b)
    assert up.tolist() == [[False, False, False, False, True, False, False, False]]
    assert down.tolist() == [[False, False, False, False, False, False, True, False]]


def test_offset_reads_value_k_bars_earlier() -> None:
    b = bars_from([[1, 2, 3, 4, 5]])
    # close > close 2 bars ago: always true once defined; NaN before -> False
    got = ev(cond({"ind": "close"}, ">", {"ind": "close", "offset": 2}), b)
    assert got.tolist() == [[False, False, True, True, True]]
    got = ev(cond({"ind": "close", "offset": 1}, ">=", 3), b)
    assert got.tolist() == [[False, False, False, True, True]]


def test_highest_with_offset_one_is_prior_high_breakout() -> None:
    close = np.array([[10, 11, 12, 11, 10, 13]], dtype=float)
    b = BarMatrix(symbols=("A",), dates=np.arange(np.datetime64("2022-01-03"), np.datetime64("2022-01-09")),
                  open=close, high=close, low=close, close=close, volume=np.ones_like(close))
    got = ev(cond({"ind": "close"}, ">", {"ind": "highest", "period": 3, "offset": 1}), b)
    assert got.tolist() == [[False, False, False, False, False, True]]


def test_all_and_any_nest() -> None:
    b = bars_from([[1, 2, 3, 4, 5, 6]])
    rules = {"any": [
        {"left": {"ind": "close"}, "op": "<", "right": 2},
        {"all": [
            {"left": {"ind": "close"}, "op": ">", "right": 3},
            {"left": {"ind": "close"}, "op": "<", "right": 6},
        ]},
    ]}
    assert ev(rules, b).tolist() == [[True, False, False, True, True, False]]


def test_nan_operand_is_false_for_every_operator() -> None:
    b = bars_from([[1, 2, 3]])
    for op in ("<", "<=", ">", ">=", "crosses_above", "crosses_below"):
        got = ev(cond({"ind": "sma", "period": 5}, op, 0), b)
        assert not got.any(), op


def test_missing_bars_are_false_and_do_not_break_history() -> None:
    close = np.array([[1.0, 2.0, np.nan, 3.0, 4.0]])
    b = bars_from(close)
    got = ev(cond({"ind": "close"}, ">", {"ind": "close", "offset": 1}), b)
    # offsets count the symbol's own bars: day 3 compares with day 1
    assert got.tolist() == [[False, True, False, True, True]]


def test_rules_do_not_look_ahead_truncating_future_changes_nothing() -> None:
    rng = np.random.default_rng(11)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, (6, 300)), axis=1))
    close[2, :50] = np.nan  # a late listing
    close[3, 120:125] = np.nan  # a suspension
    full = bars_from(close)
    rules = {"any": [
        {"all": [
            {"left": {"ind": "close"}, "op": ">", "right": {"ind": "sma", "period": 50}},
            {"left": {"ind": "rsi", "period": 14}, "op": "<", "right": 45},
        ]},
        {"left": {"ind": "ema", "period": 10}, "op": "crosses_above", "right": {"ind": "sma", "period": 30}},
        {"left": {"ind": "close"}, "op": ">", "right": {"ind": "bb_upper", "period": 20}},
        {"left": {"ind": "roc", "period": 5}, "op": ">", "right": {"ind": "atr", "period": 14}},
        {"left": {"ind": "low"}, "op": "<", "right": {"ind": "lowest", "period": 10, "offset": 1}},
    ]}
    whole = ev(rules, full)
    assert whole.any()
    for cut in (60, 121, 180, 299):
        part = BarMatrix(symbols=full.symbols, dates=full.dates[:cut], open=full.open[:, :cut],
                         high=full.high[:, :cut], low=full.low[:, :cut], close=full.close[:, :cut],
                         volume=full.volume[:, :cut])
        np.testing.assert_array_equal(ev(rules, part), whole[:, :cut])


def test_future_prices_changed_do_not_change_past_signals() -> None:
    rng = np.random.default_rng(5)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, (4, 200)), axis=1))
    rules = {"all": [{"left": {"ind": "sma", "period": 5}, "op": "crosses_above",
                      "right": {"ind": "sma", "period": 20}}]}
    base = ev(rules, bars_from(close))
    shocked = close.copy()
    shocked[:, 150:] *= 3.0
    np.testing.assert_array_equal(ev(rules, bars_from(shocked))[:, :150], base[:, :150])


def test_describe_conditions_names_values() -> None:
    b = bars_from([[1, 2, 3, 4, 5]])
    rules = parse_rules(cond({"ind": "close"}, ">", {"ind": "sma", "period": 2}))
    text = describe_conditions(rules, IndicatorCache(b), 0, 4)
    assert text == "close=5.00 > sma(2)=4.50"


def test_reasons_print_prices_as_prices_volumes_whole_and_big_thresholds_plainly() -> None:
    b = bars_from([[14650.0, 14700.25, 14719.8, 14720.5]], volume=np.array([[1.0, 2.0, 3.0, 1_250_000.0]]))
    rules = parse_rules({"all": [
        {"left": {"ind": "close"}, "op": ">", "right": {"ind": "sma", "period": 3}},
        {"left": {"ind": "volume"}, "op": ">", "right": 1_000_000},
        {"left": {"ind": "rsi", "period": 2}, "op": ">", "right": 52.5},
    ]})
    text = describe_conditions(rules, IndicatorCache(b), 0, 3)
    assert "e+" not in text, text
    parts = text.split("; ")
    assert parts[0] == "close=14,720.50 > sma(3)=14,713.52"
    assert parts[1] == "volume=12,50,000 > 10,00,000"
    assert parts[2].startswith("rsi(2)=") and parts[2].endswith(" > 52.50")
