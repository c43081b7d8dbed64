"""Paper fills on the live tick feed: `ApplyTicks` runs a paper portfolio's working GTTs (limit entries,
stop/target) against the latest ticks of the trading day it has not processed yet, through the
Portfolio's own fill model (`Portfolio.process_ticks`). The market clock's daily step for that day later
finds those orders executed and does not fill them again."""

from __future__ import annotations

from datetime import date

from commands import messages as m
from commands.handlers.portfolios import _load, now_of
from commands.uow import UnitOfWork
from domain.calendar import nse_calendar
from domain.status import PortfolioStatus


def next_session(last_day: str | None, day: str) -> bool:
    """Whether `day` is the trading day right after `last_day` (the next one the daily step processes)."""
    if last_day is None:  # not even the deployment day processed: nothing can be placed yet
        return False
    cal = nse_calendar()
    d = date.fromisoformat(day)
    return cal.is_trading_day(d) and cal.add_trading_days(date.fromisoformat(last_day), 1) == d


def apply_ticks(cmd: m.ApplyTicks, uow: UnitOfWork) -> int:
    """Returns how many orders filled (0 for a live or retired portfolio, or a day out of sequence)."""
    pf = _load(uow, cmd.portfolio_id, None)
    if pf.mode != "paper" or pf.status == PortfolioStatus.RETIRED or not next_session(pf.last_day, cmd.day):
        return 0
    filled = pf.process_ticks(cmd.day, dict(cmd.prices), now_of(uow).isoformat(), cmd.tick_time, ids=uow.ids)
    if pf.has_changes:
        uow.save(pf)
    return filled
