"""Evaluating a parsed rule set into a boolean candidate matrix (symbols x days).

Semantics:
- a condition compares two operands day by day; a number is a constant;
- ``offset=k`` reads the value k bars earlier (the symbol's own bars);
- ``crosses_above``: left[t] > right[t] and left[t-1] <= right[t-1]; ``crosses_below``: left[t] <
  right[t] and left[t-1] >= right[t-1];
- any NaN operand makes the condition False (numpy comparisons with NaN are False);
- ``all`` is a logical AND of its items, ``any`` an OR; nesting is allowed;
- the value at day t reads only bars at or before t, so truncating the future never changes a past
  signal (tests/unit/test_rule_eval.py proves it).

Each distinct indicator series is computed once per `IndicatorCache`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from domain.bars import BarMatrix
from domain.conviction import conviction
from domain.indicators import BoolMatrix, FloatMatrix, IndicatorCache, shift
from domain.money import format_number, format_price
from domain.rules import Condition, Indicator, Operand, RuleSet, parse_rules


def _operand(cache: IndicatorCache, op: Operand) -> FloatMatrix | float:
    if isinstance(op, Indicator):
        return cache.series(op)
    return float(op)


def _compare(left: FloatMatrix | float, op: str, right: FloatMatrix | float) -> BoolMatrix:
    if op == "<":
        out = np.less(left, right)
    elif op == "<=":
        out = np.less_equal(left, right)
    elif op == ">":
        out = np.greater(left, right)
    elif op == ">=":
        out = np.greater_equal(left, right)
    else:
        raise ValueError(f"unknown operator {op!r}")
    result: BoolMatrix = np.asarray(out, dtype=bool)
    return result


def evaluate_condition_aligned(cond: Condition, cache: IndicatorCache) -> BoolMatrix:
    """One condition in the cache's aligned layout."""
    left = _operand(cache, cond.left)
    right = _operand(cache, cond.right)
    shape = cache.layout.shape
    if cond.op in ("crosses_above", "crosses_below"):
        if cond.op == "crosses_above":
            now = _compare(left, ">", right)
            before = _compare(left, "<=", right)
        else:
            now = _compare(left, "<", right)
            before = _compare(left, ">=", right)
        now = np.broadcast_to(now, shape)
        before = np.broadcast_to(before, shape)
        out: BoolMatrix = now & shift(np.ascontiguousarray(before), 1, fill=False)
        return out
    return np.broadcast_to(_compare(left, cond.op, right), shape)


def evaluate_aligned(rules: RuleSet, cache: IndicatorCache) -> BoolMatrix:
    """A rule set in the cache's aligned layout (see `domain.indicators.Layout`)."""
    acc: BoolMatrix | None = None
    for item in rules.items:
        part = (evaluate_aligned(item, cache) if isinstance(item, RuleSet)
                else evaluate_condition_aligned(item, cache))
        if acc is None:
            acc = np.array(part, dtype=bool)
        elif rules.mode == "all":
            acc &= part
        else:
            acc |= part
    assert acc is not None  # the parser rejects empty rule sets
    return acc


def evaluate_rules(rules: RuleSet, source: IndicatorCache | BarMatrix) -> BoolMatrix:
    """The days (columns) on which `rules` hold for each symbol (row), at the close of that day.

    Missing bars are always False.
    """
    cache = source if isinstance(source, IndicatorCache) else IndicatorCache(source)
    aligned = evaluate_aligned(rules, cache) & cache.valid
    out: BoolMatrix = cache.restore(aligned, False)
    return out


@dataclass(frozen=True)
class StrategySignals:
    """A strategy evaluated over a bar matrix: where its entry rules hold, where its exit rules hold
    (None without `exit_when`), and each cell's conviction (symbols x days, the bars' columns)."""

    entry_rules: RuleSet
    entry: BoolMatrix
    exit_rules: RuleSet | None
    exit: BoolMatrix | None
    conviction: FloatMatrix


def evaluate_strategy(strategy: Mapping[str, Any], cache: IndicatorCache) -> StrategySignals:
    """The one evaluation of a strategy (base_model, entry_rules, exit_rules, params as normalized by
    `domain.strategies.normalize_spec`) that the backtest engine and the live after-close scan both run:
    paper trades equal backtest trades because they read these very matrices."""
    entry_rules = parse_rules(strategy["entry_rules"], "entry_rules")
    exit_when = strategy["exit_rules"].get("exit_when")
    exit_rules = parse_rules(exit_when, "exit_rules.exit_when") if exit_when else None
    return StrategySignals(
        entry_rules=entry_rules,
        entry=evaluate_rules(entry_rules, cache),
        exit_rules=exit_rules,
        exit=evaluate_rules(exit_rules, cache) if exit_rules is not None else None,
        conviction=conviction(strategy["base_model"], strategy["params"], cache),
    )


def describe_conditions(rules: RuleSet, cache: IndicatorCache, row: int, column: int) -> str:
    """Human-readable values of each condition for one symbol (row) at one day (original column),
    e.g. ``close=14,720.50 > sma(200)=13,980.40; rsi(14)=31.00 < 35`` -- the `reason` a live signal carries."""
    restore_col = _aligned_column(cache, row, column)
    parts: list[str] = []
    for cond in rules.conditions():
        sides: list[str] = []
        for op in (cond.left, cond.right):
            if isinstance(op, Indicator):
                value = float("nan") if restore_col < 0 else float(cache.series(op)[row, restore_col])
                sides.append(f"{_label(op)}={_value_text(op.name, value)}")
            else:
                sides.append(_constant_text(float(op)))
        parts.append(f"{sides[0]} {cond.op} {sides[1]}")
    return "; ".join(parts)


_COUNTS = frozenset({"volume", "avg_volume"})
_RATIOS = frozenset({"rsi", "roc"})  # 0-100 scores and percent changes


def _value_text(name: str, value: float) -> str:
    """Prices as prices (14,720.50, never 1.472e+04), volumes as whole numbers, RSI/ROC to 2 places."""
    if name in _COUNTS:
        return format_number(value, 0)
    return format_number(value, 2) if name in _RATIOS else format_price(value)


def _constant_text(value: float) -> str:
    return format_number(value, 0) if value == int(value) else format_number(value, 2)


def _aligned_column(cache: IndicatorCache, row: int, column: int) -> int:
    valid_orig: npt.NDArray[np.bool_] = cache.restore(cache.valid, False)
    if not valid_orig[row, column]:
        return -1
    return int(valid_orig[row, :column].sum())


def _label(ind: Indicator) -> str:
    text = ind.name if ind.period is None else f"{ind.name}({ind.period})"
    if ind.offset:
        text += f"[-{ind.offset}]"
    return text
