"""Research jobs in the server: submit, run in the background, record, read back, cancel or delete.

Every step is a command on the account's `ResearchDesk` (events `ResearchJobSubmitted`, `...Started`,
`...Progressed`, `...Completed`/`...Failed`/`...Cancelled`, `...Deleted`); the job list and status come from
the `rm_research_jobs` projection, the result tables from the analytics store (`store.ResultTables`).

Each job runs in its own thread of the API process; its tasks run in the executor (the local process pool,
or Dask when `TRADERTAPE_DASK_SCHEDULER` is set). Progress is recorded at most every
`PROGRESS_EVERY` seconds (and at the end); the results finished so far are kept as a partial snapshot in
the analytics store (at most every `jobs.PARTIAL_EVERY` seconds), which GET answers while the job runs.
After the work, the best combinations are re-run by the ordinary backtest path (`execute_run`)
and recorded as backtest runs (`BacktestCompleted`), so `best_run_id` is a run like any other.

Ownership: every service (one per API process) is a *runner* with its own id, recorded on the jobs it
submits, and a heartbeat row in `research_heartbeats` renewed every `HEARTBEAT_EVERY` seconds. A runner
fails only jobs whose runner is gone: its own at shutdown, and -- at start and with every heartbeat --
any job whose runner has not beaten for `STALE_AFTER` seconds (a crashed or killed process), or whose
runner was a process of this host that no longer exists (a server killed and started again: its jobs fail at
once, so the one-running-job limit does not hold the user up). A job of another live API process is never
touched. A job that ran at least `research_notify_after` seconds records
`ResearchJobFinished` when it ends (done, failed or cancelled), which the notifier turns into a message.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from backtest.research.executors import JobCancelled, make_executor
from backtest.research.jobs import JobKind, JobOutcome, JobPlan, RunContext, Tables
from backtest.research.store import ResultTables
from backtest.research.worker import warm_start_for
from backtest.runner import execute_run
from commands import research_messages as rm
from commands.backtest_runs import record_run
from commands.bus import CommandResult
from commands.ports import CommandMeta
from domain.errors import DomainError, InvalidTransition, NotFound
from infra.bars.store import BarStore
from infra.bootstrap import Platform, schema_lock
from projections.research import active_research_jobs, get_research_job, list_research_jobs

log = logging.getLogger(__name__)

__all__ = ["HEARTBEAT_EVERY", "PROGRESS_EVERY", "STALE_AFTER", "ResearchService", "research_heartbeats"]

PROGRESS_EVERY = 1.0
HEARTBEAT_EVERY = 5.0  # seconds between a runner's heartbeats
STALE_AFTER = 30.0  # a runner silent this long is gone: its unfinished jobs fail

runners_metadata = sa.MetaData()
# Plain table (not events): which research runners (API processes) are alive, by their last heartbeat.
research_heartbeats = sa.Table(
    "research_heartbeats", runners_metadata,
    sa.Column("runner", sa.String(120), primary_key=True),  # host:pid:random (new_runner_id)
    sa.Column("heartbeat_at", sa.Float, nullable=False),  # epoch seconds
)

STOPPED = "the server running the job stopped before it finished; submit it again"


def new_runner_id() -> str:
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def gone_from_this_host(runner: str) -> bool:
    """A runner of this host whose process no longer exists (killed, crashed): known at once, without waiting
    STALE_AFTER for its heartbeat to age. Another host's runner, or a process id in use again, is left to the
    heartbeat."""
    host, _, rest = runner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname()[:80] or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):  # alive as another user's process; nonsense: the heartbeat decides
        return False
    return False


class ResearchService:
    def __init__(self, platform: Platform, runner: str | None = None) -> None:
        self.platform = platform
        self.tables = ResultTables(platform.settings.analytics_dir / "research")
        self.runner = runner or new_runner_id()
        self._cancel: dict[int, threading.Event] = {}
        self._threads: dict[int, threading.Thread] = {}
        self._accounts: dict[int, int] = {}  # job id -> account, for the jobs running here
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._beater: threading.Thread | None = None
        with schema_lock(platform.db):
            runners_metadata.create_all(platform.db.writer)

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
            self._accounts[job_id] = account_id
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

            def partial(tables: Tables) -> None:
                if not cancel.is_set():
                    self.tables.write_partial(job_id, tables)

            ctx = RunContext(executor, progress, cancel.is_set, partial)
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
            if not cancel.is_set():  # a stopping server fails its jobs itself (shutdown)
                self._fail(account_id, job_id, reason)
        finally:
            if executor is not None:
                executor.close()
            self.tables.delete_partial(job_id)
            with self._lock:
                self._cancel.pop(job_id, None)
                self._threads.pop(job_id, None)
                self._accounts.pop(job_id, None)

    def _fail(self, account_id: int, job_id: int, reason: str) -> None:
        try:
            self._handle(rm.FailResearchJob(account_id, job_id, reason, self.platform.settings.research_notify_after),
                         account_id)
        except (InvalidTransition, NotFound):
            pass  # finished, cancelled or deleted meanwhile

    def _finish(self, account_id: int, job_id: int, plan: JobPlan, outcome: JobOutcome) -> None:
        ref = self.tables.write(outcome.tables)
        run_ids: list[int] = list(outcome.runs)
        try:
            for strategy, config in outcome.record:
                run_ids.append(self._record_run(account_id, job_id, plan, strategy, config))
            self._handle(rm.CompleteResearchJob(account_id, job_id, outcome.summary, ref,
                                                run_ids[0] if run_ids else None, run_ids,
                                                self.platform.settings.research_notify_after), account_id)
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
        self.tables.delete_partial(job_id)

    def wait(self, job_id: int, timeout: float) -> bool:
        """Wait for a job's thread (tests and the CLI); True when it is not running here any more."""
        with self._lock:
            thread = self._threads.get(job_id)
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def shutdown(self, timeout: float = 10.0) -> None:
        """The app stops: cancel the jobs running here, wait a little for their threads, fail them (they
        cannot finish now: submit again) and leave the runners (so nobody waits for this one's heartbeat)."""
        self._stop.set()
        with self._lock:
            events = list(self._cancel.values())
            threads = list(self._threads.values())
            mine = dict(self._accounts)
        for event in events:
            event.set()
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self._beater is not None:
            self._beater.join(max(0.0, deadline - time.monotonic()))
        try:
            for job_id, account_id in mine.items():
                self._fail(account_id, job_id, STOPPED)
            with self.platform.db.write() as conn:
                conn.execute(sa.delete(research_heartbeats).where(research_heartbeats.c.runner == self.runner))
        except Exception:  # the database is gone first: the jobs fail once this runner's heartbeat is stale
            log.exception("research shutdown could not record its jobs' end")

    def heartbeat(self) -> None:
        """Say this runner is alive (its jobs are not to be failed by another process)."""
        t = research_heartbeats
        now = time.time()
        with self.platform.db.write() as conn:
            if not conn.execute(sa.update(t).where(t.c.runner == self.runner).values(heartbeat_at=now)).rowcount:
                conn.execute(sa.insert(t).values(runner=self.runner, heartbeat_at=now))

    def reap(self) -> list[int]:
        """Fail the unfinished jobs whose runner is gone (no heartbeat for STALE_AFTER seconds, or none at
        all); never this runner's, never a live runner's. Returns the jobs failed."""
        t = research_heartbeats
        with self.platform.db.read() as conn:
            alive = {r.runner for r in conn.execute(sa.select(t.c.runner).where(
                t.c.heartbeat_at >= time.time() - STALE_AFTER))}
            active = active_research_jobs(conn)
        failed = []
        for account_id, job_id, runner in active:
            if runner == self.runner or (runner in alive and not gone_from_this_host(runner or "")):
                continue
            self._fail(account_id, job_id, STOPPED)
            failed.append(job_id)
        return failed

    def recover(self) -> None:
        """At start-up: beat once, fail the jobs of gone runners (a restarted server's own earlier jobs
        among them) and keep beating and reaping every HEARTBEAT_EVERY seconds in the background."""
        self.heartbeat()
        self.reap()
        if self._beater is None:
            self._beater = threading.Thread(target=self._beat_loop, name="research-heartbeat", daemon=True)
            self._beater.start()

    def _beat_loop(self) -> None:
        while not self._stop.wait(HEARTBEAT_EVERY):
            try:
                self.heartbeat()
                self.reap()
            except Exception:  # a database hiccup: beat again next time
                log.exception("research heartbeat failed")

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
