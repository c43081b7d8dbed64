"""How many request threads of one API process run Python at the same time.

FastAPI runs each sync endpoint in a worker thread. When many of them are runnable at once they pass
the GIL around in a convoy: a thread back from a database call waits behind every other runnable one,
and the slowest requests wait longest. With 32 concurrent readers on two API workers this put p99 at
120-200 ms while p50 was 25 ms. The API (api/guards.py) therefore admits only a few endpoint calls per
process into threads at a time (`TRADERTAPE_API_THREADS`, default 4); the others wait their turn, first
come first served, on the event loop, where waiting costs nothing.

A thread gives its turn back while it waits for something that is not its own work: read-your-writes
(the projector), an analytics snapshot another thread is building. That is what this module is for:
whoever admitted the thread says how to give the turn back and take it again, and the code that waits
says when (`with gate.released(): ...`). A thread nobody admitted (background tasks, the projector,
the CLI, tests calling code directly) passes straight through.

The API process's gate is `api.guards.WORK_GATE`; the code that waits (`streams.workers.ReadYourWrites`,
`infra.analytics.store.AnalyticsStore`) is handed it when the API builds it, and otherwise has a gate of
its own that nobody is admitted to.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class WorkGate:
    def __init__(self) -> None:
        self._local = threading.local()
        self.slots = 4

    def configure(self, slots: int) -> None:
        """Turns per API process (0 = as many as the thread pool has). Read by the API at start-up."""
        self.slots = slots

    @contextmanager
    def admitted(self, give_back: Callable[[], None], take_again: Callable[[], None]) -> Iterator[None]:
        """Runs the body as an admitted thread: `released()` calls these two around its wait."""
        self._local.turn = (give_back, take_again)
        try:
            yield
        finally:
            self._local.turn = None

    @contextmanager
    def released(self) -> Iterator[None]:
        """Give this thread's turn back while it waits on something else; wait for a turn after."""
        turn = getattr(self._local, "turn", None)
        if turn is None:
            yield
            return
        give_back, take_again = turn
        self._local.turn = None
        give_back()
        try:
            yield
        finally:
            take_again()
            self._local.turn = turn

