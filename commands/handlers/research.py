"""Research jobs on the account's ResearchDesk: submit (one active job per account), start, progress,
complete, fail, cancel or delete."""

from __future__ import annotations

from typing import Any

from commands import research_messages as rm
from commands.bus import Handler
from commands.uow import UnitOfWork
from domain.research import ResearchDesk


def _desk(uow: UnitOfWork, account_id: int) -> ResearchDesk:
    return uow.load(ResearchDesk, ResearchDesk.uuid_for(account_id)) or ResearchDesk.open(account_id)


def submit_research_job(cmd: rm.SubmitResearchJob, uow: UnitOfWork) -> int:
    desk = _desk(uow, cmd.account_id)
    desk.check_free()  # refused (409) before taking an id
    job_id = uow.deps.ids.next_id("research_job")
    desk.submit(job_id, cmd.kind, cmd.params, cmd.total, cmd.runner)
    uow.save(desk)
    return job_id


def start_research_job(cmd: rm.StartResearchJob, uow: UnitOfWork) -> None:
    desk = _desk(uow, cmd.account_id)
    desk.start(cmd.job_id, cmd.executor, uow.deps.clock.now())
    uow.save(desk)


def record_research_progress(cmd: rm.RecordResearchProgress, uow: UnitOfWork) -> None:
    desk = _desk(uow, cmd.account_id)
    desk.progress(cmd.job_id, cmd.done, cmd.total)
    uow.save(desk)


def complete_research_job(cmd: rm.CompleteResearchJob, uow: UnitOfWork) -> None:
    desk = _desk(uow, cmd.account_id)
    desk.complete(cmd.job_id, cmd.summary, cmd.results_ref, cmd.best_run_id, cmd.run_ids, uow.deps.clock.now(),
                  cmd.notify_after)
    uow.save(desk)


def fail_research_job(cmd: rm.FailResearchJob, uow: UnitOfWork) -> None:
    desk = _desk(uow, cmd.account_id)
    desk.fail(cmd.job_id, cmd.reason, uow.deps.clock.now(), cmd.notify_after)
    uow.save(desk)


def cancel_or_delete_research_job(cmd: rm.CancelOrDeleteResearchJob, uow: UnitOfWork) -> dict[str, Any]:
    """Returns what happened (`cancelled` or `deleted`) and, for a deletion, the results to drop."""
    desk = _desk(uow, cmd.account_id)
    job = desk.job(cmd.job_id)
    ref, runs = job.results_ref, list(job.run_ids)
    outcome = desk.cancel_or_delete(cmd.job_id, uow.deps.clock.now(), cmd.notify_after)
    uow.save(desk)
    return {"outcome": outcome, "results_ref": ref if outcome == "deleted" else "", "run_ids": runs}


HANDLERS: dict[type, Handler] = {
    rm.SubmitResearchJob: submit_research_job,
    rm.StartResearchJob: start_research_job,
    rm.RecordResearchProgress: record_research_progress,
    rm.CompleteResearchJob: complete_research_job,
    rm.FailResearchJob: fail_research_job,
    rm.CancelOrDeleteResearchJob: cancel_or_delete_research_job,
}
