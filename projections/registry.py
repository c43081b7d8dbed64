"""Every read-model projection the operational database holds."""

from __future__ import annotations

from projections.accounts import AccountsProjection
from projections.audit import AuditLogProjection
from projections.backtests import BacktestRunsProjection
from projections.base import Projection
from projections.broker import BrokerProjection
from projections.family import FamilyProjection
from projections.imports import ImportsProjection
from projections.portfolios.projector import PortfoliosProjection
from projections.research import ResearchJobsProjection
from projections.risk import RiskProjection
from projections.strategies import StrategiesProjection
from projections.telegram import TelegramLinksProjection
from projections.webhooks import WebhooksProjection


def all_projections() -> list[Projection]:
    return [AccountsProjection(), StrategiesProjection(), BacktestRunsProjection(), PortfoliosProjection(),
            RiskProjection(), BrokerProjection(), ImportsProjection(), FamilyProjection(),
            WebhooksProjection(), TelegramLinksProjection(), AuditLogProjection(), ResearchJobsProjection()]
