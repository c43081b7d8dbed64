"""The Market page's watchlist, kept with the account (the phone and the desktop show the same list)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from api.deps import PlatformDep, Reader, SessionUser, dispatch, resource_router
from api.public.base import answers
from api.public.watchlist import WatchlistPublic
from commands import messages as m
from domain.errors import DomainError
from domain.watchlist import MAX_SYMBOLS, STARTER, normalize_symbols
from projections.accounts import watchlist_of

router = resource_router("/api/watchlist", ["market data"])


class WatchlistBody(BaseModel):
    """The whole list (a PUT replaces it)."""

    model_config = ConfigDict(extra="forbid")

    symbols: list[Annotated[str, StringConstraints(max_length=40)]] = Field(max_length=MAX_SYMBOLS, description=(
        f"at most {MAX_SYMBOLS}: EXCHANGE:SYMBOL on NSE or BSE (a bare symbol means NSE), e.g. NSE:INFY, "
        "BSE:M&M; kept upper-cased, each once, in this order"))

    @field_validator("symbols")
    @classmethod
    def _symbols(cls, symbols: list[str]) -> list[str]:
        try:
            return normalize_symbols(symbols)
        except DomainError as exc:
            raise ValueError(exc.detail) from None


@router.get("", **answers(WatchlistPublic), summary="Your watchlist")
def get_watchlist(user: Reader, platform: PlatformDep) -> dict[str, Any]:
    """The symbols in your order; until you change it, a starter list (`saved: false`)."""
    with platform.db.read() as conn:
        found = watchlist_of(conn, user.account_id)
    if found is None:
        return {"symbols": list(STARTER), "saved": False, "updated_at": None}
    return {"symbols": found[0], "saved": True, "updated_at": found[1]}


@router.put("", **answers(WatchlistPublic), summary="Replace your watchlist")
def put_watchlist(body: WatchlistBody, request: Request, user: SessionUser, platform: PlatformDep) -> dict[str, Any]:
    """A symbol that is not one is a 422 naming its place in the list. The answer is the list kept (normalized)."""
    done: m.WatchlistAnswer = dispatch(request, platform, m.SetWatchlist(user.account_id, tuple(body.symbols)),
                                       user).value
    return {"symbols": done.symbols, "saved": True, "updated_at": done.updated_at}
