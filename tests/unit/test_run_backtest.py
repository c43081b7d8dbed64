"""The RunBacktest service over fakes: a run's detail is kept only when its run is recorded."""

from __future__ import annotations

import asyncio
from concurrent.futures import Future
from typing import Any

import pytest

from commands import messages as m
from commands.backtest_runs import RunBacktest
from commands.bus import MessageBus
from commands.handlers import HANDLERS
from commands.ports import CommandMeta
from domain.errors import NotFound
from tests.unit.fakes import fake_deps

META = CommandMeta(actor="user:1", request_id="r1")
OUT: dict[str, Any] = {"summary": {"total_return_pct": 3.5}, "diagnostics": {}, "monthly_returns": {},
                       "open_positions": [], "data_fingerprint": "f1", "trades": [{"symbol": "TCS"}],
                       "equity_curve": [{"date": "2024-01-01", "equity": 100.0}], "refused_entries": []}


class MemoryArchive:
    def __init__(self) -> None:
        self.kept: dict[str, dict[str, list[dict[str, Any]]]] = {}

    def write(self, trades: list[dict[str, Any]], equity_curve: list[dict[str, Any]],
              refused_entries: list[dict[str, Any]] | None = None) -> str:
        ref = f"{len(self.kept) + 1:08x}"
        self.kept[ref] = {"trades": trades, "equity_curve": equity_curve, "refused_entries": refused_entries or []}
        return ref

    def read(self, ref: str) -> dict[str, list[dict[str, Any]]]:
        return self.kept[ref]

    def delete(self, ref: str) -> None:
        self.kept.pop(ref, None)


class DoneRunner:
    def __init__(self) -> None:
        self.plans: list[dict[str, Any]] = []

    def submit(self, plan: Any) -> Future[dict[str, Any]]:
        self.plans.append(dict(plan))
        future: Future[dict[str, Any]] = Future()
        future.set_result(OUT)
        return future


def _service() -> tuple[RunBacktest, MemoryArchive, DoneRunner, MessageBus]:
    archive, runner = MemoryArchive(), DoneRunner()
    return RunBacktest(runner, archive), archive, runner, MessageBus(fake_deps(), HANDLERS)


def test_a_run_is_executed_by_the_runner_and_recorded_with_its_detail() -> None:
    runs, archive, runner, bus = _service()
    out = asyncio.run(runs.execute({"strategy": "sma"}))
    result = runs.record(lambda cmd: bus.handle(cmd, META), 1, {"universe": "nifty_50"}, out)
    assert runner.plans == [{"strategy": "sma"}]
    assert result.value == 1
    [ref] = archive.kept
    assert runs.detail(ref)["trades"] == [{"symbol": "TCS"}]


def test_the_detail_is_removed_when_recording_fails() -> None:
    runs, archive, _, _ = _service()

    def refuse(cmd: Any) -> Any:
        assert isinstance(cmd, m.RecordBacktestRun) and cmd.detail_ref in archive.kept  # written first
        raise RuntimeError("the store is down")

    with pytest.raises(RuntimeError, match="store is down"):
        runs.record(refuse, 1, {}, OUT)
    assert archive.kept == {}


def test_deleting_a_run_removes_its_detail_and_another_users_run_is_refused() -> None:
    runs, archive, _, bus = _service()
    send = lambda cmd: bus.handle(cmd, META)  # noqa: E731
    run_id = int(runs.record(send, 1, {}, OUT).value)
    with pytest.raises(NotFound):
        runs.delete(send, 2, run_id)
    assert len(archive.kept) == 1
    runs.delete(send, 1, run_id)
    assert archive.kept == {}
