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


def test_projector_commits_tell_waiters_their_positions_without_a_query(tmp_path: Path, pg_url: str) -> None:
    """On Postgres each projector commit NOTIFYs the positions it reached; the waiter's poller learns
    them from the notification instead of reading the tracking rows (its safety-net read is put off
    here, so only the notification can wake the request in time)."""
    import threading

    platform = bootstrap(make_settings(tmp_path, pg_url))
    try:
        runner = make_projector(platform, "store")
        while runner.step():
            pass
        waiter = ReadYourWrites(platform, None)
        waiter.DB_CHECK = 60.0
        reads: list[dict[str, int]] = []
        real_read = waiter._read_positions

        def counted_read() -> dict[str, int]:
            reads.append(real_read())
            return reads[-1]

        waiter._read_positions = counted_read  # type: ignore[method-assign]
        result = platform.bus.handle(m.CreateStrategy(1, m.StrategyBody("s", "", "sma_crossover", None, None,
                                                                         None, True)), CommandMeta(actor="t"))
        got: list[bool] = []
        t = threading.Thread(target=lambda: got.append(waiter.wait(result.touched_accounts, result.position, 20)))
        t.start()
        while not (waiter._pending and reads) and t.is_alive():  # the poller started and took its first look
            time.sleep(0.005)
        reads_before = len(reads)
        while runner.step():
            pass
        t.join(20)
        assert got == [True]
        assert len(reads) == reads_before  # woken by the notification's positions alone
        assert waiter._known["store"] >= (result.position or 0)
    finally:
        platform.close()
