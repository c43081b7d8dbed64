"""Every read-model projection the operational database holds."""

from __future__ import annotations

from projections.accounts import AccountsProjection
from projections.backtests import BacktestRunsProjection
from projections.base import Projection
from projections.portfolios import PortfoliosProjection
from projections.risk import RiskProjection
from projections.strategies import StrategiesProjection


def all_projections() -> list[Projection]:
    return [AccountsProjection(), StrategiesProjection(), BacktestRunsProjection(), PortfoliosProjection(),
            RiskProjection()]
