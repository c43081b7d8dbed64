"""The market clock: what happens to model portfolios as trading days pass.

For each stored trading day a portfolio has not processed yet, in order: `RunPortfolioDay` (the
paper broker's fills and exits on that day's bars, marks, exit signals, the after-close scan), then
per account `CheckDailyLoss` (the kill switch). The scheduler calls `run_due` after the close;
`tradertape sim advance` calls it after appending synthetic days; `POST /api/model/scan` calls
`advance_portfolio` for one portfolio. `expire_overdue` expires signals past their `expires_at`.

Every step is a command (recorded as events with the actor `scheduler`), idempotent per day. The clock is an
application service: it drives the bus, reads each portfolio from the event store, and finds its work
through the `ClockReads` port (the read models, implemented in infra). The composition root builds one per
process (`Platform.market_clock`); `infra.runtime.scheduler` runs it on a timer.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from commands import messages as m
from commands.bus import MessageBus
from commands.ports import ClockReads, CommandMeta, MarketData
from domain.errors import DomainError
from domain.portfolio.aggregate import Portfolio
from domain.status import PortfolioStatus

log = logging.getLogger(__name__)
SCHEDULER = CommandMeta(actor="scheduler")


@dataclass(frozen=True)
class _Where:
    portfolio_id: int
    account_id: int
    status: str
    last_day: str | None
    deployed_on: str


@dataclass
class DayReport:
    days: list[str] = field(default_factory=list)
    steps: int = 0
    signals: list[int] = field(default_factory=list)
    position: int | None = None  # the last store position written (for read-your-writes)

    def note(self, position: int | None) -> None:
        if position is not None:
            self.position = max(position, self.position or 0)


class MarketClock:
    def __init__(self, bus: MessageBus, reads: ClockReads) -> None:
        self.bus = bus
        self.reads = reads
        self.lock = threading.Lock()  # one clock run at a time per process

    @property
    def market(self) -> MarketData:
        return self.bus.deps.market

    def _days_for(self, last_day: str | None, deployed_on: str, until: str) -> list[str]:
        if last_day is None:
            return [deployed_on, *self.market.trading_days(deployed_on, until)] if deployed_on <= until else []
        return self.market.trading_days(last_day, until)

    def _step(self, portfolio_id: int, day: str, meta: CommandMeta, report: DayReport) -> None:
        result = self.bus.handle(m.RunPortfolioDay(portfolio_id, day), meta)
        report.note(result.position)
        report.steps += 1
        report.signals.extend(result.value)

    def _check_daily_loss(self, account_id: int, day: str, meta: CommandMeta, report: DayReport) -> None:
        report.note(self.bus.handle(m.CheckDailyLoss(account_id, day), meta).position)

    def advance_portfolio(self, portfolio_id: int, meta: CommandMeta) -> DayReport:
        """Bring one portfolio up to the latest stored day (the last step is the scan on that day's close;
        run again on the same day, it scans again)."""
        latest = self.market.latest_day()
        if latest is None:
            raise DomainError("No bar history is stored yet; import or generate bars first")
        report = DayReport()
        with self.lock:
            pf = self._portfolio(portfolio_id)
            days = self._days_for(pf.last_day, pf.deployed_on, latest) or [latest]
            for day in days:
                self._step(portfolio_id, day, meta, report)
                self._check_daily_loss(pf.account_id, day, meta, report)
            report.days = days
        return report

    def _portfolio(self, portfolio_id: int) -> _Where:
        """Where the portfolio stands, from the aggregate itself: its last processed day must not come
        from a lagging read model."""
        with self.bus.deps.store.reading(Portfolio, Portfolio.uuid_for(portfolio_id)) as pf:
            if pf is None:
                raise DomainError(f"Portfolio {portfolio_id} not found")
            return _Where(pf.portfolio_id, pf.account_id or 0, pf.status, pf.last_day, pf.deployed_on)

    def run_due(self, until: str | None = None,
                progress: Callable[[str, int, int], None] | None = None) -> DayReport:
        """Step every active or paused portfolio through each stored day it has not processed (see
        `_run_due`); the run's events share one correlation id."""
        meta = dataclasses.replace(SCHEDULER, correlation_id=f"clock-{uuid.uuid4().hex[:12]}")
        return self._run_due(until, progress, meta)

    def _run_due(self, until: str | None, progress: Callable[[str, int, int], None] | None,
                 meta: CommandMeta) -> DayReport:
        """Step every active or paused portfolio through each stored day it has not processed, day by
        day across portfolios, checking daily-loss limits per account after each day."""
        latest = until or self.market.latest_day()
        report = DayReport()
        if latest is None:
            return report
        with self.lock:
            plans: dict[int, list[str]] = {}
            accounts: dict[int, int] = {}
            for portfolio_id, last_day in self.reads.active_portfolios():
                if last_day is not None and last_day >= latest:
                    continue  # up to date (the read model may lag the aggregate, never lead it)
                pf = self._portfolio(portfolio_id)
                if pf.status == PortfolioStatus.RETIRED:
                    continue
                plans[pf.portfolio_id] = self._days_for(pf.last_day, pf.deployed_on, latest)
                accounts[pf.portfolio_id] = pf.account_id
            all_days = sorted({d for days in plans.values() for d in days})
            for k, day in enumerate(all_days):
                stepped: set[int] = set()
                for pid, days in plans.items():
                    if day in days:
                        self._step(pid, day, meta, report)
                        stepped.add(accounts[pid])
                for account_id in sorted(stepped):
                    self._check_daily_loss(account_id, day, meta, report)
                if progress is not None:
                    progress(day, k + 1, len(all_days))
            report.days = all_days
        return report

    def expire_overdue(self, now: datetime | None = None) -> int:
        """Expire pending and in-cart signals whose `expires_at` has passed."""
        moment = (now or datetime.now(UTC)).isoformat()
        done = 0
        for portfolio_id, signal_id in self.reads.overdue_signals(moment):
            try:
                self.bus.handle(m.DecideSignal(None, portfolio_id, signal_id, "expire",
                                                        "not acted on before expires_at"), SCHEDULER)
                done += 1
            except DomainError:  # acted on meanwhile (the projection lagged): nothing to expire
                continue
        return done
