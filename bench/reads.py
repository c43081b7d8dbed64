"""GET /api/strategies?limit=50 requests per second and p99 with 32 concurrent clients.

    .venv/bin/python bench/reads.py [--mode embedded|kafka] [--seconds 10] [--clients 32]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import time

import httpx
from _harness import login, platform, summary, wrk_figures  # type: ignore[import-not-found]


async def run(base: str, cookies: dict[str, str], seconds: float, clients: int) -> tuple[list[float], float, int]:
    latencies: list[float] = []
    errors = 0
    async with httpx.AsyncClient(base_url=base, cookies=cookies, timeout=30,
                                 limits=httpx.Limits(max_connections=clients)) as client:
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                t = time.perf_counter()
                r = await client.get("/api/strategies", params={"limit": 50})
                latencies.append(time.perf_counter() - t)
                if r.status_code != 200 or len(r.json()) != 50:
                    errors += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return latencies, time.perf_counter() - start, errors


def run_wrk(base: str, cookies: dict[str, str], seconds: float, clients: int) -> None:
    """wrk (Debian package `wrk`) generates load far more cheaply than a Python client, which matters
    when client and server share two cores."""
    cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
    out = subprocess.run(
        ["wrk", "-t2", f"-c{clients}", f"-d{int(seconds)}s", "--latency", "-H", f"Cookie: {cookie}",
         f"{base}/api/strategies?limit=50"], capture_output=True, text=True, check=True).stdout
    got = wrk_figures(out)
    print(f"reads [wrk, {clients} connections, {seconds:.0f}s]: {got['rps']} req/s; p50 {got['p50']}, "
          f"p99 {got['p99']}; non-2xx {got['non2xx']}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["embedded", "kafka"], default="embedded")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    with platform(args.mode, workers=args.workers) as (base, tmp):
        cookies = login(base, tmp, "bench-reads@example.com")
        with httpx.Client(base_url=base, cookies=cookies) as c:
            for i in range(80):
                c.post("/api/strategies", json={"name": f"s{i}", "base_model": "sma_crossover"}).raise_for_status()
        asyncio.run(run(base, cookies, 1, args.clients))  # warm-up
        if shutil.which("wrk"):
            run_wrk(base, cookies, args.seconds, args.clients)
        lat, elapsed, errors = asyncio.run(run(base, cookies, args.seconds, args.clients))
        summary(f"reads [python client, {args.mode}, {args.clients} clients]", lat, elapsed, {"errors": errors})


if __name__ == "__main__":
    main()
