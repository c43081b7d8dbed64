"""The watchlist: one list of symbols per account (domain.watchlist)."""

from __future__ import annotations

from commands import messages as m
from commands.handlers.portfolios import now_of
from commands.uow import UnitOfWork
from domain.watchlist import Watchlist


def set_watchlist(cmd: m.SetWatchlist, uow: UnitOfWork) -> m.WatchlistAnswer:
    """The answer is the list this command kept (its event), never the read model."""
    wl = uow.load(Watchlist, Watchlist.uuid_for(cmd.account_id)) or Watchlist.open(cmd.account_id)
    wl.account_id = cmd.account_id  # the events name the account through the aggregate id only
    if wl.replace(list(cmd.symbols), now_of(uow).isoformat()):
        uow.save(wl)
    return m.WatchlistAnswer(list(wl.symbols), wl.updated_at)
