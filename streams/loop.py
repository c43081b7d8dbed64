"""The worker loop the relay and the projector share: step until stopped, sleep when idle (or until
woken), back off exponentially while a step keeps failing (recorded in `worker_status` for /api/health)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

log = logging.getLogger(__name__)

status_metadata = sa.MetaData()
worker_status = sa.Table(
    "worker_status", status_metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False),  # steps failed in a row (0: the last step succeeded)
    sa.Column("last_error", sa.Text),
    sa.Column("last_error_at", sa.Float),
    sa.Column("updated_at", sa.Float, nullable=False),
)



def status_reporter(db: Any, name: str) -> Callable[[StepLoop], None]:
    """A StepLoop `report` hook writing the loop's failures to `worker_status` (best effort: when the
    database is what fails, the row is written at the next chance)."""

    def report(loop: StepLoop) -> None:
        values = {"failures": loop.failures, "last_error": loop.last_error, "last_error_at": loop.last_error_at,
                  "updated_at": time.time()}
        try:
            with db.write(durable=False) as conn:
                if not conn.execute(sa.update(worker_status).where(worker_status.c.name == name)
                                    .values(**values)).rowcount:
                    conn.execute(sa.insert(worker_status).values(name=name, **values))
        except Exception:
            log.debug("could not record %s status", name, exc_info=True)

    return report


class StepLoop:
    def __init__(self, name: str, step: Callable[[], int], on_error: Callable[[], None] | None = None,
                 idle_wait: float = 0.2, max_backoff: float = 5.0,
                 idle: Callable[[float], object] | None = None,
                 report: Callable[[StepLoop], None] | None = None) -> None:
        """`idle(seconds)`: how to wait when a step found nothing (default: until woken or the time is up),
        e.g. for a database notification. `report(loop)`: called at the start, after every failed step and
        after the first step that succeeds again (to record the failures where /api/health reads them)."""
        self.name = name
        self._step = step
        self._on_error = on_error
        self.idle_wait = idle_wait
        self._idle = idle
        self.max_backoff = max_backoff
        self.last_error: str | None = None  # shown by /api/health while steps keep failing
        self.failures = 0  # steps failed in a row (0 after a step succeeds)
        self.last_error_at: float | None = None  # time.time() of the last failure
        self._wake = threading.Event()
        self._report = report

    def wake(self) -> None:
        self._wake.set()

    def run(self, stop: threading.Event) -> None:
        backoff = 0.5
        if self._report is not None:
            self._report(self)
        while not stop.is_set():
            try:
                n = self._step()
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"[:500].encode("utf-8", "backslashreplace").decode()
                self.failures += 1
                self.last_error_at = time.time()
                log.warning("%s step failed (%s); retrying in %.1fs", self.name, self.last_error, backoff,
                            exc_info=log.isEnabledFor(logging.DEBUG))
                if self._on_error is not None:
                    self._on_error()
                if self._report is not None:
                    self._report(self)
                stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            backoff = 0.5
            if self.failures:
                self.last_error = None
                self.failures = 0
                if self._report is not None:
                    self._report(self)
            if n == 0:
                if self._idle is not None:
                    self._idle(self.idle_wait)
                else:
                    self._wake.wait(self.idle_wait)
                    self._wake.clear()
