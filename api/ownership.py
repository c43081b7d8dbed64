"""Ownership checks the routers share: another user's object is a 404, exactly as a missing one."""

from __future__ import annotations

from typing import Any

from domain.errors import NotFound
from infra.bootstrap import Platform
from projections.portfolios import get_portfolio

__all__ = ["owned_portfolio"]


def owned_portfolio(platform: Platform, portfolio_id: int, account_id: int) -> dict[str, Any]:
    with platform.db.read() as conn:
        row = get_portfolio(conn, portfolio_id)
    if row is None or row["account_id"] != account_id:
        raise NotFound(f"Portfolio {portfolio_id} not found")
    return row
