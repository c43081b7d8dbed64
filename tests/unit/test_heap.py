"""The long-running processes take their start-up heap out of the collector's full scans."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_settle_freezes_the_start_up_heap_and_still_collects_later_cycles() -> None:
    code = (
        "import gc, weakref\n"
        "from infra.runtime import heap\n"
        "import fastapi, sqlalchemy\n"
        "heap.settle()\n"
        "frozen = gc.get_freeze_count()\n"
        "class Node: pass\n"
        "a, b = Node(), Node(); a.other, b.other = b, a\n"
        "gone = weakref.ref(a); del a, b\n"
        "gc.collect()\n"
        "print(frozen, gc.get_threshold()[2], gone() is None)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    frozen, oldest, collected = out.stdout.split()
    assert int(frozen) > 50_000  # the imported libraries' objects are out of the scans
    assert int(oldest) == 100
    assert collected == "True"  # a cycle made after start-up is still freed


def test_overlapping_pauses_turn_the_collector_back_on_only_when_the_last_ends() -> None:
    import gc

    from infra.runtime.heap import collector_paused

    assert gc.isenabled()
    first, second = collector_paused(), collector_paused()
    first.__enter__()
    second.__enter__()  # another thread's build overlaps
    first.__exit__(None, None, None)
    assert not gc.isenabled()  # the second build still runs
    second.__exit__(None, None, None)
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()  # it was off before: it stays off
    finally:
        gc.enable()
