"""Model-portfolio benchmarks (issue 4 targets):

  scan      one portfolio's after-close scan on nifty_100 (target <= 100 ms): the rule/conviction scan
            alone, and the whole RunPortfolioDay command (load, bars, scan, save events)
  sim       `tradertape sim advance --days 250` with 5 active paper portfolios, as a subprocess
            (target <= 30 s)
  approve   approve + cart place over HTTP on Postgres + Kafka (serve, relay, projector processes);
            signals/s and p99 (target >= 200 signals/s, p99 < 100 ms): all approvals, then every cart at
            once. With --client wrk, then the user's flow: each connection approves --cart signals,
            places that cart, and again; placed signals/s and the p99 of every request

    .venv/bin/python bench/portfolios.py [--only scan|sim|approve] [--concurrency 8]
                                         [--client wrk --seconds 4 --cart 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import httpx
from _harness import login, percentile, platform, wrk_figures  # type: ignore[import-not-found]

from commands import messages as m
from commands.ports import CommandMeta
from infra.bars.market import BarStoreMarket
from infra.bars.store import BarStore
from infra.bars.synthetic import extend, generate
from infra.bars.universes import load_universe
from infra.bootstrap import bootstrap, seed
from tests.conftest import make_settings
from tests.support.processes import tt_env

SYSTEM = CommandMeta(actor="bench")
EVERYTHING = {"all": [{"left": {"ind": "close"}, "op": ">", "right": 0}]}  # every symbol, every day


def _template(platform: object, base_model: str) -> int:
    import json

    from projections.strategies import StrategyFilters, list_strategy_docs

    with platform.db.read() as conn:  # type: ignore[attr-defined]
        body, _ = list_strategy_docs(conn, 0, StrategyFilters(None, True, None, base_model, None), 10, 0)
    return int(json.loads(body)[0]["id"])


def _project(plat: object) -> None:
    from streams.workers import make_projector

    runner = make_projector(plat, "store")  # type: ignore[arg-type]
    runner.create_tables()
    while runner.step():
        pass


def bench_scan() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="tt-bench-scan-"))
    settings = make_settings(tmp)
    generate(BarStore(settings.data_dir), load_universe("nifty_100"), date(2019, 1, 1), date(2026, 1, 1))
    market = BarStoreMarket(settings.data_dir)
    plat = bootstrap(settings, market=market)
    seed(plat)
    _project(plat)
    account = 1
    sid = _template(plat, "v3_dip_buyer")
    pid = plat.bus.handle(m.DeployPortfolio(account, sid, "bench", "paper", 10_000_000, "nifty_100", 5, 20, 2,
                                            auto_approve=True), SYSTEM).value
    from domain.portfolio.aggregate import Portfolio
    pf = plat.store.load(Portfolio, Portfolio.uuid_for(pid))
    assert pf is not None
    day = market.latest_day() or ""
    anchor = market.warmup_start(day)
    market.scan(pf.strategy, "nifty_100", anchor, day)  # warm the bar cache
    scans = []
    for _ in range(30):
        t = time.perf_counter()
        result = market.scan(pf.strategy, "nifty_100", anchor, day)
        scans.append(time.perf_counter() - t)
    days = [d.isoformat() for d in extend(BarStore(settings.data_dir), load_universe("nifty_100"), 40)]
    steps = []
    for d in days:  # whole commands on the following days (the portfolio grows events as it goes)
        t = time.perf_counter()
        plat.bus.handle(m.RunPortfolioDay(pid, d), SYSTEM)
        steps.append(time.perf_counter() - t)
    pf_after = plat.store.load(Portfolio, Portfolio.uuid_for(pid))
    assert pf_after is not None
    print(f"scan nifty_100 v3_dip_buyer: median {statistics.median(scans) * 1000:.1f} ms, "
          f"p95 {percentile(scans, 95) * 1000:.1f} ms ({len(result.candidates)} candidates)")
    print(f"RunPortfolioDay command (load + bars + scan + save): median {statistics.median(steps) * 1000:.1f} ms, "
          f"p95 {percentile(steps, 95) * 1000:.1f} ms over {len(steps)} days "
          f"({len(pf_after.signals)} signals, {len(pf_after.positions)} positions by then)")
    plat.close()


def bench_sim(days: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="tt-bench-sim-"))
    settings = make_settings(tmp)
    generate(BarStore(settings.data_dir), load_universe("nifty_100"), date(2019, 1, 1), date(2026, 1, 1))
    plat = bootstrap(settings)
    seed(plat)
    _project(plat)
    models = ["v3_dip_buyer", "sma_crossover", "momentum_breakout", "bollinger_reversion", "v3_dip_buyer"]
    for i, model in enumerate(models):
        plat.bus.handle(m.DeployPortfolio(1, _template(plat, model), f"p{i}", "paper", 5_000_000, "nifty_100", 10,
                                          10, 3, auto_approve=True, slippage_bps=5), SYSTEM)
    _project(plat)  # the market clock finds portfolios in the read model
    plat.market_clock.run_due()
    _project(plat)
    plat.close()
    env = tt_env(tmp)
    env["TRADERTAPE_DATABASE_URL"] = settings.database_url
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "api.cli", "sim", "advance", "--days", str(days)], env=env, check=True,
                   stdout=subprocess.DEVNULL, cwd=Path(__file__).resolve().parents[1])
    elapsed = time.perf_counter() - t
    print(f"sim advance --days {days} with 5 active paper portfolios (subprocess, end to end): {elapsed:.1f} s")


WRK_STEPS = """
local steps = {%(steps)s}
local headers = {["Cookie"] = "%(cookie)s", ["X-Requested-With"] = "tradertape"}
local json = {["Cookie"] = "%(cookie)s", ["Content-Type"] = "application/json", ["X-Requested-With"] = "tradertape"}
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function init(args)
  mine = steps[tid]
  i = 0
end
function request()  -- a step > 0 approves that signal; < 0 places the cart of portfolio -step
  i = i + 1
  local step = mine[i]
  if step == nil then  -- this connection's signals are all placed: idle on a cheap read
    return wrk.format("GET", "/api/health", headers)
  end
  if step < 0 then
    return wrk.format("POST", "/api/model/cart/place", json, '{"portfolio_id": ' .. -step .. '}')
  end
  return wrk.format("POST", "/api/model/signals/" .. step .. "/approve", headers)
end
"""


def _wrk_steps(base: str, cookies: dict[str, str], steps: list[list[int]], seconds: float) -> dict[str, str]:
    """Run wrk, one thread and connection per step list (WRK_STEPS); its figures (`_harness.wrk_figures`)."""
    cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
    lua_steps = ", ".join("{" + ", ".join(map(str, s)) + "}" for s in steps)
    with tempfile.TemporaryDirectory() as tmp:  # the script holds the session cookie: gone after the run
        script = f"{tmp}/steps.lua"
        Path(script).write_text(WRK_STEPS % {"steps": lua_steps, "cookie": cookie})
        n = len(steps)
        done = subprocess.run(["wrk", f"-t{n}", f"-c{n}", f"-d{int(seconds)}s", "--latency", "--timeout", "30s",
                               "-s", script, base], capture_output=True, text=True, check=True)
    if done.stderr.strip():
        raise SystemExit(done.stderr)
    return wrk_figures(done.stdout)


def _count(base: str, cookies: dict[str, str], status: str, portfolio_ids: list[int]) -> int:
    with httpx.Client(base_url=base, cookies=cookies, timeout=60) as c:
        return sum(int(c.get("/api/model/signals", params={"status": status, "portfolio_id": pid, "limit": 1})
                       .headers["X-Total-Count"]) for pid in portfolio_ids)


def _mixed_wrk(base: str, cookies: dict[str, str], per_pf: dict[int, list[int]], connections: int, cart: int,
               seconds: float) -> None:
    """The user's flow under load: each connection approves `cart` signals of one of its portfolios,
    places that portfolio's cart, and again (its portfolios one after the other). Throughput counts
    placed signals; the latency percentiles cover every request, the approvals and the placements alike."""
    steps: list[list[int]] = [[] for _ in range(connections)]
    for k, (pid, ids) in enumerate(per_pf.items()):
        for at in range(0, len(ids), cart):
            steps[k % connections] += [*ids[at:at + cart], -pid]
    got = _wrk_steps(base, cookies, steps, seconds)
    placed = _count(base, cookies, "placed", list(per_pf))
    if placed >= sum(len(v) for v in per_pf.values()):
        print("  (every signal was placed before the time ran out: the rate below is too low; use fewer seconds)")
    print(f"approve + place, mixed [wrk, {connections} connections, carts of {cart}, {seconds:.0f} s]: "
          f"{placed / seconds:.0f} signals/s placed ({got['rps']} requests/s); every request: p50 {got['p50']}, "
          f"p99 {got['p99']}; non-2xx {got['non2xx']}")


def _approve_wrk(base: str, cookies: dict[str, str], per_pf: dict[int, list[int]], connections: int,
                 seconds: float) -> tuple[float, str, str, int]:
    """Approvals from wrk, one thread and connection per group of portfolios (no version clashes): wrk's
    load costs a fraction of the CPU an httpx client takes from the two cores the platform runs on.
    Returns (approvals/s, p50, p99, non-2xx)."""
    steps: list[list[int]] = [[] for _ in range(connections)]
    for k, ids in enumerate(per_pf.values()):
        steps[k % connections] += ids
    got = _wrk_steps(base, cookies, steps, seconds)
    approved = _count(base, cookies, "in_cart", list(per_pf))
    if approved >= sum(len(v) for v in per_pf.values()):
        print(f"  (every signal was approved before the {seconds:.0f} s ran out: the rate below is too low; "
              "use fewer seconds)")
    return approved / seconds, got["p50"], got["p99"], int(got["non2xx"])


async def _approve_and_place(base: str, cookies: dict[str, str], concurrency: int, mode: str,
                             load_from: str = "python", seconds: float = 4.0, cart: int = 5) -> None:
    # (the web app's header: a cookie-authenticated POST without a JSON body must say it is not cross-site)
    async with httpx.AsyncClient(base_url=base, cookies=cookies, timeout=60, headers={"X-Requested-With": "tradertape"},
                                 limits=httpx.Limits(max_connections=concurrency)) as client:
        for _ in range(200):  # the projector process may still be applying the seeded templates
            r = await client.get("/api/strategies", params={"is_template": True})
            found = [x for x in r.json() if x["base_model"] == "sma_crossover"]
            if found:
                break
            await asyncio.sleep(0.05)
        t = found[0]
        r = await client.post("/api/strategies", json={
            "name": "everything", "base_model": "sma_crossover", "entry_rules": EVERYTHING,
            "exit_rules": t["exit_rules"], "params": {**t["params"], "entry_order": "next_open"}})
        sid = r.json()["id"]
        # wrk: three portfolios per connection (their signals last the whole run), and as many again for
        # the mixed run
        sets = 3 if load_from == "wrk" else 1
        pids = []
        for i in range(concurrency * sets * (2 if load_from == "wrk" else 1)):
            r = await client.post("/api/model/portfolios/deploy", json={
                "strategy_id": sid, "name": f"bench{i}", "capital": 100_000_000, "universe": "nifty_100",
                "position_size_pct": 0.5, "max_positions": 100})
            r.raise_for_status()
            pids.append(r.json()["id"])
        per_pf: dict[int, list[int]] = {}
        for pid in pids:
            r = await client.post("/api/model/scan", json={"portfolio_id": pid})
            r.raise_for_status()
            per_pf[pid] = [s["id"] for s in r.json()["signals"]]
        mixed = {pid: per_pf.pop(pid) for pid in pids[concurrency * sets:]}
        pids = pids[:concurrency * sets]
        total = sum(len(v) for v in per_pf.values())
        latencies: list[float] = []
        errors = 0

        async def approver(ids: list[int]) -> None:  # one portfolio per worker: no version clashes
            nonlocal errors
            for sid_ in ids:
                t0 = time.perf_counter()
                r = await client.post(f"/api/model/signals/{sid_}/approve")
                latencies.append(time.perf_counter() - t0)
                errors += r.status_code != 200

        if load_from == "wrk":
            approve_rate, p50, p99, non2xx = _approve_wrk(base, cookies, per_pf, concurrency, seconds)
            print(f"approve [{mode}, wrk, {concurrency} connections, {seconds:.0f} s]: {approve_rate:.0f} signals/s; "
                  f"p50 {p50}, p99 {p99}; non-2xx {non2xx}")
        else:
            start = time.perf_counter()
            await asyncio.gather(*(approver(ids) for ids in per_pf.values()))
            approve_s = time.perf_counter() - start
            approve_rate = total / approve_s
            print(f"approve [{mode}, concurrency {concurrency}]: {total} signals in {approve_s:.2f} s = "
                  f"{total / approve_s:.0f} signals/s; p50 {percentile(latencies, 50) * 1000:.1f} ms, "
                  f"p99 {percentile(latencies, 99) * 1000:.1f} ms; errors {errors}")
        place_lat: list[float] = []
        placed = 0

        clashes = 0

        async def placer(pid: int) -> None:  # the account's RiskBook serialises carts: 409 -> try again
            nonlocal placed, clashes
            t0 = time.perf_counter()
            while True:
                r = await client.post("/api/model/cart/place", json={"portfolio_id": pid})
                if r.status_code != 409:
                    break
                clashes += 1
            place_lat.append(time.perf_counter() - t0)
            assert r.status_code == 200, r.text
            placed += len(r.json()["placed"])

        start = time.perf_counter()
        await asyncio.gather(*(placer(pid) for pid in pids))
        place_s = time.perf_counter() - start
        print(f"cart place [{mode}, {len(pids)} carts]: {placed} signals in {place_s:.2f} s = "
              f"{placed / place_s:.0f} signals/s; slowest cart {max(place_lat) * 1000:.0f} ms; {clashes} retried 409s")
        # each signal is approved, then placed: the time per signal is the sum of both phases' times per signal
        print(f"approve + place combined: {1 / (1 / approve_rate + place_s / placed):.0f} signals/s")
        if mixed:
            _mixed_wrk(base, cookies, mixed, concurrency, cart, seconds)


def bench_approve(concurrency: int, mode: str, client: str, seconds: float, cart: int) -> None:
    with platform(mode) as (base, tmp):
        generate(BarStore(tmp / "var" / "data"), load_universe("nifty_100"), date(2024, 1, 1), date(2026, 1, 1))
        cookies = login(base, tmp, "bench-approve@example.com")
        asyncio.run(_approve_and_place(base, cookies, concurrency, mode, client, seconds, cart))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", choices=["scan", "sim", "approve"], default=None)
    ap.add_argument("--days", type=int, default=250)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--mode", choices=["kafka", "embedded"], default="kafka", help="for approve")
    ap.add_argument("--client", choices=["python", "wrk"], default="python",
                    help="approve from httpx (every signal) or from wrk (for --seconds; Debian package wrk)")
    ap.add_argument("--seconds", type=float, default=4.0, help="with --client wrk")
    ap.add_argument("--cart", type=int, default=5, help="with --client wrk: signals per cart in the mixed run")
    args = ap.parse_args()
    if args.only in (None, "scan"):
        bench_scan()
    if args.only in (None, "sim"):
        bench_sim(args.days)
    if args.only in (None, "approve"):
        bench_approve(args.concurrency, args.mode, args.client, args.seconds, args.cart)


if __name__ == "__main__":
    main()
