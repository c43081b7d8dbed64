"""Market data: the built-in universes, stored daily bars, and the NSE trading calendar."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import HTTPException, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.deps import PlatformDep, Reader, resource_router
from api.errors import schema_error
from api.public.base import answers
from api.public.market import BarPublic, UniversePublic
from domain.calendar import nse_calendar
from domain.market_hours import IST
from infra.bars.store import BarStore
from infra.bars.universes import is_symbol, list_universes, normalize_symbol

router = resource_router(tags=["market data"])

MAX_CALENDAR_DAYS = 366 * 30

FromQ = Annotated[date | None, Query(alias="from", description="first day, YYYY-MM-DD (inclusive)")]
ToQ = Annotated[date | None, Query(alias="to", description="last day, YYYY-MM-DD (inclusive)")]


EARLIEST, LATEST = date(1900, 1, 1), date(2199, 12, 31)  # beyond these no day can be a trading day


def _check_range(start: date | None, end: date | None) -> None:
    for name, day in (("from", start), ("to", end)):
        if day is not None and not EARLIEST <= day <= LATEST:
            raise schema_error(("query", name), f"'{name}' must be between {EARLIEST.isoformat()} and "
                                                 f"{LATEST.isoformat()}")
    if start is not None and end is not None and start > end:
        raise HTTPException(400, f"'from' {start.isoformat()} is after 'to' {end.isoformat()}; swap them")


@router.get("/api/universes", **answers(list[UniversePublic]),
            summary="Built-in universes with their members and sectors")
def universes(user: Reader) -> list[dict[str, Any]]:
    """Each universe's name (what backtests and portfolios take as `universe`), its index and its members with
    company, sector and ISIN."""
    return [{
        "name": u.name,
        "index_symbol": u.index_symbol,
        "index_name": u.index_name,
        "members": [{"symbol": m.symbol, "company": m.company, "sector": m.sector, "isin": m.isin}
                    for m in u.members],
    } for u in list_universes()]


def _bars(data_dir: Any, symbol: str, start: date | None, end: date | None) -> list[dict[str, Any]] | None:
    store = BarStore(data_dir)
    try:
        rows = store.read_symbol(symbol, start, end)
    except KeyError:
        return None
    return [{"date": r["date"].isoformat(), "open": r["open"], "high": r["high"], "low": r["low"],
             "close": r["close"], "volume": r["volume"]} for r in rows]


class Coverage(BaseModel):
    first: date | None = Field(description="first stored trading day (null: no bars yet)")
    last: date | None = Field(description="last stored trading day; backtests may end here at the latest")
    symbols: int = Field(description="how many symbols have bars")


def _coverage(data_dir: Any) -> Coverage:
    store = BarStore(data_dir)
    if store.is_empty():
        return Coverage(first=None, last=None, symbols=0)
    return Coverage(first=store.first_date(), last=store.last_date(), symbols=len(store.symbols()))


@router.get("/api/market/coverage", response_model=Coverage,
            summary="The stored bar history: first and last day, symbol count (the dates a backtest may use)")
async def coverage(user: Reader, platform: PlatformDep) -> Coverage:
    """What the bar store holds: a backtest or scan can use the days between `first` and `last`."""
    return await run_in_threadpool(_coverage, platform.settings.data_dir)


@router.get("/api/market/bars/{symbol}", **answers(list[BarPublic]),
            summary="Stored daily OHLCV (split/bonus adjusted) of one symbol")
async def bars(symbol: str, user: Reader, platform: PlatformDep, start: FromQ = None,
               end: ToQ = None) -> list[dict[str, Any]]:
    """Oldest first, between `from` and `to` (inclusive; both optional). `symbol` is `INFY` or `NSE:INFY`;
    a symbol with no stored bars is a 404 (naming it only when it is of the NSE symbol form)."""
    _check_range(start, end)
    name = normalize_symbol(symbol)
    rows = await run_in_threadpool(_bars, platform.settings.data_dir, name, start, end)
    if rows is None:
        if is_symbol(name):
            raise HTTPException(404, f"No bars stored for {name}")
        # errors never echo input: a path that is no symbol (any length, any characters) is not shown back
        raise HTTPException(404, "No bars stored: not a valid symbol (an NSE trading symbol such as INFY or an "
                                 "index such as NIFTY50)")
    return rows


@router.get("/api/market/calendar", summary="NSE trading days between 'from' and 'to' (default: the last 30 days)")
def calendar(user: Reader, start: FromQ = None, end: ToQ = None) -> list[str]:
    """Trading days (YYYY-MM-DD, oldest first), weekends and NSE holidays left out; at most 30 years at once."""
    _check_range(start, end)
    last = end or datetime.now(IST).date()
    first = start or max(EARLIEST, last - timedelta(days=30))
    _check_range(first, last)
    if (last - first).days > MAX_CALENDAR_DAYS:
        raise HTTPException(400, "Ask for at most 30 years of trading days at a time")
    return [d.isoformat() for d in nse_calendar().trading_days(first, last)]
