"""The strategy rule language: parsing and validation into a small immutable AST.

A rule set is ``{"all": [...]}`` or ``{"any": [...]}``; items are conditions or nested rule sets.
A condition is ``{"left": X, "op": OP, "right": Y}`` where X and Y are numbers or indicator
expressions ``{"ind": NAME, "period": N, "offset": K, ...}``. Errors name the offending path, e.g.
``entry_rules.all[1].left.ind: unknown indicator 'foo'``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

PRICE_FIELDS = ("open", "high", "low", "close", "volume")
# indicator name -> default period (None: the indicator takes no period)
INDICATORS: dict[str, int | None] = {
    "close": None,
    "open": None,
    "high": None,
    "low": None,
    "volume": None,
    "sma": 20,
    "ema": 20,
    "rsi": 14,
    "atr": 14,
    "roc": 10,
    "highest": 20,
    "lowest": 20,
    "bb_upper": 20,
    "bb_lower": 20,
    "avg_volume": 20,
}
# indicators that read one price series, and the series they read by default
SOURCE_DEFAULTS: dict[str, str] = {
    "sma": "close",
    "ema": "close",
    "roc": "close",
    "highest": "high",
    "lowest": "low",
    "bb_upper": "close",
    "bb_lower": "close",
}
OPERATORS = ("<", "<=", ">", ">=", "crosses_above", "crosses_below")
MAX_PERIOD = 500
MAX_OFFSET = 500
MAX_DEPTH = 5
MAX_CONDITIONS = 50


class RuleError(ValueError):
    """A rule set is malformed; `path` names where, `message` says what to change."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


@dataclass(frozen=True)
class Indicator:
    name: str
    period: int | None = None
    offset: int = 0
    source: str | None = None
    std: float | None = None

    @property
    def lookback(self) -> int:
        """Bars of history needed before the first valid value (period + offset, plus one for the
        previous-bar reference of atr/rsi/roc)."""
        p = self.period or 1
        extra = 1 if self.name in ("rsi", "atr", "roc") else 0
        return p + extra + self.offset

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ind": self.name}
        if self.period is not None:
            out["period"] = self.period
        if self.offset:
            out["offset"] = self.offset
        if self.source is not None and self.source != SOURCE_DEFAULTS.get(self.name):
            out["source"] = self.source
        if self.std is not None and self.std != 2.0:
            out["std"] = self.std
        return out

    def key(self) -> tuple[Any, ...]:
        """A hashable identity used to compute each distinct series once."""
        return (self.name, self.period, self.source, self.std)


Operand = float | Indicator


@dataclass(frozen=True)
class Condition:
    left: Operand
    op: str
    right: Operand

    def to_json(self) -> dict[str, Any]:
        return {"left": _operand_json(self.left), "op": self.op, "right": _operand_json(self.right)}


@dataclass(frozen=True)
class RuleSet:
    mode: str  # "all" | "any"
    items: tuple[Condition | RuleSet, ...]

    def to_json(self) -> dict[str, Any]:
        return {self.mode: [item.to_json() for item in self.items]}

    def conditions(self) -> list[Condition]:
        out: list[Condition] = []
        for item in self.items:
            if isinstance(item, Condition):
                out.append(item)
            else:
                out.extend(item.conditions())
        return out

    def indicators(self) -> list[Indicator]:
        seen: dict[tuple[Any, ...], Indicator] = {}
        for cond in self.conditions():
            for side in (cond.left, cond.right):
                if isinstance(side, Indicator):
                    seen.setdefault((*side.key(), side.offset), side)
        return list(seen.values())

    @property
    def lookback(self) -> int:
        """Bars needed before the rule set can be true (crosses also look one bar back)."""
        need = 1
        for cond in self.conditions():
            cross = 1 if cond.op.startswith("crosses") else 0
            for side in (cond.left, cond.right):
                if isinstance(side, Indicator):
                    need = max(need, side.lookback + cross)
        return need


def _operand_json(op: Operand) -> Any:
    return op.to_json() if isinstance(op, Indicator) else op


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _int_field(raw: dict[str, Any], name: str, path: str, lo: int, hi: int) -> int | None:
    if name not in raw or raw[name] is None:
        return None
    value = raw[name]
    if not isinstance(value, int) or isinstance(value, bool):
        raise RuleError(f"{path}.{name}", f"must be a whole number, got {value!r}")
    if value < lo or value > hi:
        raise RuleError(f"{path}.{name}", f"must be between {lo} and {hi}, got {value}")
    return value


def parse_indicator(raw: Any, path: str) -> Indicator:
    if not isinstance(raw, dict):
        raise RuleError(path, "an indicator must be an object like {\"ind\": \"sma\", \"period\": 20}")
    name = raw.get("ind")
    if not isinstance(name, str) or name not in INDICATORS:
        known = ", ".join(INDICATORS)
        raise RuleError(f"{path}.ind", f"unknown indicator {name!r}; use one of: {known}")
    allowed = {"ind", "offset"}
    default_period = INDICATORS[name]
    if default_period is not None:
        allowed |= {"period"}
    if name in SOURCE_DEFAULTS:
        allowed |= {"source"}
    if name in ("bb_upper", "bb_lower"):
        allowed |= {"std"}
    extra = sorted(set(raw) - allowed)
    if extra:
        raise RuleError(f"{path}.{extra[0]}", f"'{name}' does not take '{extra[0]}'")
    period = _int_field(raw, "period", path, 1, MAX_PERIOD) if default_period is not None else None
    if default_period is not None and period is None:
        period = default_period
    if name in ("rsi", "atr") and period is not None and period < 2:
        raise RuleError(f"{path}.period", f"'{name}' needs a period of at least 2")
    offset = _int_field(raw, "offset", path, 0, MAX_OFFSET) or 0
    source = None
    if name in SOURCE_DEFAULTS:
        source = raw.get("source", SOURCE_DEFAULTS[name])
        if source not in PRICE_FIELDS:
            raise RuleError(f"{path}.source", f"must be one of {', '.join(PRICE_FIELDS)}, got {source!r}")
    std = None
    if name in ("bb_upper", "bb_lower"):
        std = raw.get("std", 2.0)
        if not _is_number(std) or not 0 < float(std) <= 10:
            raise RuleError(f"{path}.std", f"must be a number above 0 and at most 10, got {std!r}")
        std = float(std)
    return Indicator(name=name, period=period, offset=offset, source=source, std=std)


def _parse_operand(raw: Any, path: str) -> Operand:
    if _is_number(raw):
        return float(raw)
    if isinstance(raw, float):
        raise RuleError(path, f"must be a finite number, got {raw!r}")
    return parse_indicator(raw, path)


def parse_condition(raw: Any, path: str) -> Condition:
    if not isinstance(raw, dict):
        raise RuleError(path, "a condition must be an object with left, op and right")
    if "all" in raw or "any" in raw:
        raise RuleError(path, "nested rule set where a condition was expected")  # handled by caller
    for key in ("left", "op", "right"):
        if key not in raw:
            raise RuleError(f"{path}.{key}", "is required")
    extra = sorted(set(raw) - {"left", "op", "right"})
    if extra:
        raise RuleError(f"{path}.{extra[0]}", "unknown key; a condition has left, op and right")
    op = raw["op"]
    if op not in OPERATORS:
        raise RuleError(f"{path}.op", f"unknown operator {op!r}; use one of: {', '.join(OPERATORS)}")
    left = _parse_operand(raw["left"], f"{path}.left")
    right = _parse_operand(raw["right"], f"{path}.right")
    if not isinstance(left, Indicator) and not isinstance(right, Indicator):
        raise RuleError(path, "at least one side must be an indicator")
    if op.startswith("crosses") and not isinstance(left, Indicator):
        raise RuleError(f"{path}.left", f"'{op}' needs an indicator on the left")
    return Condition(left=left, op=op, right=right)


def parse_rules(raw: Any, path: str = "rules", _depth: int = 0) -> RuleSet:
    """Parse and validate a rule set; raises RuleError naming the offending path."""
    if not isinstance(raw, dict):
        raise RuleError(path, "a rule set must be an object like {\"all\": [conditions]}")
    modes = [m for m in ("all", "any") if m in raw]
    if len(modes) != 1 or len(raw) != 1:
        raise RuleError(path, "a rule set has exactly one key: 'all' or 'any'")
    if _depth >= MAX_DEPTH:
        raise RuleError(path, f"rule sets may nest at most {MAX_DEPTH} levels")
    mode = modes[0]
    items_raw = raw[mode]
    if not isinstance(items_raw, list):
        raise RuleError(f"{path}.{mode}", "must be a list of conditions")
    if not items_raw:
        raise RuleError(f"{path}.{mode}", "must not be empty")
    items: list[Condition | RuleSet] = []
    for i, item in enumerate(items_raw):
        item_path = f"{path}.{mode}[{i}]"
        if isinstance(item, dict) and ("all" in item or "any" in item):
            items.append(parse_rules(item, item_path, _depth + 1))
        else:
            items.append(parse_condition(item, item_path))
    rules = RuleSet(mode=mode, items=tuple(items))
    if _depth == 0 and len(rules.conditions()) > MAX_CONDITIONS:
        raise RuleError(path, f"at most {MAX_CONDITIONS} conditions are allowed")
    return rules
