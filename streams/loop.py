"""The worker loop the relay and the projector share: step until stopped, sleep when idle (or until
woken), back off exponentially while a step keeps failing."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class StepLoop:
    def __init__(self, name: str, step: Callable[[], int], on_error: Callable[[], None] | None = None,
                 idle_wait: float = 0.2, max_backoff: float = 5.0,
                 idle: Callable[[float], object] | None = None) -> None:
        """`idle(seconds)`: how to wait when a step found nothing (default: until woken or the time is up),
        e.g. for a database notification."""
        self.name = name
        self._step = step
        self._on_error = on_error
        self.idle_wait = idle_wait
        self._idle = idle
        self.max_backoff = max_backoff
        self.last_error: str | None = None  # shown by /api/health while steps keep failing
        self._wake = threading.Event()

    def wake(self) -> None:
        self._wake.set()

    def run(self, stop: threading.Event) -> None:
        backoff = 0.5
        while not stop.is_set():
            try:
                n = self._step()
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"[:500]
                log.warning("%s step failed (%s); retrying in %.1fs", self.name, self.last_error, backoff,
                            exc_info=log.isEnabledFor(logging.DEBUG))
                if self._on_error is not None:
                    self._on_error()
                stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            backoff = 0.5
            self.last_error = None
            if n == 0:
                if self._idle is not None:
                    self._idle(self.idle_wait)
                else:
                    self._wake.wait(self.idle_wait)
                    self._wake.clear()
