"""The body of a backtest request and how it becomes a run: shared by `POST /api/backtest/run` and the
research jobs (a sweep's body is a backtest body plus the parameter space), so both validate and resolve
strategies, universes and windows the same way."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from backtest.runner import plan_run
from domain.errors import DomainError, NotFound
from domain.strategies import SpecError, normalize_spec
from infra.bars.universes import SYMBOL_HINT, Universe, custom_universe, is_symbol, load_universe, normalize_symbol

__all__ = ["CAPITAL_DESCRIPTION", "MAX_CAPITAL", "MIN_CAPITAL", "BacktestRequest", "InlineStrategy", "StrategyLookup",
           "prepare_run", "resolve_universe", "strategy_body"]

MAX_ID = 2**63 - 1
# the least capital (₹) a backtest, a research job or a paper/live portfolio starts with: with less a run buys
# next to nothing and its returns, drawdowns and ratios mean nothing
MIN_CAPITAL = 1000
MAX_CAPITAL = 1e12
CAPITAL_DESCRIPTION = "starting capital in ₹, from 1,000 to 10^12"
SymbolText = Annotated[str, StringConstraints(max_length=40)]  # as the watchlist's: "NSE:" and spaces allowed

# a saved strategy's row (base_model, entry_rules, exit_rules, params, name, owner_id, is_template, is_public)
StrategyLookup = Callable[[int], dict[str, Any] | None]


class InlineStrategy(BaseModel):
    """A strategy body used only for this run (validated like a saved strategy)."""

    model_config = ConfigDict(extra="ignore")

    base_model: str
    entry_rules: dict[str, Any] | None = None
    exit_rules: dict[str, Any] | None = None
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _valid(self) -> InlineStrategy:
        try:
            spec = normalize_spec(self.base_model, self.entry_rules, self.exit_rules, self.params)
        except SpecError as exc:
            raise ValueError(f"strategy.{exc}") from None
        self.entry_rules, self.exit_rules, self.params = spec.entry_rules, spec.exit_rules, spec.params
        return self


class BacktestRequest(BaseModel):
    """`strategy_id` or an inline `strategy`; `universe` or `symbols` (a custom universe)."""

    model_config = ConfigDict(extra="forbid")

    strategy_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    strategy: InlineStrategy | None = None
    universe: str | None = Field(default=None, max_length=64, description="nifty_50 or nifty_100")
    symbols: list[SymbolText] | None = Field(default=None, min_length=1, max_length=500,
                                             description="NSE trading symbols (INFY or NSE:INFY), at most 500")
    start_date: date
    end_date: date
    starting_capital: float = Field(ge=MIN_CAPITAL, le=MAX_CAPITAL, description=CAPITAL_DESCRIPTION)
    position_size_pct: float = Field(default=10.0, gt=0, le=100)
    max_positions: int = Field(default=20, ge=1, le=500)
    max_per_sector: int | None = Field(default=None, ge=1, le=500)
    slippage_bps: float = Field(default=0.0, ge=0, le=1000)
    charges: Literal["zerodha_delivery", "none"] = "zerodha_delivery"
    benchmark: str | None = Field(default=None, max_length=64, description="default: the universe's index")

    @field_validator("symbols")
    @classmethod
    def _symbols(cls, v: list[str] | None) -> list[str] | None:
        # a 422 naming the place of something that is not a symbol, never its text (as the watchlist)
        for n, raw in enumerate(v or (), start=1):
            s = normalize_symbol(raw)
            if s and not is_symbol(s):
                raise ValueError(f"symbols[{n}] is not a valid symbol: give {SYMBOL_HINT}")
        return v

    @field_validator("benchmark")
    @classmethod
    def _benchmark(cls, v: str | None) -> str | None:
        if v is not None and normalize_symbol(v) and not is_symbol(normalize_symbol(v)):  # blank: the default
            raise ValueError("benchmark is not a valid symbol: give an index such as NIFTY50 or a stock such as INFY")
        return v

    @model_validator(mode="after")
    def _one_of_each(self) -> BacktestRequest:
        return self._check_body()

    def _check_body(self) -> BacktestRequest:
        if (self.strategy_id is None) == (self.strategy is None):
            raise ValueError("give exactly one of strategy_id or strategy (an inline strategy body)")
        if self.universe is None and self.symbols is None:
            raise ValueError("give a universe (nifty_50, nifty_100) or a list of symbols")
        if self.universe is not None and self.symbols is not None:
            raise ValueError("give either universe or symbols, not both")
        return self

    def config(self) -> dict[str, Any]:
        """The engine's configuration (`BacktestConfig` fields) of this request."""
        return {
            "start_date": self.start_date.isoformat(), "end_date": self.end_date.isoformat(),
            "starting_capital": float(self.starting_capital), "position_size_pct": float(self.position_size_pct),
            "max_positions": self.max_positions, "max_per_sector": self.max_per_sector,
            "slippage_bps": float(self.slippage_bps), "charges": self.charges,
        }


def strategy_body(req: BacktestRequest, lookup: StrategyLookup, account_id: int) -> tuple[dict[str, Any], str | None]:
    """(strategy body, saved strategy's name or None); a strategy the account may not read is a 404."""
    if req.strategy is not None:
        return req.strategy.model_dump(), None
    return readable_strategy(lookup, int(req.strategy_id or 0), account_id)


def readable_strategy(lookup: StrategyLookup, strategy_id: int, account_id: int) -> tuple[dict[str, Any], str]:
    """(body, name) of a saved strategy the account may read (its own, a template or a public one), else 404."""
    row = lookup(strategy_id)
    if row is None or not (row["is_template"] or row["is_public"] or row["owner_id"] == account_id):
        raise NotFound(f"Strategy {strategy_id} not found")
    body = {k: row[k] for k in ("base_model", "entry_rules", "exit_rules", "params")}
    return body, str(row["name"])


def resolve_universe(req: BacktestRequest) -> Universe:
    try:
        if req.symbols is not None:
            return custom_universe(req.symbols)
        return load_universe(str(req.universe))
    except ValueError as exc:
        raise DomainError(str(exc)) from None


def prepare_run(data_dir: Path, req: BacktestRequest, lookup: StrategyLookup,
                account_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validate everything the worker will need (`plan_run` checks the dates); returns (worker kwargs for
    `execute_run`, normalised params as a run records them)."""
    strategy, strategy_name = strategy_body(req, lookup, account_id)
    universe = resolve_universe(req)
    config = req.config()
    plan = plan_run(data_dir, universe, req.start_date, req.end_date, strategy, config, req.benchmark)
    params = {
        "strategy_id": req.strategy_id, "strategy_name": strategy_name, "strategy": strategy,
        "universe": universe.name if req.symbols is None else None,
        "symbols": list(universe.symbols) if req.symbols is not None else None,
        "benchmark": plan.benchmark, **config,
    }
    return plan.kwargs, params
