"""Benchmark of research jobs (issue 21's figures).

    .venv/bin/python bench/research.py [--combinations 1000] [--wf-windows 10] [--wf-combinations 200]
                                       [--workers 2] [--skip-dask] [--skip-walk-forward] [--quick]

`--quick` checks that every part runs (40 combinations, walk-forward 3 x 10): its figures say nothing
about the targets. Progress goes to standard error every 15 seconds, so a long run shows it is alive.

Prints:
1. a sweep of `v3_dip_buyer` over NIFTY 100, 2020-01-01..2026-01-01, with `--combinations` combinations
   (a seeded random sample over stop, target, RSI threshold, max positions) on the local pool of
   `--workers` processes: wall time, backtests a second (target: 1,000 in <= 60 s on 2 cores);
2. the same sweep on a Dask cluster started here on loopback (`dask scheduler` and `dask worker` processes,
   each worker single-threaded), with 1 worker and then 2: wall time of each and the speed-up (target:
   >= 1.8x), that the results equal the local run's, and each worker's memory (RSS) after the sweep
   (target: <= 1 GB);
3. walk-forward of `--wf-windows` windows x `--wf-combinations` combinations on the local pool (target:
   10 x 200 in <= 2 minutes).

The bars are the synthetic NIFTY 100 history (`infra.bars.synthetic.generate`) written to a temporary bar
store. Run it on a quiet machine: every figure is wall-clock time, and a busy neighbour's load is in it
(the load average is printed before and after).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backtest.research.executors import DaskExecutor, Executor, LocalExecutor
from backtest.research.jobs import JobOutcome, PlanContext, RunContext
from backtest.research.sweeps import SWEEP, SweepRequest
from backtest.research.walkforward import WALK_FORWARD, WalkForwardRequest
from infra.bars.store import BarStore
from infra.bars.synthetic import generate
from infra.bars.universes import load_universe

DASK = str(Path(sys.executable).with_name("dask"))


def _body(samples: int, seed: int = 21) -> dict[str, Any]:
    return {"strategy": {"base_model": "v3_dip_buyer"}, "universe": "nifty_100", "start_date": "2020-01-01",
            "end_date": "2026-01-01", "starting_capital": 10_000_000, "position_size_pct": 9.5, "max_positions": 10,
            "max_per_sector": 3, "slippage_bps": 5,
            "random": {"stop_loss_pct": [3, 15], "target_pct": [5, 30], "entry_rules.all.1.right": [20, 45],
                       "max_positions": [5, 20], "samples": samples, "seed": seed},
            "objective": "sharpe", "min_trades": 20}


def _progress(label: str) -> Any:
    last = [time.monotonic()]
    start = last[0]

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 15:
            last[0] = now
            print(f"   … {label}: {done}/{total} in {now - start:.0f} s (load {_load()})", file=sys.stderr, flush=True)

    return report


def _mark(ok: bool) -> str:
    return "met" if ok else "NOT met"


def _cpu() -> float:
    """CPU seconds of this process and its finished (waited-for) children: the local pool's workers."""
    import resource

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _run(kind: Any, req: Any, data_dir: Path, executor: Executor) -> tuple[JobOutcome, float, int]:
    plan = kind.plan(PlanContext(data_dir, 0, lambda _id: None, 1_000_000), req)
    ctx = RunContext(executor, _progress(f"{kind.name} on {executor.name}"))
    ctx.total = plan.total
    t0, cpu0 = time.perf_counter(), _cpu()
    try:
        outcome = kind.run(ctx, plan)
    finally:
        executor.close()
    secs = time.perf_counter() - t0
    if isinstance(executor, LocalExecutor):  # CPU time does not depend on the neighbours' load
        cpu = _cpu() - cpu0
        print(f"   CPU time (coordinator and pool): {cpu:.1f} s, {cpu / plan.total:.3f} s a backtest; on "
              f"{executor.workers} idle cores about {cpu / executor.workers:.1f} s (load {_load()})")
    return outcome, secs, plan.total


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


@contextmanager
def _cluster(workers: int, tmp: Path) -> Iterator[str]:
    sched_file = tmp / f"scheduler-{workers}.json"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    procs = [subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                               "--scheduler-file", str(sched_file)], cwd=tmp, **quiet)]  # type: ignore[call-overload]
    try:
        while not sched_file.exists():
            time.sleep(0.1)
        address = json.loads(sched_file.read_text())["address"]
        for _ in range(workers):
            procs.append(subprocess.Popen([DASK, "worker", address, "--nthreads", "1", "--host", "127.0.0.1",
                                           "--no-dashboard", "--memory-limit", "2GB"], cwd=tmp,
                                          **quiet))  # type: ignore[call-overload]
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(workers, timeout=120)
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            p.wait(30)


def _proc_cpu() -> float:
    """CPU seconds of this (worker) process so far."""
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return float(r.ru_utime + r.ru_stime)


def _rss() -> int:
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--combinations", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--wf-windows", type=int, default=10)
    ap.add_argument("--wf-combinations", type=int, default=200)
    ap.add_argument("--skip-dask", action="store_true")
    ap.add_argument("--skip-walk-forward", action="store_true")
    ap.add_argument("--quick", action="store_true", help="small sizes: check that it runs, not the targets")
    args = ap.parse_args()
    if args.quick:
        args.combinations, args.wf_windows, args.wf_combinations = 40, 3, 10
    full = (args.combinations, args.wf_windows, args.wf_combinations) == (1000, 10, 200)

    tmp = Path(tempfile.mkdtemp(prefix="tt-bench-research-"))
    data_dir = tmp / "data"
    t0 = time.perf_counter()
    generate(BarStore(data_dir), load_universe("nifty_100"), date(2018, 1, 1), date(2026, 1, 1))
    print(f"bars: synthetic NIFTY 100 2018-01-01..2026-01-01 written in {time.perf_counter() - t0:.1f} s; "
          f"cpus {os.cpu_count()}; load {_load()}")

    req = SweepRequest(**_body(args.combinations))
    local, secs, n = _run(SWEEP, req, data_dir, LocalExecutor(args.workers))
    target = f"target 1,000 in <= 60 s on 2 cores: {_mark(secs <= 60)}" if full else "not the full size"
    print(f"1. sweep, {n} combinations, local pool of {args.workers}: {secs:.1f} s ({n / secs:.1f} backtests/s; "
          f"{target}); best {local.tables['results'][0]['params']} sharpe {local.tables['results'][0]['objective']}")

    if not args.skip_dask:
        from distributed import Client

        times, busiest = {}, {}
        for workers in (1, 2):
            with _cluster(workers, tmp) as address:
                with Client(address, timeout=30) as client:
                    cpu0 = client.run(_proc_cpu)
                remote, secs, _ = _run(SWEEP, req, data_dir, DaskExecutor(address))
                times[workers] = secs
                with Client(address, timeout=30) as client:
                    rss = client.run(_rss)
                    cpu = {w: v - cpu0[w] for w, v in client.run(_proc_cpu).items()}
            busiest[workers] = max(cpu.values())
            same = remote.tables == local.tables and remote.summary == local.summary
            mem = ", ".join(f"{v / 2**20:.0f} MB" for v in rss.values())
            print(f"2. sweep on Dask, {workers} single-threaded worker(s): {secs:.1f} s; results equal the local "
                  f"run's: {same}; peak RSS per worker: {mem} (target <= 1 GB: "
                  f"{_mark(max(rss.values()) <= 2**30)}); CPU per worker: "
                  f"{', '.join(f'{v:.1f} s' for v in cpu.values())}")
        speedup = times[1] / times[2]
        print(f"   speed-up 2 workers vs 1: {speedup:.2f}x (target >= 1.8x: {_mark(speedup >= 1.8)}); from CPU time "
              f"(each worker on its own idle core): {busiest[1] / busiest[2]:.2f}x")

    if not args.skip_walk_forward:
        wf = WalkForwardRequest(**{**_body(args.wf_combinations, seed=5), "start_date": "2018-06-01",
                                   "windows": args.wf_windows, "mode": "rolling", "in_sample_ratio": 0.75})
        out, secs, n = _run(WALK_FORWARD, wf, data_dir, LocalExecutor(args.workers))
        print(f"3. walk-forward, {args.wf_windows} windows x {args.wf_combinations} combinations ({n} backtests), "
              f"local pool of {args.workers}: {secs:.1f} s "
              f"({f'target <= 120 s: {_mark(secs <= 120)}' if full else 'not the full size'}); walk-forward efficiency "
              f"{out.summary['walk_forward_efficiency']}, OOS CAGR {out.summary['out_of_sample']['cagr']}")
    print(f"load after: {_load()}")


if __name__ == "__main__":
    main()
