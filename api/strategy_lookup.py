"""A saved strategy's row by id, for preparing backtests and research runs (the backtest and research routers
both need it; routers never import each other)."""

from __future__ import annotations

from typing import Any

from backtest.requests import StrategyLookup
from infra.bootstrap import Platform
from projections.strategies import get_strategy

__all__ = ["strategy_lookup"]


def strategy_lookup(platform: Platform) -> StrategyLookup:
    """A saved strategy's row by id, from the strategies read model."""

    def lookup(strategy_id: int) -> dict[str, Any] | None:
        with platform.db.read() as conn:
            return get_strategy(conn, strategy_id)

    return lookup
