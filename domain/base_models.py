"""The catalog of base models: signal-generator families a strategy configures.

A base model supplies default entry/exit rules, an entry order type, parameter schemas with defaults,
and a conviction score 0-100 that ranks candidates when there are more than free slots (the scoring
functions live in `domain.conviction`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from domain.errors import DomainError

ENTRY_ORDERS = ("next_open", "limit")


@dataclass(frozen=True)
class Param:
    name: str
    type: str  # "string" | "integer" | "number"
    default: Any
    description: str
    minimum: float | None = None
    maximum: float | None = None
    enum: tuple[str, ...] | None = None

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "default": self.default, "description": self.description}
        if self.minimum is not None:
            out["minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        if self.enum is not None:
            out["enum"] = list(self.enum)
        return out

    def check(self, value: Any, path: str) -> Any:
        if self.type == "string":
            if not isinstance(value, str):
                raise DomainError(f"{path}: must be a string")
            if self.enum and value not in self.enum:
                raise DomainError(f"{path}: must be one of {', '.join(self.enum)}, got {value!r}")
            return value
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise DomainError(f"{path}: must be a number")
        if self.type == "integer":
            if isinstance(value, float) and not value.is_integer():
                raise DomainError(f"{path}: must be a whole number")
            value = int(value)
        else:
            value = float(value)
        if self.minimum is not None and value < self.minimum:
            raise DomainError(f"{path}: must be at least {self.minimum}, got {value}")
        if self.maximum is not None and value > self.maximum:
            raise DomainError(f"{path}: must be at most {self.maximum}, got {value}")
        return value


COMMON_PARAMS = (
    Param("entry_order", "string", "next_open",
          "next_open: market order filled at the next day's open; limit: GTT limit from the signal day's close",
          enum=ENTRY_ORDERS),
    Param("entry_validity_days", "integer", 1, "trading days an unfilled limit entry stays open", 1, 20),
    Param("limit_offset_pct", "number", 0.0,
          "limit price = signal-day close x (1 - offset%), rounded down to the tick", 0, 20),
)


@dataclass(frozen=True)
class BaseModel:
    name: str
    title: str
    description: str
    params: tuple[Param, ...]
    entry_rules: dict[str, Any]
    exit_rules: dict[str, Any]
    conviction: str  # how the score is computed, in words (shown in /api/strategies/base-models)
    default_overrides: dict[str, Any] = field(default_factory=dict)

    def all_params(self) -> tuple[Param, ...]:
        overrides = self.default_overrides
        common = tuple(
            Param(p.name, p.type, overrides.get(p.name, p.default), p.description, p.minimum, p.maximum, p.enum)
            for p in COMMON_PARAMS
        )
        return common + self.params

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.all_params()}

    def normalize_params(self, params: dict[str, Any], path: str = "params") -> dict[str, Any]:
        """Fill defaults and check every value against its schema (DomainError naming the path)."""
        known = {p.name: p for p in self.all_params()}
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise DomainError(
                f"{path}.{unknown[0]}: unknown parameter for base model '{self.name}'; "
                f"known: {', '.join(known)}"
            )
        out = self.defaults()
        for name, value in params.items():
            out[name] = known[name].check(value, f"{path}.{name}")
        return out

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "conviction": self.conviction,
            "params": {p.name: p.schema() for p in self.all_params()},
            "defaults": {
                "entry_rules": self.entry_rules,
                "exit_rules": self.exit_rules,
                "params": self.defaults(),
            },
        }


def _ind(name: str, period: int | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"ind": name}
    if period is not None:
        out["period"] = period
    out.update(extra)
    return out


def _exits(stop: float | None, target: float | None, trailing: float | None, hold: int | None,
           exit_when: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"stop_loss_pct": stop, "target_pct": target, "trailing_stop_pct": trailing,
            "max_hold_days": hold, "exit_when": exit_when}


BASE_MODELS: dict[str, BaseModel] = {
    m.name: m
    for m in (
        BaseModel(
            name="v3_dip_buyer",
            title="Dip buyer (v3)",
            description="Buys stocks in a long-term uptrend (close above the 200-day SMA) after a short-term "
            "pullback (RSI below a threshold), with a GTT limit slightly under the signal-day close.",
            params=(
                Param("rsi_period", "integer", 14, "RSI period used by the conviction score", 2, 100),
                Param("trend_period", "integer", 200, "SMA period of the trend filter used by conviction", 5, 500),
            ),
            entry_rules={"all": [
                {"left": _ind("close"), "op": ">", "right": _ind("sma", 200)},
                {"left": _ind("rsi", 14), "op": "<", "right": 35},
            ]},
            exit_rules=_exits(7, 12, None, 20),
            conviction="0.7 x (100 - RSI) (RSI 35 -> 45.5, RSI 0 -> 70), plus up to 30 for the distance of "
            "the close above the trend SMA (0 % -> 0, 20 % or more -> 30); clipped to 0-100.",
            default_overrides={"entry_order": "limit", "limit_offset_pct": 0.5},
        ),
        BaseModel(
            name="momentum_breakout",
            title="Momentum breakout",
            description="Buys a close above the highest high of the previous N days on above-average volume.",
            params=(
                Param("lookback", "integer", 55, "breakout lookback used by conviction", 5, 500),
                Param("volume_period", "integer", 20, "average-volume period used by conviction", 2, 200),
            ),
            entry_rules={"all": [
                {"left": _ind("close"), "op": ">", "right": _ind("highest", 55, offset=1)},
                {"left": _ind("volume"), "op": ">", "right": _ind("avg_volume", 20)},
            ]},
            exit_rules=_exits(8, None, 10, 60),
            conviction="50 x min(volume / average volume, 2) scaled to 0-50, plus 50 x min(breakout distance "
            "above the prior high / 5 %, 1); clipped to 0-100.",
        ),
        BaseModel(
            name="sma_crossover",
            title="SMA crossover",
            description="Buys when the fast SMA crosses above the slow SMA and exits when it crosses back below.",
            params=(
                Param("fast", "integer", 10, "fast SMA period used by conviction", 1, 500),
                Param("slow", "integer", 30, "slow SMA period used by conviction", 2, 500),
            ),
            entry_rules={"all": [
                {"left": _ind("sma", 10), "op": "crosses_above", "right": _ind("sma", 30)},
            ]},
            exit_rules=_exits(None, None, None, None, {"all": [
                {"left": _ind("sma", 10), "op": "crosses_below", "right": _ind("sma", 30)},
            ]}),
            conviction="50 + 10 x the fast SMA's percent distance above the slow SMA; clipped to 0-100.",
        ),
        BaseModel(
            name="bollinger_reversion",
            title="Bollinger reversion",
            description="Buys a close below the lower Bollinger band and exits when the close recovers above "
            "the middle band (SMA).",
            params=(
                Param("period", "integer", 20, "band period used by conviction", 2, 500),
                Param("std", "number", 2.0, "band width in standard deviations used by conviction", 0.5, 5),
            ),
            entry_rules={"all": [
                {"left": _ind("close"), "op": "<", "right": _ind("bb_lower", 20)},
            ]},
            exit_rules=_exits(6, None, None, 15, {"all": [
                {"left": _ind("close"), "op": ">", "right": _ind("sma", 20)},
            ]}),
            conviction="50 + 10 x the percent distance of the close below the lower band; clipped to 0-100.",
        ),
    )
}


def get_base_model(name: str) -> BaseModel:
    try:
        return BASE_MODELS[name]
    except KeyError:
        raise DomainError(
            f"base_model: unknown base model {name!r}; use one of: {', '.join(BASE_MODELS)}"
        ) from None
