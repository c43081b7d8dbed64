"""The watchlist's answer."""

from __future__ import annotations

from pydantic import Field

from api.public.base import Public


class WatchlistPublic(Public):
    symbols: list[str] = Field(description="EXCHANGE:SYMBOL, in the trader's order (at most 50)")
    saved: bool = Field(description="false: never changed (the starter list)")
    updated_at: str | None = Field(description="when it was last changed (UTC, ISO 8601)")
