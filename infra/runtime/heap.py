"""The garbage collector: settled in long-running processes (API server, relay, projector), paused in builds.

Started, such a process holds hundreds of thousands of objects that live as long as it does (modules,
FastAPI's and SQLAlchemy's structures, settings). CPython's full collections scan all of them: measured
under the commands benchmark, 60-125 ms pauses in each process, which held up every request in flight
and made most of the p99. `settle()` moves what exists at the end of start-up out of the collector's
sight (`gc.freeze`); cycles created later are still collected. With the start-up heap frozen, the rule
that puts off full collections until the old generation grew by a quarter no longer holds them back
(that generation is nearly empty), so full collections are made ten times rarer instead; each now
scans only what was created since start-up (a few ms). Young collections keep CPython's default: at
10,000 allocations instead of 700 the read endpoints cost about a fifth more CPU per request.
Only for processes that start once and then serve: objects frozen are never freed.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

OLDEST_THRESHOLD = 100  # young-to-middle collections between full ones (CPython's default is 10)


def settle() -> None:
    gc.collect()
    gc.freeze()
    young, older, _ = gc.get_threshold()
    gc.set_threshold(young, older, OLDEST_THRESHOLD)


_pause_lock = threading.Lock()
_pauses = 0
_resume = False


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic collector paused while a large build runs (a backtest, an analytics snapshot: millions
    of short-lived acyclic objects it would walk again and again for nothing; reference counting still
    frees them). The collector is per process: with builds overlapping in several threads, it comes back
    on only when the last of them ends, and only if it was on before the first."""
    global _pauses, _resume
    with _pause_lock:
        if _pauses == 0:
            _resume = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pauses -= 1
            if _pauses == 0 and _resume:
                gc.enable()
