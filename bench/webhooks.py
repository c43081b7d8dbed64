"""Inbound alerts (issue 20): 1,000 TradingView webhook alerts a minute, accepted with p99 <= 100 ms and no
lost or duplicated signal.

A real `tradertape serve` on loopback (embedded SQLite by default; `--mode kafka`: Postgres, relay,
projector), synthetic nifty_100 history, 10 paper portfolios with one TradingView hook each. Alerts are sent
open-loop at the given rate (each at its planned time by one of `--workers` sending threads), each a distinct
(portfolio, symbol) buy, and a share of them sent twice (a retry with the same `alert_id`). Afterwards every
portfolio's signals are counted: each distinct alert must be exactly one signal.

    .venv/bin/python bench/webhooks.py                 # 1,000 alerts/min for 60 s (embedded)
    .venv/bin/python bench/webhooks.py --seconds 30 --mode kafka
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
from datetime import date

import httpx
from _harness import login, percentile, platform  # type: ignore[import-not-found]

from infra.bars.store import BarStore
from infra.bars.synthetic import generate
from infra.bars.universes import load_universe

PORTFOLIOS = 10


async def _setup(client: httpx.AsyncClient) -> list[tuple[int, str]]:
    """(portfolio id, hook path) of PORTFOLIOS paper portfolios with 100 free slots each."""
    for _ in range(200):  # the seeded templates may still be projecting
        templates = (await client.get("/api/strategies", params={"is_template": True})).json()
        if templates:
            break
        await asyncio.sleep(0.05)
    out = []
    for i in range(PORTFOLIOS):
        r = await client.post("/api/model/portfolios/deploy", json={
            "strategy_id": templates[0]["id"], "name": f"alerts{i}", "capital": 100_000_000, "universe": "nifty_100",
            "position_size_pct": 0.5, "max_positions": 100})
        r.raise_for_status()
        pid = r.json()["id"]
        r = await client.post("/api/hooks", json={"portfolio_id": pid, "source": "tradingview", "name": f"tv{i}"})
        r.raise_for_status()
        out.append((pid, "/api/webhooks/" + r.json()["token"]))
    return out


async def _run(base: str, cookies: dict[str, str], per_minute: int, seconds: float, retry_share: float,
               workers: int) -> None:
    symbols = list(load_universe("nifty_100").symbols)
    async with httpx.AsyncClient(base_url=base, cookies=cookies, timeout=60,
                                 limits=httpx.Limits(max_connections=200)) as admin:
        hooks = await _setup(admin)
    plan: list[tuple[int, str, dict[str, object]]] = []  # (portfolio, path, alert), in sending order
    count = int(per_minute * seconds / 60)
    for n in range(count):
        pid, path = hooks[n % len(hooks)]
        symbol = symbols[(n // len(hooks)) % len(symbols)]
        plan.append((pid, path, {"symbol": f"NSE:{symbol}", "action": "buy", "price": 1000.0 + n % 7,
                                 "alert_id": f"{pid}-{symbol}"}))
    every = max(1, round(1 / retry_share)) if retry_share > 0 else 0
    sends = [(t, *plan[t]) for t in range(count)]
    if every:  # a retry of an earlier alert, sent a little later, in place of nothing (the rate includes it)
        # every `every`-th round over the hooks is sent twice: each hook gets the same share of retries
        sends += [(t + 0.5, *plan[t]) for t in range(count) if (t // len(hooks)) % every == 0]
    sends.sort(key=lambda s: s[0])
    interval = 60.0 / per_minute
    latencies: list[float] = []  # request sent -> answer
    lateness: list[float] = []  # planned send time -> answer (counts any queueing on the sending side too)
    status: dict[int | str, int] = {}
    first: dict[str, int] = {}  # alert id -> the signal its first answer named
    repeats: list[tuple[str, int | None]] = []
    lock = threading.Lock()
    start = time.perf_counter() + 0.5
    queue: list[tuple[float, str, dict[str, object]]] = [(start + slot * interval, path, alert)
                                                         for slot, _, path, alert in sends]
    queue.reverse()

    def worker() -> None:
        # the alert service has no session: a client without cookies; one keep-alive connection per worker,
        # closed before the server's 5 s keep-alive ends
        with httpx.Client(base_url=base, timeout=60, limits=httpx.Limits(keepalive_expiry=2)) as client:
            while True:
                with lock:
                    if not queue:
                        return
                    at, path, alert = queue.pop()
                time.sleep(max(0.0, at - time.perf_counter()))
                t0 = time.perf_counter()
                try:
                    r = client.post(path, json=alert)
                except httpx.TransportError as exc:  # counted, never hidden: an alert service would retry
                    with lock:
                        status[type(exc).__name__] = status.get(type(exc).__name__, 0) + 1
                    continue
                done = time.perf_counter()
                body = r.json() if r.status_code == 200 else {}
                with lock:
                    latencies.append(done - t0)
                    lateness.append(done - at)
                    status[r.status_code] = status.get(r.status_code, 0) + 1
                    if not body:
                        continue
                    sig = body["signals"][0]["id"] if body["signals"] else None
                    if body["duplicate"]:
                        repeats.append((str(alert["alert_id"]), sig))
                    elif sig is not None:
                        first[str(alert["alert_id"])] = sig

    t_begin = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t_begin
    async with httpx.AsyncClient(base_url=base, cookies=cookies, timeout=60) as admin:
        stored: dict[int, list[dict[str, object]]] = {}
        for pid, _ in hooks:
            r = await admin.get("/api/model/signals", params={"portfolio_id": pid, "limit": 500})
            stored[pid] = r.json()
    distinct = {str(a["alert_id"]) for _, _, a in plan}
    signals = [s for rows in stored.values() for s in rows]
    per_key = {(s["portfolio_id"], s["symbol"]) for s in signals}
    lost = len(distinct) - len(first)
    duplicated = len(signals) - len(per_key)
    wrong_repeat = sum(1 for key, sig in repeats if first.get(key) != sig)
    print(f"webhooks: {len(sends)} requests ({len(distinct)} distinct alerts, {len(sends) - len(distinct)} retries) "
          f"at {per_minute}/min in {elapsed:.1f} s; status {dict(sorted(status.items(), key=str))}")
    print(f"  latency p50 {percentile(latencies, 50) * 1000:.1f} ms, p90 {percentile(latencies, 90) * 1000:.1f} ms, "
          f"p99 {percentile(latencies, 99) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms (target p99 <= 100 ms); "
          f"from the planned send time p99 {percentile(lateness, 99) * 1000:.1f} ms")
    print(f"  signals stored {len(signals)} for {len(distinct)} distinct alerts; alerts without a signal {lost}; "
          f"duplicated signals {duplicated}; retries answered with another signal {wrong_repeat}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["embedded", "kafka"], default="embedded")
    ap.add_argument("--per-minute", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--workers", type=int, default=16, help="sending threads (each sends at planned times)")
    ap.add_argument("--retry-share", type=float, default=0.1, help="share of alerts sent a second time")
    args = ap.parse_args()
    if args.per_minute * args.seconds / 60 > PORTFOLIOS * 100:
        raise SystemExit(f"at most {PORTFOLIOS * 100} distinct alerts (10 portfolios x 100 symbols)")
    with platform(args.mode) as (base, tmp):
        generate(BarStore(tmp / "var" / "data"), load_universe("nifty_100"), date(2024, 1, 1), date(2026, 1, 1))
        cookies = login(base, tmp, "bench-webhooks@example.com")
        asyncio.run(_run(base, cookies, args.per_minute, args.seconds, args.retry_share, args.workers))


if __name__ == "__main__":
    main()
