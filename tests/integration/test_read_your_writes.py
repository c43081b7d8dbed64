"""Read-your-writes when another process's projector applied the event (serve --workers N)."""

from __future__ import annotations

import time
from pathlib import Path

from commands import messages as m
from commands.ports import CommandMeta
from infra.bootstrap import bootstrap
from streams.workers import ReadYourWrites, make_projector
from tests.conftest import make_settings


def test_wait_sees_a_position_applied_by_another_runner(tmp_path: Path) -> None:
    platform = bootstrap(make_settings(tmp_path))
    try:
        mine, other = make_projector(platform, "store"), make_projector(platform, "store")
        result = platform.bus.handle(m.CreateStrategy(1, m.StrategyBody("s", "", "sma_crossover", None, None,
                                                                         None, True)), CommandMeta(actor="t"))
        while other.step():  # the other worker's projector gets there first
            pass
        assert mine.step() == 0 and mine.applied_position < (result.position or 0)
        waiter = ReadYourWrites(platform, mine)
        started = time.monotonic()
        assert waiter.wait(result.touched_accounts, result.position, timeout=2.0)
        assert time.monotonic() - started < 1.0
        assert not waiter.wait(result.touched_accounts, (result.position or 0) + 1, timeout=0.2)
    finally:
        platform.close()
