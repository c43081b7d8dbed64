"""A sweep and a walk-forward on a real Dask cluster (a scheduler and two single-threaded workers, each its own
process on loopback, started with the `dask` command line) give exactly the local pool's results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from backtest.research.executors import DaskExecutor, LocalExecutor
from backtest.research.jobs import PlanContext, RunContext
from backtest.research.sweeps import SWEEP, SweepRequest
from backtest.research.walkforward import WALK_FORWARD, WalkForwardRequest
from backtest.research.worker import cache_stats
from infra.bars.store import BarStore
from infra.bars.synthetic import generate
from infra.bars.universes import load_universe

SYMBOLS = ["RELIANCE", "TCS", "INFY", "HDFCBANK", "ICICIBANK", "ITC", "SBIN", "LT"]
DASK = str(Path(sys.executable).with_name("dask"))


def _wait_for(path: Path, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path} did not appear")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("dask")
    sched_file = tmp / "scheduler.json"
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    procs = [subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                               "--scheduler-file", str(sched_file)], cwd=tmp, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        _wait_for(sched_file)
        address = json.loads(sched_file.read_text())["address"]
        for _ in range(2):
            procs.append(subprocess.Popen([DASK, "worker", address, "--nthreads", "1", "--nworkers", "1",
                                           "--host", "127.0.0.1", "--no-dashboard", "--memory-limit", "1GB"],
                                          cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bars")
    generate(BarStore(root), load_universe("nifty_50"), date(2019, 1, 1), date(2021, 12, 31))
    return root


def _body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "strategy": {"base_model": "v3_dip_buyer"}, "symbols": SYMBOLS, "start_date": "2020-01-01",
        "end_date": "2021-12-31", "starting_capital": 1_000_000, "slippage_bps": 5,
        "random": {"stop_loss_pct": [3, 12], "entry_rules.all.1.right": [25, 45], "max_positions": [3, 12],
                   "samples": 24, "seed": 11},
        "objective": {"sharpe": 1, "calmar": 0.5},
    }
    body.update(changes)
    return body


def _run(kind: Any, req: Any, data_dir: Path, executor: Any) -> Any:
    plan = kind.plan(PlanContext(data_dir, 1, lambda _id: None, 5000), req)
    seen: list[int] = []
    ctx = RunContext(executor, lambda done, total: seen.append(done))
    ctx.total = plan.total
    try:
        outcome = kind.run(ctx, plan)
    finally:
        executor.close()
    assert seen and seen == sorted(seen) and seen[-1] <= plan.total
    return outcome


def test_sweep_on_dask_equals_the_local_pool(cluster: str, data_dir: Path) -> None:
    req = SweepRequest(**_body())
    local = _run(SWEEP, req, data_dir, LocalExecutor(2))
    dask = DaskExecutor(cluster)
    assert dask.workers == 2 and dask.name == f"dask:{cluster}"
    remote = _run(SWEEP, req, data_dir, DaskExecutor(cluster))
    assert remote.tables["results"] == local.tables["results"]
    assert remote.summary == local.summary and remote.record == local.record
    assert len(local.tables["results"]) == 24

    # both workers ran combinations, each with one indicator cache for the window: the series it computed
    # are the distinct indicators of the sample (SMA 200 and RSI 14 for entries and conviction), not one set
    # per combination
    from distributed import Client

    with Client(cluster, timeout=30) as client:
        stats = client.run(cache_stats)
    assert len(stats) == 2
    assert all(s["windows"] == 1 for s in stats.values())
    assert all(0 < s["series_computed"] <= 4 for s in stats.values())


def test_walk_forward_on_dask_equals_the_local_pool(cluster: str, data_dir: Path) -> None:
    req = WalkForwardRequest(**_body(start_date="2019-09-02", windows=3, random={
        "stop_loss_pct": [3, 12], "entry_rules.all.1.right": [25, 45], "samples": 6, "seed": 3}))
    local = _run(WALK_FORWARD, req, data_dir, LocalExecutor(2))
    remote = _run(WALK_FORWARD, req, data_dir, DaskExecutor(cluster))
    assert remote.tables == local.tables and remote.summary == local.summary
    assert len(local.tables["results"]) == 3 and local.tables["oos_equity"]
