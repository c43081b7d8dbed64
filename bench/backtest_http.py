"""End-to-end `POST /api/backtest/run` over HTTP: v3_dip_buyer, nifty_100, 2020-01-01..2026-01-01,
max_positions 20, max_per_sector 2 (the issue's headline case).

    .venv/bin/python bench/backtest_http.py [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import date

import requests
from _harness import login, platform  # type: ignore[import-not-found]

from infra.bars.store import BarStore
from infra.bars.synthetic import generate
from infra.bars.universes import load_universe


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    with platform("embedded") as (base, tmp):
        generate(BarStore(tmp / "var" / "data"), load_universe("nifty_100"), date(2018, 1, 1), date(2026, 1, 2))
        s = requests.Session()
        s.cookies.update(login(base, tmp, "bench-bt@example.com"))
        tpl = next(t["id"] for t in s.get(base + "/api/strategies", params={"is_template": True}).json()
                   if t["base_model"] == "v3_dip_buyer")
        body = {"strategy_id": tpl, "universe": "nifty_100", "start_date": "2020-01-01", "end_date": "2026-01-01",
                "starting_capital": 10_000_000, "position_size_pct": 10, "max_positions": 20, "max_per_sector": 2,
                "slippage_bps": 5}
        first = time.perf_counter()
        s.post(base + "/api/backtest/run", json=body).raise_for_status()
        first_ms = (time.perf_counter() - first) * 1000
        totals, engine = [], []
        for _ in range(args.runs):
            t = time.perf_counter()
            r = s.post(base + "/api/backtest/run", json=body)
            r.raise_for_status()
            totals.append((time.perf_counter() - t) * 1000)
            engine.append(r.json()["diagnostics"]["elapsed_ms"])
        p95 = sorted(totals)[int(0.95 * len(totals))]
        print(f"POST /api/backtest/run v3_dip_buyer nifty_100 2020-2026: first {first_ms:.0f} ms (pool start); "
              f"then median {statistics.median(totals):.0f} ms end to end (p95 {p95:.0f} ms), "
              f"engine median {statistics.median(engine):.0f} ms; {r.json()['summary']['total_trades']} trades")


if __name__ == "__main__":
    main()
