"""Research jobs while they run and when they end: partial results (best first) with progress, the
`ResearchJobFinished` event and its notification, ownership per API process (a job is failed only when its
runner is gone), and 4xx answers that name the field without showing the caller's value back."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from typing import Any

import pytest

import backtest.research.jobs as jobs_module
import backtest.research.service as service_module
from backtest.research.jobs import RunContext, Tables
from backtest.research.service import ResearchService, research_heartbeats
from commands import research_messages as rm
from commands.ports import CommandMeta
from tests.integration.test_research_api import _generate, _sweep, _wait, lab

__all__ = ["lab"]


@pytest.fixture
def paused(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, threading.Event]:
    """Every snapshot of partial results is offered at once, and the job pauses at the first one with rows
    until the test sets `gate` (`shown` says it is there)."""
    shown, gate = threading.Event(), threading.Event()

    class Paused(RunContext):
        def publish(self, tables: Tables) -> None:
            super().publish(tables)
            if tables.get("results") and not shown.is_set():
                shown.set()
                gate.wait(120)

    monkeypatch.setattr(service_module, "RunContext", Paused)
    monkeypatch.setattr(service_module, "PROGRESS_EVERY", 0.0)
    monkeypatch.setattr(jobs_module, "PARTIAL_EVERY", 0.0)
    return shown, gate


def _settled(client: Any, path: str) -> dict[str, Any]:
    """The paused job once the read model has its progress (projected in the background, on Postgres later)."""
    deadline = time.monotonic() + 30
    while True:
        job: dict[str, Any] = client.get(path).json()
        if (job["status"] == "running" and job["done"] > 0) or time.monotonic() > deadline:
            return job
        time.sleep(0.1)


def test_a_running_sweep_answers_the_combinations_finished_so_far_best_first(
        lab: Any, paused: tuple[threading.Event, threading.Event]) -> None:
    shown, gate = paused
    grid = {"stop_loss_pct": [3, 5, 7, 9, 11, 13], "entry_rules.all.1.right": [30, 35, 40, 45, 50]}  # 30
    job_id = lab.post("/api/research/sweeps", json=_sweep(grid=grid, top_n=0)).json()["id"]
    try:
        assert shown.wait(180), "no partial results offered"
        job = _settled(lab, f"/api/research/sweeps/{job_id}")
        assert job["status"] == "running" and job["partial"] is True
        rows = job["results"]
        assert 0 < len(rows) == job["results_total"] == job["done"] < job["total"] == 30
        assert 0 < job["progress"] < 1
        eligible = [r for r in rows if r["eligible"]]
        assert rows[: len(eligible)] == eligible
        assert [r["objective"] for r in eligible] == sorted((r["objective"] for r in eligible), reverse=True)
        assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
        page = lab.get(f"/api/research/sweeps/{job_id}", params={"limit": 1, "offset": 0}).json()
        assert page["results"] == rows[:1]
    finally:
        gate.set()
    done = _wait(lab, "sweeps", job_id)
    assert done["status"] == "done" and done["partial"] is False and done["results_total"] == 30
    final = {r["index"]: r["metrics"] for r in done["results"]}
    assert all(final[r["index"]] == r["metrics"] for r in rows)  # partial rows are the final numbers
    research = lab.platform.settings.analytics_dir / "research"
    assert not (research / f"partial-{job_id}").exists()  # the snapshot goes when the job ends


def test_a_running_walk_forward_answers_its_windows_chosen_so_far(
        lab: Any, paused: tuple[threading.Event, threading.Event]) -> None:
    shown, gate = paused
    body = _sweep(grid={"stop_loss_pct": [4, 9], "entry_rules.all.1.right": [30, 45]}, windows=2,
                  start_date="2019-06-01", min_trades=1)
    del body["top_n"]
    job_id = lab.post("/api/research/walk-forward", json=body).json()["id"]
    try:
        assert shown.wait(180), "no partial results offered"
        job = _settled(lab, f"/api/research/walk-forward/{job_id}")
        assert job["status"] == "running" and job["partial"] is True and job["progress"] < 1
        windows = job["results"]
        shown_windows = [w["window"] for w in windows]  # the windows whose in-sample runs are all done: the
        # workers may finish window 1 before window 0, so not always a prefix, but in order and each once
        assert windows and shown_windows == sorted(set(shown_windows)) and set(shown_windows) <= {0, 1}
        assert all(w["in_sample_metrics"] is not None for w in windows if w["params"] is not None)
    finally:
        gate.set()
    done = _wait(lab, "walk-forward", job_id)
    assert done["status"] == "done"
    for w in windows:  # what was shown early is what the finished job says about that window
        final = done["windows"][w["window"]]
        assert (final["params"], final["in_sample_metrics"]) == (w["params"], w["in_sample_metrics"])


def test_a_finished_job_records_research_job_finished_and_notifies_its_owner(database_url: str,
                                                                           api_factory: Any) -> None:
    client = _generate(api_factory(database_url, research_notify_after=0))
    client.login()
    job_id = client.post("/api/research/sweeps", json=_sweep(grid={"stop_loss_pct": [5, 8]}, top_n=0)).json()["id"]
    assert _wait(client, "sweeps", job_id)["status"] == "done"
    events = [e for e in client.platform.store.read(0, 100_000) if e.type == "ResearchJobFinished"]
    assert len(events) == 1
    data = events[0].data
    assert data["job_id"] == job_id and data["status"] == "done" and data["kind"] == "sweep"
    assert data["link"] == f"/research/sweeps/{job_id}" and "v3_dip_buyer" in data["name"]

    deadline = time.monotonic() + 60
    found: list[dict[str, Any]] = []
    while not found and time.monotonic() < deadline:
        found = [n for n in client.get("/api/notifications").json() if n["kind"] == "research_finished"]
        time.sleep(0.2)
    assert found, "no research_finished notification"
    assert found[0]["items"][0]["job_id"] == job_id and "done" in found[0]["items"][0]["text"]

    # a cancelled job is finished too; a short job under the threshold records nothing (the default 60 s)
    big = _sweep(grid={"stop_loss_pct": list(range(1, 41)), "target_pct": list(range(5, 45))}, top_n=0)
    cancelled = client.post("/api/research/sweeps", json=big).json()["id"]
    assert client.delete(f"/api/research/sweeps/{cancelled}").status_code == 204
    client.app.state.research.wait(cancelled, 120)
    statuses = [e.data["status"] for e in client.platform.store.read(0, 100_000) if e.type == "ResearchJobFinished"
                and e.data["job_id"] == cancelled]
    assert statuses in (["cancelled"], [])  # cancelled before it started: never ran, nothing to notify
    started = [e for e in client.platform.store.read(0, 100_000) if e.type == "ResearchJobStarted"
               and e.data["job_id"] == cancelled]
    assert statuses == (["cancelled"] if started else [])


def test_a_short_job_under_the_threshold_notifies_nothing(lab: Any) -> None:
    job_id = lab.post("/api/research/sweeps", json=_sweep(grid={"stop_loss_pct": [5]}, top_n=0)).json()["id"]
    assert _wait(lab, "sweeps", job_id)["status"] == "done"
    assert not [e for e in lab.platform.store.read(0, 100_000) if e.type == "ResearchJobFinished"]


def _submit_as(client: Any, runner: str, account_id: int) -> int:
    """A job recorded as run by `runner` (another API process), started there."""
    bus = client.platform.bus
    meta = CommandMeta(actor=f"user:{account_id}", account_id=account_id)
    job_id = int(bus.handle(rm.SubmitResearchJob(account_id, "sweep", {"strategy_name": "x"}, 4, runner), meta).value)
    bus.handle(rm.StartResearchJob(account_id, job_id, "local:1"), meta)
    assert _job_once(client, job_id, "running")["status"] == "running"  # in the read model
    return job_id


def _job_once(client: Any, job_id: int, status: str) -> dict[str, Any]:
    """The job once the read model says `status` (it follows the events in the background), or as it is
    after 30 seconds."""
    deadline = time.monotonic() + 30
    while True:
        job: dict[str, Any] = client.get(f"/api/research/sweeps/{job_id}").json()
        if job.get("status") == status or time.monotonic() > deadline:
            return job
        time.sleep(0.05)


def _beat(client: Any, runner: str, age: float) -> None:
    """Record `runner`'s last heartbeat `age` seconds ago."""
    t = research_heartbeats
    with client.platform.db.write() as conn:
        conn.execute(t.delete().where(t.c.runner == runner))
        conn.execute(t.insert().values(runner=runner, heartbeat_at=time.time() - age))


def test_a_job_is_failed_only_when_its_runner_is_gone(lab: Any) -> None:
    me = lab.get("/api/auth/me").json()
    mine = lab.app.state.research
    # another API process, alive: its running job is left alone by this one
    _beat(lab, "other:1", age=1)
    theirs = _submit_as(lab, "other:1", me["id"])
    assert mine.reap() == []
    assert lab.get(f"/api/research/sweeps/{theirs}").json()["status"] == "running"

    # that process stops beating (killed): after STALE_AFTER its job fails, with the reason
    _beat(lab, "other:1", age=service_module.STALE_AFTER + 5)
    assert mine.reap() in ([theirs], [])  # [] when this process's own heartbeat thread got there first
    job = _job_once(lab, theirs, "failed")
    assert job["status"] == "failed" and "stopped before it finished" in job["error"]

    # a server of this host killed a moment ago (its heartbeat still fresh): its jobs fail at once, as its
    # process is gone; one whose process still runs is left to its heartbeat until that process ends
    host = socket.gethostname()[:80]
    ended = subprocess.Popen(["true"])
    ended.wait()
    killed = f"{host}:{ended.pid}:x"
    _beat(lab, killed, age=1)
    was_killed = _submit_as(lab, killed, me["id"])
    mine.reap()  # (or this process's heartbeat thread, whichever comes first)
    job = _job_once(lab, was_killed, "failed")
    assert job["status"] == "failed" and job["error"] == service_module.STOPPED
    with subprocess.Popen(["sleep", "30"]) as sleeper:
        running = f"{host}:{sleeper.pid}:y"
        _beat(lab, running, age=1)
        still_running = _submit_as(lab, running, me["id"])
        assert mine.reap() == [] and lab.get(f"/api/research/sweeps/{still_running}").json()["status"] == "running"
        sleeper.kill()
    mine.reap()
    assert _job_once(lab, still_running, "failed")["status"] == "failed"

    # a restarted server (a new runner) fails the jobs its earlier self left running, not a live one's
    gone = _submit_as(lab, "old-self", me["id"])  # no heartbeat row at all: that process is gone
    restarted = ResearchService(lab.platform, runner="new-self")
    restarted.recover()
    try:
        assert _job_once(lab, gone, "failed")["status"] == "failed"
        live = _submit_as(lab, mine.runner, me["id"])  # this (running) process's job
        assert restarted.reap() == []
        assert lab.get(f"/api/research/sweeps/{live}").json()["status"] == "running"
    finally:
        restarted.shutdown(timeout=5)
    # a server that stops fails what it was running and leaves the runners
    with lab.platform.db.read() as conn:
        assert "new-self" not in {r.runner for r in conn.execute(research_heartbeats.select())}
    mine._accounts[live] = me["id"]  # as if its thread were running it
    mine.shutdown(timeout=5)
    assert _job_once(lab, live, "failed")["status"] == "failed"


def test_errors_name_the_field_without_echoing_the_value(lab: Any) -> None:
    secret = "zq_echo_probe_7781"
    mc = {k: v for k, v in _sweep().items() if k not in ("grid", "objective", "top_n")}
    r = lab.post("/api/research/monte-carlo", json={**mc, "methods": [secret]})
    assert r.status_code == 422 and secret not in r.text, r.text
    assert r.json()["detail"][0]["loc"][-1] == "methods" and "each method is one of" in r.text
    cases: list[tuple[str, dict[str, Any], int]] = [
        ("sweeps", {"grid": {secret: [1, 2]}}, 400),
        ("sweeps", {"grid": {f"entry_rules.{secret}.x": [1, 2]}}, 400),
        ("sweeps", {"grid": {"stop_loss_pct": [5, 8]}, "objective": secret}, 422),
        ("sweeps", {"grid": {"stop_loss_pct": [5, 8]}, "objective": {secret: 1.0}}, 422),
        ("sweeps", {"grid": {"stop_loss_pct": [5, 8]}, "constraints": [f"{secret} < 3"]}, 400),
        ("sweeps", {"grid": None, "random": {secret: [1, "x"], "samples": 2}}, 422),
    ]
    for route, changes, status in cases:
        r = lab.post(f"/api/research/{route}", json=_sweep(**changes))
        assert r.status_code == status, (route, changes, r.text)
        assert secret not in r.text, (route, r.text)
    r = lab.post("/api/research/sweeps", json=_sweep(grid={"stop_loss_pct": [5], "bogus_param": [1]}))
    assert r.json()["detail"].startswith("grid: parameter 2 is not a sweep parameter")
    r = lab.post("/api/research/sweeps", json=_sweep(grid={"stop_loss_pct": [5, 150]}))
    assert r.status_code == 400 and r.json()["detail"].startswith("combination 2 (in grid order): exit_rules.")
