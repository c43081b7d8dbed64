"""Parameter sweeps: a grid or a seeded random sample over strategy parameters and portfolio settings.

Parameter names (the keys of `grid` and `random`):

- portfolio settings: `position_size_pct`, `max_positions`, `max_per_sector`, `slippage_bps`;
- exits: `stop_loss_pct`, `target_pct`, `trailing_stop_pct`, `max_hold_days` (the strategy's exit rules);
- the base model's parameters by name (`rsi_period`, `entry_order`, `limit_offset_pct`, ...);
- any other number in the strategy body by its dotted path, list positions as numbers:
  `entry_rules.all.1.right` is the RSI threshold of `v3_dip_buyer` (35), `entry_rules.all.0.right.period`
  its trend SMA's period (200).

`constraints` are comparisons between parameters (or a parameter and a number), e.g. `"stop_loss_pct <
target_pct"`; combinations breaking one are left out before anything runs. The objective is one metric
(`sharpe`, `sortino`, `cagr`, `calmar`, `profit_factor`, ...) or a weighted mix `{"sharpe": 1, "calmar":
0.5, "max_drawdown": -0.1}` (the weighted sum of the metrics); a combination with fewer closed trades
than `min_trades`, or whose objective is undefined (no trades, no losses), is not eligible and ranks after
every eligible one. Ties rank by combination order, so a ranking is reproducible.
"""

from __future__ import annotations

import itertools
import math
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import Field, field_validator, model_validator

from backtest.engine import BacktestConfig, validate_config
from backtest.requests import BacktestRequest
from backtest.research import jobs
from backtest.research.worker import run_combination
from domain.base_models import get_base_model
from domain.errors import DomainError
from domain.strategies import SpecError, normalize_spec

__all__ = ["OBJECTIVES", "Combination", "Space", "Sweep", "SweepRequest", "describe_parameter", "rank_rows", "score",
           "sweep_parameters"]

CONFIG_PARAMS = ("position_size_pct", "max_positions", "max_per_sector", "slippage_bps")
EXIT_PARAMS = ("stop_loss_pct", "target_pct", "trailing_stop_pct", "max_hold_days")
INTEGER_CONFIG = ("max_positions", "max_per_sector", "max_hold_days")
OBJECTIVES = ("sharpe", "sortino", "cagr", "calmar", "profit_factor", "total_return", "expectancy", "win_rate")
MIX_METRICS = (*OBJECTIVES, "max_drawdown", "volatility", "exposure_pct", "alpha", "total_trades")
MAX_TOP_N = 10
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "<=": operator.le, ">=": operator.ge, "==": operator.eq, "!=": operator.ne, "<": operator.lt, ">": operator.gt,
}
_OPERAND = r"([A-Za-z_][\w.]*|-?\d+(?:\.\d+)?)"
_CONSTRAINT = re.compile(rf"^\s*{_OPERAND}\s*(<=|>=|==|!=|<|>)\s*{_OPERAND}\s*$")
Scalar = int | float | str | None


class SweepRequest(BacktestRequest):
    """A backtest body plus the space to search, the objective and the filters."""

    grid: dict[str, list[Scalar]] | None = Field(
        default=None, max_length=12, description="{param: [values]}: every combination (after constraints)")
    random: dict[str, Any] | None = Field(
        default=None, description="{param: [low, high], ..., samples: n, seed: s}: a seeded random sample")
    constraints: list[str] = Field(default_factory=list, max_length=20,
                                   description='comparisons such as "stop_loss_pct < target_pct"')
    objective: str | dict[str, float] = Field(default="sharpe", description="a metric or {metric: weight}")
    min_trades: int = Field(default=0, ge=0, le=100_000)
    top_n: int = Field(default=1, ge=0, le=MAX_TOP_N, description="best combinations recorded as backtest runs")

    @field_validator("grid")
    @classmethod
    def _grid(cls, v: dict[str, list[Scalar]] | None) -> dict[str, list[Scalar]] | None:
        if v is not None:
            if not v:
                raise ValueError("grid: give at least one {param: [values]}")
            for values in v.values():
                if not values or len(values) > 1000:
                    raise ValueError("grid: give each parameter 1 to 1000 values")
        return v

    @field_validator("constraints")
    @classmethod
    def _constraints(cls, v: list[str]) -> list[str]:
        for c in v:
            if len(c) > 200 or not _CONSTRAINT.match(c):
                raise ValueError("each constraint compares two parameters or a parameter and a number, "
                                 "like 'stop_loss_pct < target_pct' (operators < <= > >= == !=)")
        return v

    @staticmethod
    def _objective(v: str | dict[str, float]) -> str | dict[str, float]:
        if isinstance(v, str):
            if v not in OBJECTIVES:
                raise ValueError(f"objective: one of {', '.join(OBJECTIVES)} or a weighted mix")
        else:
            if not v or len(v) > len(MIX_METRICS):
                raise ValueError("a weighted objective needs at least one {metric: weight}")
            for name, weight in v.items():
                if name not in MIX_METRICS:
                    raise ValueError(f"objective: a weighted objective's keys are metrics: {', '.join(MIX_METRICS)}")
                if not math.isfinite(weight):
                    raise ValueError("objective: weights must be finite numbers")
        return v

    @model_validator(mode="after")
    def _space(self) -> SweepRequest:
        # checked on the whole body, not as a field: a 422 then names the field without showing the value
        self._objective(self.objective)
        if (self.grid is None) == (self.random is None):
            raise ValueError("give exactly one of grid ({param: [values]}) or random ({param: [low, high], "
                             "samples, seed})")
        if self.random is not None:
            _parse_random(self.random)
        return self


def _parse_random(spec: dict[str, Any]) -> tuple[dict[str, tuple[float, float, bool]], int, int]:
    samples, seed = spec.get("samples"), spec.get("seed", 0)
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ValueError("random.samples must be a whole number of combinations, at least 1")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ValueError("random.seed must be a whole number from 0 to 4294967295")
    ranges: dict[str, tuple[float, float, bool]] = {}
    for name, bounds in spec.items():
        if name in ("samples", "seed"):
            continue
        ok = (isinstance(bounds, list) and len(bounds) == 2
              and all(isinstance(b, int | float) and not isinstance(b, bool) and math.isfinite(b) for b in bounds))
        if not ok or bounds[0] > bounds[1]:
            raise ValueError("random: give each parameter [low, high] numbers with low <= high")
        ranges[name] = (float(bounds[0]), float(bounds[1]), all(isinstance(b, int) for b in bounds))
    if not ranges:
        raise ValueError("random: give at least one {param: [low, high]}")
    if len(ranges) > 12:
        raise ValueError("random: at most 12 parameters")
    return ranges, samples, seed


# ---------------------------------------------------------------- the space


def _set_path(body: dict[str, Any], path: str, value: Any, label: str) -> None:
    """Set the number at a dotted path of the strategy body; `label` names the parameter in an error
    (its place in the request: the path is the caller's text, never echoed)."""
    parts = path.split(".")
    node: Any = body
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        key = _step(node, part)
        if key is None:
            raise DomainError(f"{label}: its dotted path does not lead to a value of the strategy (step {i + 1} "
                              f"is not there)")
        if last:
            node[key] = value
        else:
            node = node[key]


@dataclass(frozen=True)
class Combination:
    index: int
    params: dict[str, Any]
    strategy: dict[str, Any]
    config: dict[str, Any]


class Space:
    """Turns parameter values into (strategy body, engine config) pairs, checked like a backtest's."""

    def __init__(self, base: jobs.BasePlan, field: str = "grid") -> None:
        self.base = base
        self.field = field  # grid or random: where the parameters are named in the request
        model = get_base_model(base.strategy["base_model"])
        self.model_params = {p.name for p in model.params}
        self.integer_params = {p.name for p in model.params if p.type == "integer"}

    def label(self, position: int) -> str:
        return f"{self.field}: parameter {position + 1}"

    def where(self, name: str, position: int = 0) -> str:
        if name in CONFIG_PARAMS:
            return "config"
        if name in EXIT_PARAMS:
            return "exit"
        if name in self.model_params:
            return "param"
        if "." in name and name.split(".", 1)[0] in ("entry_rules", "exit_rules", "params"):
            return "path"
        raise DomainError(f"{self.label(position)} is not a sweep parameter: use a portfolio setting "
                          f"({', '.join(CONFIG_PARAMS)}), "
                          f"an exit ({', '.join(EXIT_PARAMS)}), a parameter of {self.base.strategy['base_model']} "
                          f"({', '.join(sorted(self.model_params))}) or a dotted path into the strategy such as "
                          f"entry_rules.all.1.right")

    def describe(self, name: str) -> str:
        """A swept parameter in words: see `describe_parameter`."""
        return describe_parameter(self.base.strategy, name)

    def is_integer(self, name: str) -> bool:
        if name in INTEGER_CONFIG or name in self.integer_params:
            return True
        return name.endswith(".period")

    def build(self, index: int, values: dict[str, Any]) -> Combination:
        strategy = {k: _copy(v) for k, v in self.base.strategy.items()}
        strategy["exit_rules"] = dict(strategy.get("exit_rules") or {})
        strategy["params"] = dict(strategy.get("params") or {})
        config = dict(self.base.config)
        for position, (name, value) in enumerate(values.items()):
            where = self.where(name, position)
            if where == "config":
                config[name] = value
            elif where == "exit":
                strategy["exit_rules"][name] = value
            elif where == "param":
                strategy["params"][name] = value
            else:
                _set_path(strategy, name, value, self.label(position))
        try:
            spec = normalize_spec(strategy["base_model"], strategy["entry_rules"], strategy["exit_rules"],
                                  strategy["params"])
            validate_config(BacktestConfig(**config))
        except (SpecError, DomainError, TypeError) as exc:
            detail = exc.detail if isinstance(exc, DomainError) else str(exc)
            raise DomainError(f"combination {index + 1} (in {self.field} order): {detail}") from None
        return Combination(index, dict(values), spec.to_json(), config)


def describe_parameter(strategy: dict[str, Any], name: str) -> str:
    """A sweep parameter as a trader reads it in a table header or on a heatmap's axis: `stop loss %`,
    `max positions`, and for a dotted path the rule it changes with the swept value as x (`entry: rsi(14)
    < x`, `entry: close > sma(x)`). The name itself when the path is not inside a rule."""
    if name in SETTING_LABELS:
        return SETTING_LABELS[name]
    if "." not in name:
        return _words(name)
    parts = name.split(".")
    node: Any = strategy
    for j, part in enumerate(parts):
        if isinstance(node, dict) and "op" in node and "left" in node:  # a condition: the rest is its side
            return _condition_text("entry" if parts[0] == "entry_rules" else "exit", node, parts[j:])
        key = _step(node, part)
        if key is None:
            break
        node = node[key]
    return name


def _step(node: Any, part: str) -> int | str | None:
    """The key one step of a dotted path takes into `node` (a list position or a dict key), None if not there."""
    if isinstance(node, list) and part.isdigit() and int(part) < len(node):
        return int(part)
    if isinstance(node, dict) and part in node:
        return part
    return None


def sweep_parameters(strategy: dict[str, Any]) -> list[dict[str, Any]]:
    """What a sweep of `strategy` (a normalized strategy body) can vary, each `{name, label, value}` (`value`: the
    strategy's own, None for a portfolio setting, which the request gives): the portfolio settings, the exits,
    the base model's parameters, and every number in its rules (a threshold, an indicator's period) by its
    dotted path."""
    out = [{"name": n, "label": SETTING_LABELS[n], "value": None} for n in CONFIG_PARAMS]
    exits = strategy.get("exit_rules") or {}
    out += [{"name": n, "label": SETTING_LABELS[n], "value": exits.get(n)} for n in EXIT_PARAMS]
    params = strategy.get("params") or {}
    out += [{"name": p.name, "label": _words(p.name), "value": params.get(p.name, p.default)}
            for p in get_base_model(strategy["base_model"]).params]
    paths: list[tuple[str, Any]] = []

    def number(v: Any) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool)

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict) and "op" in node and "left" in node:
            for side in ("left", "right"):
                operand = node[side]
                if number(operand):
                    paths.append((f"{path}.{side}", operand))
                elif isinstance(operand, dict):
                    paths.extend((f"{path}.{side}.{k}", operand[k]) for k in ("period", "offset", "std")
                                 if number(operand.get(k)))
        elif isinstance(node, dict):
            for key in ("all", "any"):
                for i, child in enumerate(node.get(key) or []):
                    walk(child, f"{path}.{key}.{i}")

    walk(strategy.get("entry_rules"), "entry_rules")
    if exits.get("exit_when"):
        walk(exits["exit_when"], "exit_rules.exit_when")
    out += [{"name": n, "label": describe_parameter(strategy, n), "value": v} for n, v in paths]
    return out


SETTING_LABELS = {
    "position_size_pct": "position size %", "max_positions": "max positions", "max_per_sector": "max per sector",
    "slippage_bps": "slippage (bps)", "stop_loss_pct": "stop loss %", "target_pct": "target %",
    "trailing_stop_pct": "trailing stop %", "max_hold_days": "max hold (days)",
}


def _words(name: str) -> str:
    """`limit_offset_pct` -> `limit offset %`."""
    return name.removesuffix("_pct").replace("_", " ") + (" %" if name.endswith("_pct") else "")


def _condition_text(kind: str, cond: dict[str, Any], rest: list[str]) -> str:
    """`entry: rsi(14) < x`: the condition with the swept side (`rest[0]`) or its field (`rest[1]`) as x."""
    sides = []
    for side in ("left", "right"):
        swept = rest[0] == side
        field = rest[1] if swept and len(rest) > 1 else None
        sides.append("x" if swept and field is None else _operand_text(cond[side], field if swept else None))
    return f"{kind}: {sides[0]} {str(cond['op']).replace('_', ' ')} {sides[1]}"


def _operand_text(raw: Any, swept: str | None) -> str:
    if not isinstance(raw, dict):
        return f"{raw:g}" if isinstance(raw, int | float) else str(raw)
    def get(key: str) -> Any:
        return "x" if swept == key else raw.get(key)
    args = [str(v) for v in (get("period"), get("std")) if v is not None]
    text = f"{raw.get('ind')}({', '.join(args)})" if args else str(raw.get("ind"))
    if raw.get("source") not in (None, "close") or swept == "source":
        text += f" of {get('source')}"
    offset = get("offset")
    return text + (f"[-{offset}]" if offset else "")


def _copy(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _copy(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_copy(x) for x in v]
    return v


def _constraint_fn(text: str) -> tuple[set[str], Callable[[dict[str, Any]], bool]]:
    m = _CONSTRAINT.match(text)
    assert m is not None
    left, op, right = m.group(1), _OPS[m.group(2)], m.group(3)

    def side(token: str, values: dict[str, Any]) -> Any:
        if token in values:
            return values[token]
        return float(token)

    names = {t for t in (left, right) if not re.match(r"^-?\d", t)}

    def check(values: dict[str, Any]) -> bool:
        a, b = side(left, values), side(right, values)
        if a is None or b is None:
            return True  # an unset limit (max_per_sector null) constrains nothing
        return bool(op(a, b))

    return names, check


def expand(req: SweepRequest, space: Space, limit: int) -> list[dict[str, Any]]:
    """The parameter values of every combination, constraints applied, in a reproducible order."""
    names = list(req.grid or {}) if req.grid is not None else [n for n in (req.random or {}) if n not in
                                                                   ("samples", "seed")]
    for position, name in enumerate(names):
        space.where(name, position)
    checks = []
    for position, text in enumerate(req.constraints):
        used, fn = _constraint_fn(text)
        if used - set(names) - set(CONFIG_PARAMS):
            raise DomainError(f"constraints: constraint {position + 1} names something that is neither a swept "
                              f"parameter nor a portfolio setting")
        checks.append(fn)

    def fixed(values: dict[str, Any]) -> dict[str, Any]:
        return {**{k: space.base.config[k] for k in CONFIG_PARAMS}, **values}

    out: list[dict[str, Any]] = []
    if req.grid is not None:
        size = math.prod(len(v) for v in req.grid.values())
        if size > limit * 100:
            raise DomainError(f"the grid has {size:,} combinations; at most {limit:,} per job: narrow it")
        for combo in itertools.product(*req.grid.values()):
            values = dict(zip(names, combo, strict=True))
            if all(c(fixed(values)) for c in checks):
                out.append(values)
    else:
        ranges, samples, seed = _parse_random(req.random or {})
        if samples > limit:
            raise DomainError(f"random.samples is {samples:,}; at most {limit:,} combinations per job")
        rng = np.random.default_rng(seed)
        seen: set[tuple[Any, ...]] = set()
        attempts = 0
        while len(out) < samples and attempts < samples * 20:
            attempts += 1
            values = {}
            for name, (lo, hi, ints) in ranges.items():
                if ints or space.is_integer(name):
                    values[name] = int(rng.integers(math.ceil(lo), math.floor(hi) + 1))
                else:
                    values[name] = round(float(rng.uniform(lo, hi)), 4)
            key = tuple(values.values())
            if key in seen or not all(c(fixed(values)) for c in checks):
                continue
            seen.add(key)
            out.append(values)
    if not out:
        raise DomainError("no combination satisfies the constraints")
    if len(out) > limit:
        raise DomainError(f"the sweep has {len(out):,} combinations after constraints; at most {limit:,} per job")
    return out


# ---------------------------------------------------------------- the objective and the ranking


def score(metrics: dict[str, Any], objective: str | dict[str, float]) -> float | None:
    """The objective's value, or None when a metric it needs is undefined."""
    weights = {objective: 1.0} if isinstance(objective, str) else objective
    total = 0.0
    for name, weight in weights.items():
        value = metrics.get(name)
        if value is None or not isinstance(value, int | float) or not math.isfinite(value):
            return None
        total += weight * float(value)
    return round(total, 6)


def rank_rows(combos: Sequence[Combination], metrics: Sequence[dict[str, Any]], objective: str | dict[str, float],
              min_trades: int) -> list[dict[str, Any]]:
    """Every combination's row, best first: eligible ones by objective (ties by combination order), then
    the rest in combination order."""
    rows = []
    for combo, m in zip(combos, metrics, strict=True):
        value = score(m, objective)
        eligible = value is not None and int(m.get("total_trades") or 0) >= min_trades
        rows.append({"index": combo.index, "params": combo.params, "objective": value, "eligible": eligible,
                     "metrics": m})
    def order(r: dict[str, Any]) -> tuple[int, float, int]:
        return (0, -float(r["objective"]), r["index"]) if r["eligible"] else (1, 0.0, r["index"])

    rows.sort(key=order)
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank
    return rows


# ---------------------------------------------------------------- the job kind


@dataclass
class SweepPayload:
    base: jobs.BasePlan
    combos: list[Combination]
    objective: str | dict[str, float]
    min_trades: int
    top_n: int


class Sweep(jobs.ResultsTable):
    name = "sweep"
    route = "sweeps"
    request_model = SweepRequest

    def plan(self, ctx: jobs.PlanContext, req: SweepRequest) -> jobs.JobPlan:
        base = jobs.base_plan(ctx, req)
        space = Space(base, "grid" if req.grid is not None else "random")
        values = expand(req, space, ctx.max_combinations)
        combos = [space.build(i, v) for i, v in enumerate(values)]
        params = {**base.params, "grid": req.grid, "random": req.random, "constraints": req.constraints,
                  "objective": req.objective, "min_trades": req.min_trades, "top_n": req.top_n,
                  "combinations": len(combos), "labels": {name: space.describe(name) for name in combos[0].params}}
        payload = SweepPayload(base, combos, req.objective, req.min_trades, req.top_n)
        return jobs.JobPlan(params, len(combos), payload, base.data)

    def run(self, ctx: jobs.RunContext, plan: jobs.JobPlan) -> jobs.JobOutcome:
        p: SweepPayload = plan.payload
        shared = ctx.data(p.base.data)

        def partial(got: dict[int, Any]) -> jobs.Tables:
            done = sorted(got)
            return {"results": rank_rows([p.combos[i] for i in done], [got[i] for i in done], p.objective,
                                         p.min_trades)}

        metrics = ctx.map(run_combination, shared, [(c.strategy, c.config) for c in p.combos], partial)
        rows = rank_rows(p.combos, metrics, p.objective, p.min_trades)
        best = [r for r in rows if r["eligible"]][:p.top_n]
        by_index = {c.index: c for c in p.combos}
        summary = {"combinations": len(rows), "eligible": sum(1 for r in rows if r["eligible"]),
                   "objective": p.objective, "best": rows[0] if rows and rows[0]["eligible"] else None}
        return jobs.JobOutcome(summary, {"results": rows},
                          [(by_index[r["index"]].strategy, by_index[r["index"]].config) for r in best])


SWEEP = jobs.register(Sweep())
