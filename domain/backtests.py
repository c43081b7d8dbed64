"""The BacktestRun aggregate: a completed backtest recorded as an event.

The event keeps what identifies and summarises the run (parameters, data fingerprint, summary,
diagnostics, monthly returns, positions still open); the per-trade rows and the equity curve live in
the analytics store under `detail_ref`, because a long run's detail would make an oversized event.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from domain.aggregate import Aggregate, aggregate_uuid
from domain.errors import NotFound
from domain.events import DomainEvent


@dataclass(frozen=True)
class BacktestCompleted(DomainEvent):
    run_id: int
    account_id: int
    params: dict[str, Any]
    summary: dict[str, Any]
    diagnostics: dict[str, Any]
    monthly_returns: dict[str, Any]
    open_positions: list[dict[str, Any]]
    data_fingerprint: str
    detail_ref: str


@dataclass(frozen=True)
class BacktestRunDeleted(DomainEvent):
    pass


class BacktestRun(Aggregate):
    aggregate_type = "BacktestRun"

    run_id: int
    detail_ref: str
    deleted: bool

    @staticmethod
    def uuid_for(run_id: int) -> uuid.UUID:
        return aggregate_uuid("backtest_run", run_id)

    @classmethod
    def complete(cls, run_id: int, account_id: int, params: dict[str, Any], summary: dict[str, Any],  # noqa: PLR0913
                 diagnostics: dict[str, Any], monthly_returns: dict[str, Any], open_positions: list[dict[str, Any]],
                 data_fingerprint: str, detail_ref: str) -> BacktestRun:
        run = cls(cls.uuid_for(run_id))
        run._record(BacktestCompleted(run_id, account_id, params, summary, diagnostics, monthly_returns,
                                      open_positions, data_fingerprint, detail_ref))
        return run

    def when_BacktestCompleted(self, e: BacktestCompleted) -> None:
        self.run_id = e.run_id
        self.account_id = e.account_id
        self.detail_ref = e.detail_ref
        self.deleted = False

    def delete(self, account_id: int) -> None:
        """Only the owner deletes; to anyone else the run does not exist."""
        if self.deleted or self.account_id != account_id:
            raise NotFound(f"Backtest run {self.run_id} not found")
        self._record(BacktestRunDeleted())

    def when_BacktestRunDeleted(self, e: BacktestRunDeleted) -> None:
        self.deleted = True
