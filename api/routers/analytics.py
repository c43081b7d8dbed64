"""Analytics over the DuckDB/Parquet snapshots (see `infra.analytics.store`): P&L by symbol, month, year or
strategy, the trade journal, holdings (open FIFO lots with marks), the summary; corporate actions that
adjust lots (splits, bonuses)."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from fastapi import Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.analytics_access import analytics_store, market_marks
from api.deps import PageDep, PlatformDep, Reader, SessionUser, dispatch, resource_router
from api.public.analytics import (
    CorporateActionPublic,
    HoldingPublic,
    JournalRowPublic,
    PnlRowPublic,
    SummaryPublic,
)
from api.public.base import answers
from commands import imports_messages as im
from domain.errors import DomainError
from domain.imports import EARLIEST_EX_DATE, MAX_RATIO_TERM
from infra.analytics.queries import holdings, journal, pnl, summary

router = resource_router("/api/analytics", ["analytics"])

# One scope rule for every analytics read: `source` = imported (alias broker: the broker account's
# uploaded trades; the default everywhere), paper, live (model portfolios) or all.
Source = Literal["imported", "broker", "paper", "live", "all"]


def _dates(start: date | None, end: date | None) -> None:
    if start and end and end < start:
        raise DomainError("'to' is before 'from'")


@router.get("/summary", **answers(SummaryPublic),
            summary="Invested, current value, realized and unrealized P&L, charges, XIRR, win rate")
def get_summary(request: Request, user: Reader, platform: PlatformDep,
                source: Source = "imported") -> dict[str, Any]:
    """Of `source`: imported (broker) trades, paper or live model portfolios, or all. Holdings without a real
    price are listed as `unmarked` and left out of the values; unmatched sells are reported."""
    store = analytics_store(request)
    snap = store.snapshot(user.account_id)
    with store.connect([snap]) as con:
        return summary(con, market_marks(platform), source)


@router.get("/pnl", **answers(list[PnlRowPublic]), summary="Realized P&L grouped by symbol, month, year or strategy")
def get_pnl(request: Request, user: Reader,
            group_by: Literal["symbol", "month", "year", "strategy"] = "month",
            start: date | None = Query(default=None, alias="from"), end: date | None = Query(default=None, alias="to"),
            source: Source = "imported") -> list[dict[str, Any]]:
    """FIFO-matched sells between `from` and `to` (sell dates): trades, wins, values, P&L before and after
    charges."""
    _dates(start, end)
    store = analytics_store(request)
    snap = store.snapshot(user.account_id)
    with store.connect([snap], tables=["pnl_daily"]) as con:
        return pnl(con, group_by, source, start, end)


@router.get("/trades", **answers(list[JournalRowPublic]),
            summary="The trade journal: imported trades and model-portfolio fills",
            responses={200: {"headers": {"X-Total-Count": {"description": "rows matching the filters"}}}})
def get_trades(request: Request, user: Reader, page: PageDep, response: Response,
               symbol: str | None = Query(default=None, max_length=64), side: Literal["buy", "sell"] | None = None,
               strategy: str | None = Query(default=None, max_length=200), source: Source = "imported",
               start: date | None = Query(default=None, alias="from"),
               end: date | None = Query(default=None, alias="to")) -> list[dict[str, Any]]:
    """Newest first, filtered; a sell carries its FIFO P&L and holding days."""
    _dates(start, end)
    store = analytics_store(request)
    snap = store.snapshot(user.account_id)
    with store.connect([snap]) as con:
        out, total = journal(con, source=source, symbol=symbol, side=side, strategy=strategy, start=start, end=end,
                             limit=page.limit, offset=page.offset)
    response.headers["X-Total-Count"] = str(total)
    return out


@router.get("/holdings", **answers(list[HoldingPublic]),
            summary="Open FIFO lots per symbol with marks, and mutual-fund holdings")
def get_holdings(request: Request, user: Reader, platform: PlatformDep) -> list[dict[str, Any]]:
    """Equity marked at the latest real price (imported bars or the broker's), never a synthetic one; mutual
    funds at the CAS valuation."""
    store = analytics_store(request)
    snap = store.snapshot(user.account_id)
    with store.connect([snap]) as con:
        return holdings(con, market_marks(platform))


class CorporateActionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    symbol: str = Field(min_length=1, max_length=64, description="the NSE trading symbol, as the tradebook has it "
                        "(INFY, M&M, BAJAJ-AUTO): letters, digits, & . _ -, at most 30")
    ex_date: date = Field(description=f"from {EARLIEST_EX_DATE.isoformat()} to today (IST)")
    kind: Literal["split", "bonus"] = Field(description="a consolidation is a split with ratio_new < ratio_old")
    ratio_new: float = Field(ge=1, le=MAX_RATIO_TERM, description=(
        f"a whole number from 1 to {MAX_RATIO_TERM}; split: new shares per `ratio_old` old ones (a 1:10 split is "
        "10 per 1, a 10:1 consolidation 1 per 10); bonus: bonus shares per `ratio_old` held (1:1 is 1 per 1)"))
    ratio_old: float = Field(ge=1, le=MAX_RATIO_TERM, description=f"a whole number from 1 to {MAX_RATIO_TERM}")


@router.post("/corporate-actions", status_code=201, **answers(CorporateActionPublic),
             summary="Record a split or bonus so FIFO lots are adjusted (the tradebook does not carry them)")
async def corporate_action(body: CorporateActionBody, request: Request, user: SessionUser,
                           platform: PlatformDep) -> dict[str, Any]:
    """Lots bought before `ex_date` are adjusted by the ratio; the same action twice is recorded once. A ratio
    that is not whole or outside 1..1000, an ex-date in the future or before 1990, or a symbol that is not an NSE
    trading symbol is refused (400 or 422) and changes nothing."""
    cmd = im.RecordCorporateAction(user.account_id, body.symbol, body.ex_date.isoformat(), body.kind,
                                   body.ratio_new, body.ratio_old)
    result = await run_in_threadpool(dispatch, request, platform, cmd, user)
    return dict(result.value)
