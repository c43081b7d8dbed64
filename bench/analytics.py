"""GET /api/analytics/pnl?group_by=month over 1,000,000 trades (embedded mode, real server).

    .venv/bin/python bench/analytics.py [--trades 1000000] [--requests 50]

The trades are written straight into the imported-trades read model (as the projection would, without
recording a million events first: this measures the read path), the account is marked changed, the first
GET builds the analytics snapshot (FIFO over every trade; timed separately), then `--requests` GETs are
timed. Target: <= 200 ms.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import requests
import sqlalchemy as sa
from _harness import login, percentile, platform  # type: ignore[import-not-found]

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from imports import rows  # type: ignore[import-not-found]

from infra.store.db import Database
from projections.imports import analytics_changes, imported_trades


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trades", type=int, default=1_000_000)
    ap.add_argument("--requests", type=int, default=50)
    args = ap.parse_args()
    with platform("embedded", {"PYTHONFAULTHANDLER": "1"}) as (base, tmp):
        cookies = login(base, tmp, "bench-analytics@example.com")
        me = requests.get(base + "/api/auth/me", cookies=cookies).json()["id"]
        db = Database.from_url(f"sqlite:///{tmp}/var/tradertape.db")
        t = time.perf_counter()
        batch = []
        for i, r in enumerate(rows(args.trades)):
            batch.append({"trade_key": f"NSE:EQ:{r[2]}:{r[10]}", "account_id": me, "batch_id": 1, "trade_id": r[10],
                          "order_id": r[11], "symbol": r[0], "isin": r[1], "exchange": "NSE", "segment": "EQ",
                          "series": "EQ", "trade_date": r[2], "executed_at": r[12], "side": r[6],
                          "quantity": float(r[8]), "price": float(r[9])})
            if len(batch) == 50_000 or i == args.trades - 1:
                with db.write() as conn:
                    conn.execute(sa.insert(imported_trades), batch)
                batch = []
        with db.write() as conn:
            conn.execute(sa.insert(analytics_changes).values(account_id=me, position=10**12))
        print(f"seeded {args.trades} trades in {time.perf_counter() - t:.1f}s")
        t = time.perf_counter()
        first = requests.get(base + "/api/analytics/pnl", params={"group_by": "month"}, cookies=cookies, timeout=3600)
        first.raise_for_status()
        print(f"first GET (builds the snapshot: FIFO over {args.trades} trades): {time.perf_counter() - t:.1f}s, "
              f"{len(first.json())} months")
        lat = []
        with requests.Session() as s:
            s.cookies.update(cookies)
            for _ in range(args.requests):
                t = time.perf_counter()
                r = s.get(base + "/api/analytics/pnl", params={"group_by": "month"}, timeout=60)
                lat.append(time.perf_counter() - t)
                assert r.status_code == 200 and r.json() == first.json()
        print(f"GET /api/analytics/pnl?group_by=month over {args.trades} trades: "
              f"p50 {percentile(lat, 50) * 1000:.1f} ms, "
              f"p99 {percentile(lat, 99) * 1000:.1f} ms, max {max(lat) * 1000:.1f} ms (target <= 200 ms)")


if __name__ == "__main__":
    main()
