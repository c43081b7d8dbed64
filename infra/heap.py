"""The garbage collector in the long-running processes (API server, relay, projector).

Started, such a process holds hundreds of thousands of objects that live as long as it does (modules,
FastAPI's and SQLAlchemy's structures, settings). CPython's full collections scan all of them: measured
under the commands benchmark, 60-125 ms pauses in each process, which held up every request in flight
and made most of the p99. `settle()` moves what exists at the end of start-up out of the collector's
sight (`gc.freeze`) and makes young collections rarer; cycles created later are still collected.
Only for processes that start once and then serve: objects frozen are never freed.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000  # allocations between young collections (CPython's default is 700)


def settle() -> None:
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
