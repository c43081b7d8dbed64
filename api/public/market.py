"""Market data: universes, daily bars."""

from __future__ import annotations

from pydantic import Field

from api.public.base import Number, Public


class MemberPublic(Public):
    symbol: str
    company: str
    sector: str
    isin: str


class UniversePublic(Public):
    name: str = Field(description="what `universe` takes (backtests, portfolios)")
    index_symbol: str
    index_name: str
    members: list[MemberPublic]


class BarPublic(Public):
    date: str = Field(description="YYYY-MM-DD")
    open: Number
    high: Number
    low: Number
    close: Number
    volume: Number
