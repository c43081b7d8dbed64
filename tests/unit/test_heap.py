"""The long-running processes take their start-up heap out of the collector's full scans."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_settle_freezes_the_start_up_heap_and_still_collects_later_cycles() -> None:
    code = (
        "import gc, weakref\n"
        "from infra import heap\n"
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
