"""Compact reads of the web app's first screens (API "Overview"): Home and a portfolio's dashboard, each in
one answer instead of a round of six or two requests. Every part is exactly what its own endpoint answers
(named in the models below), read in one transaction; scripts may use these too.

The answers are written with `json.dumps` straight from the read-model rows (dates as ISO 8601), skipping
FastAPI's generic encoder: on a dashboard with 20 positions that encoder cost more than the reads."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time
from typing import Any

from fastapi import Query
from pydantic import BaseModel, Field
from starlette.responses import Response

from api.dashboard import portfolio_dashboard
from api.deps import PlatformDep, Reader, resource_router
from api.ownership import PathPortfolio
from api.public.base import Public, answers
from api.public.portfolios import ActivityPublic, DashboardPublic, PortfolioPublic, SignalPublic
from api.public.risk import RiskStatePublic
from api.risk_state import risk_state
from api.schemas import AgentKeyPublic, BrokerStatus
from domain.market_hours import IST
from projections.broker import broker_status
from projections.joined import signals_with_fills
from projections.portfolios.queries import account_activity, list_portfolios

router = resource_router("/api/overview", ["overview"])

class HomeOverview(Public):
    """Home's first screen."""

    portfolios: list[PortfolioPublic] = Field(description="your active and paused portfolios, as "
                                                          "`GET /api/model/portfolios`")
    pending: list[SignalPublic] = Field(description="signals waiting for your approval, as `GET /api/model/signals"
                                                    "?status=pending_approval` (the first `pending_limit`)")
    pending_total: int = Field(description="how many signals wait in all")
    risk: RiskStatePublic = Field(description="today's risk picture, as `GET /api/risk/state`")
    broker: BrokerStatus = Field(description="the Kite session, as `GET /api/auth/status`")
    agent: AgentKeyPublic | None = Field(description="the agent key, as `GET /api/auth/agent-key`; null when there "
                                                     "is none (or the caller is the agent key itself)")
    activity: list[ActivityPublic] = Field(description="what happened in your portfolios since midnight IST, "
                                                       "newest first, as `GET /api/model/activity?since=<today>"
                                                       "T00:00:00+05:30`")


class PortfolioOverview(Public):
    """A portfolio's dashboard and its recent signals."""

    dashboard: DashboardPublic = Field(description="as `GET /api/model/dashboard?portfolio_id=`")
    signals: list[SignalPublic] = Field(description="its newest signals, as `GET /api/model/signals?portfolio_id=` "
                                                    "(the first `signals_limit`)")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, bytes | bytearray | memoryview):
        raise TypeError("binary values are not part of a read-model row")
    return float(value)  # Decimal from Postgres numeric columns


def _json(body: dict[str, Any]) -> Response:
    text = json.dumps(body, default=_plain, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return Response(text, media_type="application/json")


def _ist_midnight_utc() -> str:
    today = datetime.now(UTC).astimezone(IST).date()
    return datetime.combine(today, time.min, IST).astimezone(UTC).isoformat()


@router.get("/home", **answers(HomeOverview), summary="Home in one answer: portfolios, pending approvals, "
                                                            "risk, broker and agent, today's activity")
def home(user: Reader, platform: PlatformDep,
         pending_limit: int = Query(default=20, ge=1, le=100),
         activity_limit: int = Query(default=20, ge=1, le=200)) -> Response:
    """What the web app's Home shows first, in one answer: every part equals the answer of the endpoint its field
    names (portfolios, pending approvals and how many wait, today's risk, the Kite session, the agent key,
    the activity since midnight IST)."""
    risk = risk_state(platform, user.account_id)
    with platform.db.read() as conn:
        portfolios, _ = list_portfolios(conn, user.account_id, None, 500, 0)
        pending, total = signals_with_fills(conn, user.account_id, status="pending_approval", limit=pending_limit,
                                            offset=0)
        broker = BrokerStatus(**broker_status(conn, user.account_id))
        activity = account_activity(conn, user.account_id, _ist_midnight_utc(), activity_limit)
    agent = None
    info = platform.security.agent_key_info(user.account_id) if user.via == "session" else None
    if info is not None:
        agent = AgentKeyPublic(prefix=info.prefix, created_at=datetime.fromtimestamp(info.created_at, UTC),
                               last_used_at=None if info.last_used_at is None
                               else datetime.fromtimestamp(info.last_used_at, UTC))
    return _json({"portfolios": portfolios, "pending": pending, "pending_total": total, "risk": risk,
                  "broker": broker, "agent": agent, "activity": activity})


@router.get("/portfolios/{portfolio_id}", **answers(PortfolioOverview),
            summary="A portfolio's dashboard and its newest signals in one answer")
def portfolio(pf: PathPortfolio, user: Reader, platform: PlatformDep,
              signals_limit: int = Query(default=50, ge=1, le=200)) -> Response:
    """A portfolio's dashboard (as `GET /api/model/dashboard`) and its newest signals (as
    `GET /api/model/signals?portfolio_id=`) in one answer; another user's portfolio is a 404."""
    portfolio_id = int(pf["id"])
    board = portfolio_dashboard(platform, user.account_id, pf)
    with platform.db.read() as conn:
        signals, _ = signals_with_fills(conn, user.account_id, portfolio_id=portfolio_id, limit=signals_limit,
                                        offset=0)
    return _json({"dashboard": board, "signals": signals})
