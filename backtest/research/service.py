"""Research jobs in the server: submit, run in the background, record, read back, cancel or delete.

Every step is a command on the account's `ResearchDesk` (events `ResearchJobSubmitted`, `...Started`,
`...Progressed`, `...Completed`/`...Failed`/`...Cancelled`, `...Deleted`); the job list and status come from
the `rm_research_jobs` projection, the result tables from the analytics store (`store.ResultTables`).

Each job runs in its own thread of the API process; its tasks run in the executor (the local process pool,
or Dask when `TRADERTAPE_DASK_SCHEDULER` is set). Progress is recorded at most every
`PROGRESS_EVERY` seconds (and at the end); partial results are not kept -- a job's results appear when it
is done. After the work, the best combinations are re-run by the ordinary backtest path (`execute_run`)
and recorded as backtest runs (`BacktestCompleted`), so `best_run_id` is a run like any other.
A job still queued or running when its server stops is marked failed at the next start.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from pathlib import Path
from typing import Any

from backtest.research.executors import JobCancelled, make_executor
from backtest.research.jobs import JobKind, JobOutcome, JobPlan, RunContext
from backtest.research.store import ResultTables
from backtest.research.worker import warm_start_for
from backtest.runner import execute_run
from commands import research_messages as rm
from commands.backtest_runs import record_run
from commands.bus import CommandResult
from commands.ports import CommandMeta
from domain.errors import DomainError, InvalidTransition, NotFound
from infra.bars.store import BarStore
from infra.bootstrap import Platform
from projections.research import get_research_job, list_research_jobs, research_jobs

log = logging.getLogger(__name__)

__all__ = ["PROGRESS_EVERY", "ResearchService"]

PROGRESS_EVERY = 1.0


class ResearchService:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.tables = ResultTables(platform.settings.analytics_dir / "research")
        self._cancel: dict[int, threading.Event] = {}
        self._threads: dict[int, threading.Thread] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------ commands

    def _meta(self, account_id: int) -> CommandMeta:
        return CommandMeta(actor=f"user:{account_id}", account_id=account_id)

    def _handle(self, command: Any, account_id: int) -> Any:
        return self._send(command, account_id).value

    def _send(self, command: Any, account_id: int) -> CommandResult:
        return self.platform.bus.handle(command, self._meta(account_id))

    def start(self, kind: JobKind, account_id: int, job_id: int, plan: JobPlan) -> None:
        """Run a submitted job in a background thread."""
        cancel = threading.Event()
        thread = threading.Thread(target=self._run, args=(kind, account_id, job_id, plan, cancel),
                                  name=f"research-{job_id}", daemon=True)
        with self._lock:
            self._cancel[job_id] = cancel
            self._threads[job_id] = thread
        thread.start()

    def _run(self, kind: JobKind, account_id: int, job_id: int, plan: JobPlan, cancel: threading.Event) -> None:
        settings = self.platform.settings
        executor = None
        try:
            executor = make_executor(settings.dask_scheduler, settings.research_workers or None)
            self._handle(rm.StartResearchJob(account_id, job_id, executor.name), account_id)
            last = [time.monotonic()]

            def progress(done: int, total: int) -> None:
                now = time.monotonic()
                if now - last[0] >= PROGRESS_EVERY and done < total:
                    last[0] = now
                    self._handle(rm.RecordResearchProgress(account_id, job_id, done, total), account_id)

            ctx = RunContext(executor, progress, cancel.is_set)
            ctx.total = plan.total
            outcome = kind.run(ctx, plan)
            if cancel.is_set():
                return
            self._finish(account_id, job_id, plan, outcome)
        except JobCancelled:
            return
        except (InvalidTransition, NotFound):
            return  # cancelled or deleted meanwhile (possibly from another process)
        except Exception as exc:
            reason = exc.detail if isinstance(exc, DomainError) else f"internal error ({type(exc).__name__})"
            if not isinstance(exc, DomainError):
                log.exception("research job %s failed", job_id)
            try:
                self._handle(rm.FailResearchJob(account_id, job_id, reason), account_id)
            except (InvalidTransition, NotFound):
                pass
        finally:
            if executor is not None:
                executor.close()
            with self._lock:
                self._cancel.pop(job_id, None)
                self._threads.pop(job_id, None)

    def _finish(self, account_id: int, job_id: int, plan: JobPlan, outcome: JobOutcome) -> None:
        ref = self.tables.write(outcome.tables)
        run_ids: list[int] = []
        try:
            for strategy, config in outcome.record:
                run_ids.append(self._record_run(account_id, job_id, plan, strategy, config))
            self._handle(rm.CompleteResearchJob(account_id, job_id, outcome.summary, ref,
                                                run_ids[0] if run_ids else None, run_ids), account_id)
        except Exception:
            self.tables.delete(ref)
            raise

    def _record_run(self, account_id: int, job_id: int, plan: JobPlan, strategy: dict[str, Any],
                    config: dict[str, Any]) -> int:
        """Re-run one combination alone, as `POST /api/backtest/run` would, and record it."""
        p, data = plan.params, plan.data
        if data is None:
            raise ValueError("a job that records backtest runs names its data (JobPlan.data)")
        out = execute_run(data.data_dir, list(data.symbols), list(data.sectors), data.benchmark,
                          _warm_start(data.data_dir, config["start_date"]), strategy, config)
        params = {"strategy_id": p.get("strategy_id"), "strategy_name": p.get("strategy_name"), "strategy": strategy,
                  "universe": p.get("universe"), "symbols": p.get("symbols"), "benchmark": p.get("benchmark"),
                  **config, "research_job_id": job_id}
        send = functools.partial(self._send, account_id=account_id)
        return int(record_run(self.platform.backtests, send, account_id, params, out).value)

    def cancel_or_delete(self, outcome: dict[str, Any], job_id: int) -> None:
        """After the DELETE command: stop a running job here; drop a deleted job's result tables."""
        if outcome["outcome"] == "cancelled":
            with self._lock:
                event = self._cancel.get(job_id)
            if event is not None:
                event.set()
        else:
            self.tables.delete(outcome["results_ref"])

    def wait(self, job_id: int, timeout: float) -> bool:
        """Wait for a job's thread (tests and the CLI); True when it is not running here any more."""
        with self._lock:
            thread = self._threads.get(job_id)
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def shutdown(self, timeout: float = 10.0) -> None:
        """The app stops: cancel the jobs running here (they stay `running` until the next start marks them
        failed) and wait a little for their threads."""
        with self._lock:
            events = list(self._cancel.values())
            threads = list(self._threads.values())
        for event in events:
            event.set()
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def recover(self) -> None:
        """At start-up: jobs left queued or running by a stopped server fail with a reason that says so."""
        with self.platform.db.read() as conn:
            rows = conn.execute(research_jobs.select().where(research_jobs.c.status.in_(("queued", "running"))))
            stale = [(int(r.account_id), int(r.id)) for r in rows]
        for account_id, job_id in stale:
            with self._lock:
                if job_id in self._threads:
                    continue
            try:
                self._handle(rm.FailResearchJob(account_id, job_id, "the server stopped while the job ran; "
                                                                    "submit it again"), account_id)
            except (InvalidTransition, NotFound):
                pass

    # ------------------------------------------------------------ reads

    def get(self, job_id: int, account_id: int) -> dict[str, Any] | None:
        with self.platform.db.read() as conn:
            return get_research_job(conn, job_id, account_id)

    def list(self, account_id: int, limit: int, offset: int, kind: str | None = None) -> tuple[list[dict[str, Any]],
                                                                                            int]:
        with self.platform.db.read() as conn:
            return list_research_jobs(conn, account_id, limit, offset, kind)


def _warm_start(data_dir: str, start: str) -> str:
    first = BarStore(Path(data_dir)).first_date()
    return warm_start_for(start, first.isoformat() if first else start)
