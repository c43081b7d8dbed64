"""Strategy create/update commands per second over HTTP, with p50/p99 latency including the
read-your-writes wait. Embedded (SQLite, one process) and Postgres+Kafka (separate processes).

    .venv/bin/python bench/commands.py [--mode embedded|kafka|both] [--n 2000] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import time

import httpx
from _harness import login, platform, summary  # type: ignore[import-not-found]

BODY = {"name": "bench", "description": "", "base_model": "sma_crossover",
        "entry_rules": {"all": [{"left": {"ind": "sma", "period": 10}, "op": "crosses_above",
                                 "right": {"ind": "sma", "period": 30}}]},
        "exit_rules": {"stop_loss_pct": 5, "target_pct": 10, "trailing_stop_pct": None, "max_hold_days": 20,
                       "exit_when": None},
        "params": {"entry_order": "next_open", "entry_validity_days": 1, "limit_offset_pct": 0,
                   "fast": 10, "slow": 30},
        "is_active": True}


async def run(base: str, cookies: dict[str, str], n: int, concurrency: int) -> tuple[list[float], float, int]:
    latencies: list[float] = []
    errors = 0
    ids: list[int] = []
    async with httpx.AsyncClient(base_url=base, cookies=cookies, timeout=30,
                                 limits=httpx.Limits(max_connections=concurrency)) as client:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(n):
            queue.put_nowait(i)

        async def worker() -> None:
            nonlocal errors
            while True:
                try:
                    i = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                t = time.perf_counter()
                if i % 2 == 0 or not ids:  # alternate create and full-replacement update
                    r = await client.post("/api/strategies", json=dict(BODY, name=f"b{i}"))
                    if r.status_code == 201:
                        ids.append(r.json()["id"])
                else:
                    r = await client.put(f"/api/strategies/{ids[i % len(ids)]}", json=dict(BODY, name=f"u{i}"))
                latencies.append(time.perf_counter() - t)
                if r.status_code not in (200, 201, 409):
                    errors += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return latencies, time.perf_counter() - start, errors


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["embedded", "kafka", "both"], default="both")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--workers", type=int, default=1, help="API worker processes")
    ap.add_argument("--log-level", default=None, help="e.g. DEBUG: relay/projector step timings in the logs")
    args = ap.parse_args()
    env = {"TRADERTAPE_LOG_LEVEL": args.log_level} if args.log_level else None
    for mode in (["embedded", "kafka"] if args.mode == "both" else [args.mode]):
        with platform(mode, env, workers=args.workers) as (base, tmp):
            print(f"logs in {tmp}")
            cookies = login(base, tmp, f"bench-{mode}@example.com")
            asyncio.run(run(base, cookies, 100, args.concurrency))  # warm-up
            lat, elapsed, errors = asyncio.run(run(base, cookies, args.n, args.concurrency))
            summary(f"commands [{mode}, concurrency {args.concurrency}, workers {args.workers}]", lat, elapsed,
                    {"errors": errors})


if __name__ == "__main__":
    main()
