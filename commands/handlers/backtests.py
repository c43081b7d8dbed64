"""Recording completed backtest runs and deleting them."""

from __future__ import annotations

from commands import messages as m
from commands.uow import UnitOfWork
from domain.backtests import BacktestRun


def record_backtest_run(cmd: m.RecordBacktestRun, uow: UnitOfWork) -> int:
    run_id = uow.deps.ids.next_id("backtest_run")
    uow.save(BacktestRun.complete(run_id, cmd.account_id, cmd.params, cmd.summary, cmd.diagnostics,
                                  cmd.monthly_returns, cmd.open_positions, cmd.data_fingerprint, cmd.detail_ref))
    return run_id


def delete_backtest_run(cmd: m.DeleteBacktestRun, uow: UnitOfWork) -> str:
    """Returns the run's detail reference so the caller can drop the detail files."""
    run = uow.get(BacktestRun, BacktestRun.uuid_for(cmd.run_id), f"Backtest run {cmd.run_id}")
    run.delete(cmd.account_id)
    uow.save(run)
    return run.detail_ref
