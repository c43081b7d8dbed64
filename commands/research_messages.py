"""Commands of research jobs (sweeps, walk-forward, Monte Carlo, look-ahead checks) on an account's desk."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SubmitResearchJob:
    account_id: int
    kind: str
    params: dict[str, Any]
    total: int
    runner: str = ""  # the process that will run it


@dataclass(frozen=True)
class StartResearchJob:
    account_id: int
    job_id: int
    executor: str


@dataclass(frozen=True)
class RecordResearchProgress:
    account_id: int
    job_id: int
    done: int
    total: int


@dataclass(frozen=True)
class CompleteResearchJob:
    account_id: int
    job_id: int
    summary: dict[str, Any]
    results_ref: str
    best_run_id: int | None = None
    run_ids: list[int] = field(default_factory=list)
    notify_after: float | None = None  # seconds: a job that ran this long records ResearchJobFinished


@dataclass(frozen=True)
class FailResearchJob:
    account_id: int
    job_id: int
    reason: str
    notify_after: float | None = None


@dataclass(frozen=True)
class CancelOrDeleteResearchJob:
    account_id: int
    job_id: int
    notify_after: float | None = None
