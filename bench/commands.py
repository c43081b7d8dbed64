"""Strategy create/update commands per second over HTTP, with p50/p99 latency including the
read-your-writes wait. Embedded (SQLite, one process) and Postgres+Kafka (separate processes).

    .venv/bin/python bench/commands.py [--mode embedded|kafka|both] [--n 2000] [--concurrency 8] [--client wrk]

The default client is Python (httpx), which costs about 3 ms of CPU per request on this machine: a third
of a core at 100 commands/s, taken from the two cores the platform under test runs on. `--client wrk`
drives the same mix (alternate create and full-replacement update) from wrk and a Lua script.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import tempfile
import time

import httpx
from _harness import login, platform, summary, wrk_figures  # type: ignore[import-not-found]

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


WRK_SCRIPT = """
local ids = {%(ids)s}
local headers = {["Content-Type"] = "application/json", ["Cookie"] = "%(cookie)s"}
local n = 0
function request()
  n = n + 1
  local body = string.format('%(body)s', n)
  if n %% 2 == 0 then
    return wrk.format("POST", "/api/strategies", headers, body)
  end
  return wrk.format("PUT", "/api/strategies/" .. ids[(math.floor(n / 2) %% #ids) + 1], headers, body)
end
"""


def run_wrk(base: str, cookies: dict[str, str], seconds: float, concurrency: int) -> None:
    """The same alternate create/update mix from wrk (Debian package `wrk`): its latency figures include
    the read-your-writes wait, since a command's response leaves only after it."""
    with httpx.Client(base_url=base, cookies=cookies) as c:
        ids = [c.post("/api/strategies", json=dict(BODY, name=f"w{i}")).json()["id"] for i in range(64)]
    body = json.dumps(dict(BODY, name="wrk %d")).replace("\\", "\\\\").replace("'", "\\'")
    cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
    with tempfile.TemporaryDirectory() as tmp:  # the script holds the session cookie: gone after the run
        script = f"{tmp}/mix.lua"
        with open(script, "w") as f:
            f.write(WRK_SCRIPT % {"ids": ", ".join(map(str, ids)), "cookie": cookie, "body": body})
        done = subprocess.run(["wrk", "-t1", f"-c{concurrency}", f"-d{int(seconds)}s", "--latency", "--timeout",
                               "30s", "-s", script, base], capture_output=True, text=True, check=True)
    if done.stderr.strip():  # a Lua error: wrk would go on sending its default GET
        raise SystemExit(done.stderr)
    out = done.stdout
    with httpx.Client(base_url=base, cookies=cookies) as c:  # every other request created a strategy
        total = int(c.get("/api/strategies", params={"limit": 1}).headers["X-Total-Count"])
    got = wrk_figures(out)
    print(f"commands [wrk, concurrency {concurrency}, {seconds:.0f}s]: {got['rps']}/s; p50 {got['p50']}, "
          f"p99 {got['p99']}; non-2xx {got['non2xx']}; strategies now {total}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["embedded", "kafka", "both"], default="both")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--workers", type=int, default=1, help="API worker processes")
    ap.add_argument("--client", choices=["python", "wrk"], default="python")
    ap.add_argument("--seconds", type=float, default=15, help="with --client wrk: how long to run")
    ap.add_argument("--log-level", default=None, help="e.g. DEBUG: relay/projector step timings in the logs")
    args = ap.parse_args()
    env = {"TRADERTAPE_LOG_LEVEL": args.log_level} if args.log_level else None
    for mode in (["embedded", "kafka"] if args.mode == "both" else [args.mode]):
        with platform(mode, env, workers=args.workers) as (base, tmp):
            print(f"logs in {tmp}")
            cookies = login(base, tmp, f"bench-{mode}@example.com")
            asyncio.run(run(base, cookies, 100, args.concurrency))  # warm-up
            if args.client == "wrk":
                run_wrk(base, cookies, args.seconds, args.concurrency)
                continue
            lat, elapsed, errors = asyncio.run(run(base, cookies, args.n, args.concurrency))
            summary(f"commands [{mode}, concurrency {args.concurrency}, workers {args.workers}]", lat, elapsed,
                    {"errors": errors})


if __name__ == "__main__":
    main()
