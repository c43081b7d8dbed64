"""The ResearchDesk aggregate: one per account, holding the account's research jobs (sweeps,
walk-forward, Monte Carlo, look-ahead checks) and their life cycle.

A job is `queued` when submitted, `running` once a runner picked it up, and ends `done`, `failed` or
`cancelled`; a finished job may be deleted. Keeping every job of an account on one aggregate makes the
per-user limit atomic: two submissions racing from two processes meet on the desk's version, and the
second sees the first job active and is refused (409). The job's work (backtests by the thousand) runs
outside the domain; only its outcome is recorded: a summary, where the result tables live in the
analytics store (`results_ref`), and the ordinary backtest runs recorded for its best combinations.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.aggregate import Aggregate, aggregate_uuid
from domain.errors import Conflict, InvalidTransition, NotFound
from domain.events import DomainEvent

ACTIVE = ("queued", "running")
FINISHED = ("done", "failed", "cancelled")
# a job's name in a notification and its page in the web app, by kind
LABELS = {"sweep": ("Sweep", "sweeps"), "walk_forward": ("Walk-forward", "walk-forward"),
          "monte_carlo": ("Monte Carlo", "monte-carlo"), "lookahead": ("Look-ahead check", "lookahead")}


@dataclass(frozen=True)
class ResearchJobSubmitted(DomainEvent):
    job_id: int
    account_id: int
    kind: str
    params: dict[str, Any]
    total: int
    runner: str = ""  # the process that runs it (its heartbeat says whether it still does)


@dataclass(frozen=True)
class ResearchJobStarted(DomainEvent):
    job_id: int
    executor: str
    started_at: str = ""  # ISO time: how long it ran decides whether its end is notified


@dataclass(frozen=True)
class ResearchJobProgressed(DomainEvent):
    job_id: int
    done: int
    total: int


@dataclass(frozen=True)
class ResearchJobCompleted(DomainEvent):
    job_id: int
    summary: dict[str, Any]
    results_ref: str
    best_run_id: int | None
    run_ids: list[int]


@dataclass(frozen=True)
class ResearchJobFailed(DomainEvent):
    job_id: int
    reason: str


@dataclass(frozen=True)
class ResearchJobCancelled(DomainEvent):
    job_id: int


@dataclass(frozen=True)
class ResearchJobDeleted(DomainEvent):
    job_id: int


@dataclass(frozen=True)
class ResearchJobFinished(DomainEvent):
    """A long job ended (done, failed or cancelled): the notifier tells its owner ("research_finished")."""

    job_id: int
    account_id: int
    kind: str
    name: str
    status: str
    link: str
    seconds: float


@dataclass
class JobState:
    job_id: int
    kind: str
    status: str
    total: int
    done: int = 0
    results_ref: str = ""
    run_ids: list[int] = field(default_factory=list)
    name: str = ""
    started_at: str = ""


class ResearchDesk(Aggregate):
    aggregate_type = "ResearchDesk"

    account_id: int
    jobs: dict[int, JobState]

    def __init__(self, aggregate_id: uuid.UUID) -> None:
        super().__init__(aggregate_id)
        self.jobs = {}

    @staticmethod
    def uuid_for(account_id: int) -> uuid.UUID:
        return aggregate_uuid("research_desk", account_id)

    @classmethod
    def open(cls, account_id: int) -> ResearchDesk:
        """A desk with no jobs yet (not saved until a job is submitted)."""
        desk = cls(cls.uuid_for(account_id))
        desk.account_id = account_id
        return desk

    def active_job(self) -> JobState | None:
        return next((j for j in self.jobs.values() if j.status in ACTIVE), None)

    def job(self, job_id: int) -> JobState:
        """The account's job; to anyone else (and once deleted) it does not exist."""
        found = self.jobs.get(job_id)
        if found is None:
            raise NotFound(f"Research job {job_id} not found")
        return found

    def check_free(self) -> None:
        """Refuse (409) while another of the account's jobs is queued or running."""
        active = self.active_job()
        if active is not None:
            raise Conflict(f"Research job {active.job_id} is still {active.status}: one job at a time per user; "
                           f"wait for it to finish or cancel it (DELETE it)")

    def submit(self, job_id: int, kind: str, params: dict[str, Any], total: int, runner: str = "") -> None:
        """Queue a job (to be run by `runner`); refused while another of the account's jobs is queued or running."""
        self.check_free()
        self._record(ResearchJobSubmitted(job_id, self.account_id, kind, params, total, runner))

    def when_ResearchJobSubmitted(self, e: ResearchJobSubmitted) -> None:
        self.account_id = e.account_id
        label = LABELS.get(e.kind, ("Research job", ""))[0]
        strategy = e.params.get("strategy_name") or (e.params.get("strategy") or {}).get("base_model")
        name = f"{label} {e.job_id}" + (f" of {str(strategy)[:80]}" if strategy else "")
        self.jobs[e.job_id] = JobState(e.job_id, e.kind, "queued", e.total, name=name)

    def _in(self, job_id: int, allowed: tuple[str, ...], action: str) -> JobState:
        job = self.job(job_id)
        if job.status not in allowed:
            raise InvalidTransition(f"Research job {job_id} is {job.status}; it cannot be {action}")
        return job

    def start(self, job_id: int, executor: str, now: datetime | None = None) -> None:
        self._in(job_id, ("queued",), "started")
        self._record(ResearchJobStarted(job_id, executor, now.isoformat() if now else ""))

    def when_ResearchJobStarted(self, e: ResearchJobStarted) -> None:
        job = self.jobs[e.job_id]
        job.status, job.started_at = "running", e.started_at

    def _finished(self, job: JobState, status: str, now: datetime | None, notify_after: float | None) -> None:
        """Record `ResearchJobFinished` for a job that ran at least `notify_after` seconds (None: never)."""
        if now is None or notify_after is None or not job.started_at:
            return
        seconds = (now - datetime.fromisoformat(job.started_at)).total_seconds()
        if seconds < notify_after:
            return
        route = LABELS.get(job.kind, ("", ""))[1]
        link = f"/research/{route}/{job.job_id}" if route and status != "deleted" else "/research"
        self._record(ResearchJobFinished(job.job_id, self.account_id, job.kind, job.name, status, link,
                                         round(seconds, 1)))

    def progress(self, job_id: int, done: int, total: int) -> None:
        self._in(job_id, ("running",), "advanced")
        self._record(ResearchJobProgressed(job_id, done, total))

    def when_ResearchJobProgressed(self, e: ResearchJobProgressed) -> None:
        job = self.jobs[e.job_id]
        job.done, job.total = e.done, e.total

    def complete(self, job_id: int, summary: dict[str, Any], results_ref: str, best_run_id: int | None,
                 run_ids: list[int], now: datetime | None = None, notify_after: float | None = None) -> None:
        job = self._in(job_id, ("running",), "completed")
        self._record(ResearchJobCompleted(job_id, summary, results_ref, best_run_id, list(run_ids)))
        self._finished(job, "done", now, notify_after)

    def when_ResearchJobCompleted(self, e: ResearchJobCompleted) -> None:
        job = self.jobs[e.job_id]
        job.status, job.done = "done", job.total
        job.results_ref, job.run_ids = e.results_ref, list(e.run_ids)

    def fail(self, job_id: int, reason: str, now: datetime | None = None, notify_after: float | None = None) -> None:
        job = self._in(job_id, ACTIVE, "failed")
        self._record(ResearchJobFailed(job_id, reason[:500]))
        self._finished(job, "failed", now, notify_after)

    def when_ResearchJobFailed(self, e: ResearchJobFailed) -> None:
        self.jobs[e.job_id].status = "failed"

    def cancel_or_delete(self, job_id: int, now: datetime | None = None, notify_after: float | None = None) -> str:
        """DELETE on a job: an active job is cancelled, a finished one deleted. Returns what happened."""
        job = self.job(job_id)
        if job.status in ACTIVE:
            self._record(ResearchJobCancelled(job_id))
            self._finished(job, "cancelled", now, notify_after)
            return "cancelled"
        self._record(ResearchJobDeleted(job_id))
        return "deleted"

    def when_ResearchJobCancelled(self, e: ResearchJobCancelled) -> None:
        self.jobs[e.job_id].status = "cancelled"

    def when_ResearchJobDeleted(self, e: ResearchJobDeleted) -> None:
        del self.jobs[e.job_id]

    def when_ResearchJobFinished(self, e: ResearchJobFinished) -> None:
        pass  # a notice: the state changed with the event before it
