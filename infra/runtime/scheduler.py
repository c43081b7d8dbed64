"""The scheduler: a daemon thread that runs the market clock (`commands.market_clock`) after the close on
trading days, and sweeps overdue signals every few seconds."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, time, timedelta

from commands.market_clock import MarketClock
from domain.calendar import nse_calendar
from domain.market_hours import IST

log = logging.getLogger(__name__)


def next_run(now: datetime, scan_time: str) -> datetime:
    """The next trading day's `scan_time` (Asia/Kolkata) strictly after `now`."""
    hh, mm = (int(x) for x in scan_time.split(":"))
    cal = nse_calendar()
    local = now.astimezone(IST)
    day = local.date()
    while True:
        at = datetime.combine(day, time(hh, mm), IST)
        if at > local and cal.is_trading_day(day):
            return at
        day += timedelta(days=1)


class Scheduler:
    """A daemon thread: the after-close run on trading days and a periodic expiry sweep."""

    def __init__(self, clock: MarketClock, scan_time: str, sweep_seconds: float) -> None:
        self.clock = clock
        self.scan_time = scan_time
        self.sweep_seconds = sweep_seconds
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="market-clock", daemon=True)
        self.last_run: str | None = None
        self.last_error: str | None = None
        self.due = next_run(datetime.now(UTC), scan_time)  # missed days are caught up at the next run

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=10)

    def _run(self) -> None:
        while not self.stop_event.wait(self.sweep_seconds):
            try:
                self.clock.expire_overdue()
                if datetime.now(UTC) >= self.due:
                    report = self.clock.run_due()
                    self.last_run = datetime.now(UTC).isoformat()
                    log.info("market clock: %d steps over %s, %d signals", report.steps, report.days,
                             len(report.signals))
                    self.due = next_run(datetime.now(UTC), self.scan_time)
                self.last_error = None
            except Exception as exc:  # keep the thread alive; health shows the error
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("market clock run failed")
