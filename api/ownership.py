"""Where the caller's objects are, as the routers ask it: another user's object is a 404, exactly as a
missing one.

- `OwnedPortfolio`, `PathPortfolio`: the caller's portfolio named by the `portfolio_id` query or path parameter
  (its read-model row).
- `PositionHome`: the portfolio holding the caller's position named by the `position_id` path parameter, or
  None when the caller has no such position: the route answers the 404 itself, after FastAPI has validated the
  body (a dependency that raised would answer 404 before a malformed body's 422).
- `Homes`: the process's `SignalHomes`, which remembers each signal's portfolio (a signal never moves) and
  sends a signal's command there, looking it up again when the remembered home was wrong.
A signal or position the read models do not show yet is found in the account's stored portfolios.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query, Request

from api.deps import IdPath, PlatformDep, Reader, SessionUser
from api.guards import MAX_ID
from domain.errors import NotFound
from domain.portfolio.aggregate import Portfolio
from domain.risk import RiskBook
from infra.bootstrap import Platform
from projections.portfolios.queries import get_portfolio, get_position, get_signal

__all__ = ["Homes", "OwnedPortfolio", "PathPortfolio", "PositionHome", "SignalHomes", "owned_portfolio", "signal_home",
           "stored_portfolios"]

R = TypeVar("R")


def owned_portfolio(platform: Platform, portfolio_id: int, account_id: int) -> dict[str, Any]:
    with platform.db.read() as conn:
        row = get_portfolio(conn, portfolio_id)
    if row is None or row["account_id"] != account_id:
        raise NotFound(f"Portfolio {portfolio_id} not found")
    return row


def _owned_portfolio(user: Reader, platform: PlatformDep,
                     portfolio_id: int = Query(ge=1, le=MAX_ID)) -> dict[str, Any]:
    return owned_portfolio(platform, portfolio_id, user.account_id)


def _path_portfolio(portfolio_id: IdPath, user: Reader, platform: PlatformDep) -> dict[str, Any]:
    return owned_portfolio(platform, portfolio_id, user.account_id)


OwnedPortfolio = Annotated[dict[str, Any], Depends(_owned_portfolio)]
PathPortfolio = Annotated[dict[str, Any], Depends(_path_portfolio)]


def stored_portfolios(platform: Platform, account_id: int) -> list[tuple[int, str, set[int], set[int]]]:
    """(id, status, entry signal ids, position ids) of the account's portfolios as their events say,
    newest first: for requests naming an object the read model may not show yet."""
    with platform.store.reading(RiskBook, RiskBook.uuid_for(account_id)) as book:
        ids = sorted(book.portfolios, reverse=True) if book is not None else []
    out: list[tuple[int, str, set[int], set[int]]] = []
    for pid in ids:
        with platform.store.reading(Portfolio, Portfolio.uuid_for(pid)) as pf:
            if pf is not None and pf.account_id == account_id:
                out.append((pid, pf.status, set(pf.signals), set(pf.positions)))
    return out


def signal_home(platform: Platform, signal_id: int, account_id: int) -> int:
    """The portfolio of the caller's signal: the read model, else the account's stored portfolios (a signal
    generated while the projections are behind)."""
    with platform.db.read() as conn:
        row = get_signal(conn, signal_id)
    if row is not None:
        if row["account_id"] != account_id:
            raise NotFound(f"Signal {signal_id} not found")
        return int(row["portfolio_id"])
    for pid, _, signal_ids, _ in stored_portfolios(platform, account_id):
        if signal_id in signal_ids:
            return pid
    raise NotFound(f"Signal {signal_id} not found")


def _position_home(position_id: IdPath, user: SessionUser, platform: PlatformDep) -> int | None:
    """The portfolio of the caller's position: the read model, else the account's stored portfolios (a
    position opened while the projections are behind); None if the caller has no such position."""
    with platform.db.read() as conn:
        row = get_position(conn, position_id)
    if row is not None:
        return int(row["portfolio_id"]) if row["account_id"] == user.account_id else None
    for pid, _, _, position_ids in stored_portfolios(platform, user.account_id):
        if position_id in position_ids:
            return pid
    return None


PositionHome = Annotated[int | None, Depends(_position_home)]


class SignalHomes:
    """The portfolio and account of each signal read before (a signal never moves): spares approve,
    reject and expire the read-model query that finds the portfolio. Only a routing hint: the command
    still loads that portfolio as the caller's and finds the signal in it, or it is a 404."""

    def __init__(self, size: int = 200_000) -> None:
        self.size = size
        self._homes: dict[int, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def learn(self, rows: Iterable[dict[str, Any]]) -> None:
        with self._lock:
            if len(self._homes) >= self.size:
                self._homes.clear()
            for r in rows:
                self._homes[int(r["id"])] = (int(r["portfolio_id"]), int(r["account_id"]))

    def get(self, signal_id: int) -> tuple[int, int] | None:
        return self._homes.get(signal_id)

    def forget(self, signal_id: int) -> None:
        with self._lock:
            self._homes.pop(signal_id, None)

    def send(self, signal_id: int, account_id: int, locate: Callable[[], int],
             command: Callable[[int], R]) -> tuple[int, R]:
        """(portfolio, `command`'s answer) for the caller's signal: sent to the remembered portfolio, else to
        the one `locate` finds; a remembered home the command does not find the signal in (a store restored
        from a backup) is forgotten and the signal looked up again, once."""
        home = self.get(signal_id)
        if home is not None:
            if home[1] != account_id:
                raise NotFound(f"Signal {signal_id} not found")
            try:
                return home[0], command(home[0])
            except NotFound:
                self.forget(signal_id)
        portfolio_id = locate()
        return portfolio_id, command(portfolio_id)


def _signal_homes(request: Request) -> SignalHomes:
    homes: SignalHomes = request.app.state.signal_homes
    return homes


Homes = Annotated[SignalHomes, Depends(_signal_homes)]
