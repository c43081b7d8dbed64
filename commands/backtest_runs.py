"""Running a backtest and recording it: the application service behind `POST /api/backtest/run` and
`DELETE /api/backtest/runs/{id}`; research jobs record their best runs through `record_run`.

A run executes through the `BacktestRunner` port (a process pool: only plain arguments cross). Its detail
(trades, equity curve, refused entries) goes to the `BacktestArchive` first, then the run is recorded as a
`BacktestCompleted` event that names the detail; when recording fails the detail is deleted again, so nothing
is left half-written. Commands go through `send`, the caller's way of sending them (the API's waits for its
read models, a background job's does not).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from commands import messages as m
from commands.bus import CommandResult
from commands.ports import BacktestArchive, BacktestRunner

__all__ = ["RunBacktest", "Send", "record_run"]

Send = Callable[[Any], CommandResult]


def record_run(archive: BacktestArchive, send: Send, account_id: int, params: dict[str, Any],
               out: Mapping[str, Any]) -> CommandResult:
    """Keep the run's detail, then record the run (its `value` is the run id); undo the detail on failure."""
    ref = archive.write(out["trades"], out["equity_curve"], out.get("refused_entries"))
    try:
        return send(m.RecordBacktestRun(account_id, params, out["summary"], out["diagnostics"],
                                        out["monthly_returns"], out["open_positions"], out["data_fingerprint"], ref))
    except Exception:
        archive.delete(ref)
        raise


class RunBacktest:
    def __init__(self, runner: BacktestRunner, archive: BacktestArchive) -> None:
        self.runner = runner
        self.archive = archive

    async def execute(self, plan: Mapping[str, Any]) -> dict[str, Any]:
        """The run's result, awaited: no thread waits while the worker process computes it."""
        return await asyncio.wrap_future(self.runner.submit(plan))

    def record(self, send: Send, account_id: int, params: dict[str, Any], out: Mapping[str, Any]) -> CommandResult:
        return record_run(self.archive, send, account_id, params, out)

    def detail(self, ref: str) -> dict[str, list[dict[str, Any]]]:
        return self.archive.read(ref)

    def delete(self, send: Send, account_id: int, run_id: int) -> None:
        """Delete the run (the command refuses another user's run), then its detail."""
        ref = send(m.DeleteBacktestRun(account_id, run_id)).value
        self.archive.delete(ref)
