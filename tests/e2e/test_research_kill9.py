"""`tradertape serve` killed with SIGKILL in the middle of a research sweep: its pool's worker processes leave
with it, and the server started again fails the job at once with the reason (not after the heartbeat ages),
so the trader can start another, which runs to the end."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path
from typing import Any

import requests

from infra.bars.store import BarStore
from infra.bars.synthetic import generate
from infra.bars.universes import load_universe
from tests.support.processes import Server, otp_from_mail_dir, tt_env
from tests.support.waiting import eventually


def _sweep(grid: dict[str, list[Any]]) -> dict[str, Any]:
    return {"strategy": {"base_model": "v3_dip_buyer"}, "universe": "nifty_50", "start_date": "2020-01-01",
            "end_date": "2021-12-31", "starting_capital": 1_000_000, "position_size_pct": 10, "max_positions": 10,
            "grid": grid, "objective": "sharpe", "top_n": 1}


def _children(pid: int) -> set[int]:
    """The processes whose parent is `pid` (Linux /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _signed_in(server: Server, mail_dir: Path, address: str) -> requests.Session:
    s = requests.Session()
    s.headers["X-Requested-With"] = "tradertape"
    skip = len(list(mail_dir.glob("*.eml"))) if mail_dir.exists() else 0
    assert s.post(server.url + "/api/auth/magic-link", json={"email": address}).status_code == 200
    otp = otp_from_mail_dir(mail_dir, address, skip=skip)
    assert s.post(server.url + "/api/auth/verify-link", json={"email": address, "otp": otp}).status_code == 200
    return s


def test_sigkill_mid_sweep_fails_the_job_at_restart_and_leaves_no_workers(tmp_path: Path) -> None:
    env = tt_env(tmp_path, research_workers=2)
    generate(BarStore(tmp_path / "var" / "data"), load_universe("nifty_50"), date(2019, 1, 1), date(2021, 12, 31))
    mail = tmp_path / "var" / "mail"
    server = Server(env, tmp_path / "serve.log").start()
    try:
        s = _signed_in(server, mail, "quant@example.com")
        grid = {"stop_loss_pct": [4, 5, 6, 7, 8, 9, 10, 11], "entry_rules.all.1.right": [25, 30, 35, 40, 45],
                "max_positions": list(range(3, 35, 2))}  # 640 combinations x 50 symbols: several seconds
        r = s.post(server.url + "/api/research/sweeps", json=_sweep(grid))
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]

        def running() -> dict[str, Any] | None:
            job = s.get(f"{server.url}/api/research/sweeps/{job_id}").json()
            assert job["status"] in ("queued", "running"), job  # it must still be running when killed
            return job if job["status"] == "running" and 0 < job["progress"] < 0.75 else None

        eventually(running, "the sweep under way")
        assert server.p is not None
        workers = _children(server.p.pid)
        assert workers, "the sweep's pool has no worker processes"
        server.kill9()
        eventually(lambda: not any(_alive(p) for p in workers), "the pool's workers leaving with the server", 30)

        server = Server(env, tmp_path / "serve.log").start()
        s = _signed_in(server, mail, "quant@example.com")
        started = time.monotonic()
        job = eventually(lambda: (j := s.get(f"{server.url}/api/research/sweeps/{job_id}").json())["status"] == "failed"
                     and j, "the killed job failed", 20)
        assert time.monotonic() - started < 15  # at once, not after the 30 s a silent heartbeat takes
        assert "stopped before it finished" in job["error"] and job["best_run_id"] is None
        listed = s.get(server.url + "/api/research/jobs").json()
        assert [(j["id"], j["status"]) for j in listed if j["id"] == job_id] == [(job_id, "failed")]

        again = s.post(server.url + "/api/research/sweeps", json=_sweep({"stop_loss_pct": [5, 8]}))
        assert again.status_code == 202, again.text  # the one-running-job limit does not hold it up
        done = eventually(lambda: (j := s.get(f"{server.url}/api/research/sweeps/{again.json()['id']}").json())
                      ["status"] in ("done", "failed") and j, "the new sweep finished", 120)
        assert done["status"] == "done" and len(done["results"]) == 2 and done["best_run_id"] is not None
        run = s.get(f"{server.url}/api/backtest/runs/{done['best_run_id']}")
        assert run.status_code == 200
    finally:
        server.stop()
