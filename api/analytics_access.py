"""The analytics store of an API app and the marks it values holdings with: what the analytics, family and
uploads routers share (routers never import each other)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import Request

from api.guards import WORK_GATE
from domain.errors import DomainError
from infra.analytics.queries import Marks
from infra.analytics.store import AnalyticsStore
from infra.bootstrap import Platform

__all__ = ["analytics_store", "app_analytics_store", "market_marks"]


def analytics_store(request: Request) -> AnalyticsStore:
    return app_analytics_store(request.app)


def app_analytics_store(app: Any) -> AnalyticsStore:
    """One store per app (created at first use)."""
    store: AnalyticsStore | None = getattr(app.state, "analytics_store", None)
    if store is None:
        platform: Platform = app.state.platform
        store = AnalyticsStore(platform.db, platform.settings.analytics_dir / "accounts", gate=WORK_GATE)
        app.state.analytics_store = store
    return store


def market_marks(platform: Platform) -> Marks:
    """Latest closes (and their dates) from the bar store, when one is connected and holds REAL bars for the
    symbols (imported with `data import-csv` / `import-kite`): the synthetic demo history never values a
    user's real trades, not even its days after the last imported bar."""

    def marks(symbols: Sequence[str]) -> dict[str, tuple[float, str]]:
        try:
            market = platform.bus.deps.market
            day = market.latest_day()
            return market.real_marks(list(symbols), day) if day else {}
        except (DomainError, OSError, ValueError, KeyError):
            return {}

    return marks
