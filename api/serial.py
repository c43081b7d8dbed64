"""Commands of one API process that certainly save the same aggregate take turns instead of clashing.

The carts of one account all save its RiskBook: run at once they would meet the store's version check
and retry (then 409). `dispatch(serial=key)` runs them one after the other in this process, on 64 striped
locks (other processes still meet the version check). A waiter gives its work-gate turn back while it
waits (infra/runtime/workgate.py), so requests queued behind it are not held up.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterator
from contextlib import contextmanager

from api.guards import WORK_GATE
from infra.runtime.workgate import WorkGate

__all__ = ["SERIAL", "SerialKeys"]


class SerialKeys:
    def __init__(self, gate: WorkGate, stripes: int = 64) -> None:
        self._gate = gate
        self._stripes = [threading.Lock() for _ in range(stripes)]

    @contextmanager
    def one_at_a_time(self, key: Hashable | None) -> Iterator[None]:
        """Runs the body after every other body of this process with the same key (None: no waiting)."""
        if key is None:
            yield
            return
        lock = self._stripes[hash(key) % len(self._stripes)]
        if not lock.acquire(blocking=False):
            with self._gate.released():  # waiting on another request's work: give the turn back meanwhile
                lock.acquire()
        try:
            yield
        finally:
            lock.release()


SERIAL = SerialKeys(WORK_GATE)
