"""Import of a 100,000-row Zerodha tradebook XLSX, end to end, against a real server (embedded mode).

    .venv/bin/python bench/imports.py [--rows 100000]

Prints: building the file (not timed), POST /api/uploads/tradebook until the import report arrives,
then the first GET /api/analytics/summary (which builds the analytics snapshot: FIFO over every trade)
and a second one. Target: <= 15 s for the POST.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import requests
from _harness import login, platform  # type: ignore[import-not-found]

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.brokerfiles import tradebook_xlsx


def rows(n: int, seed: int = 1) -> list[list[Any]]:
    """A plausible tradebook: 200 symbols over ~3 years, sells never exceed what is held."""
    rnd = random.Random(seed)
    d0 = date(2021, 1, 1)
    symbols = [f"SYM{i:03d}" for i in range(200)]
    held = dict.fromkeys(symbols, 0)
    out = []
    for i in range(n):
        s = symbols[rnd.randrange(len(symbols))]
        day = (d0 + timedelta(days=i * 1000 // n)).isoformat()
        if held[s] > 0 and rnd.random() < 0.45:
            q = rnd.randint(1, held[s])
            held[s] -= q
            side = "sell"
        else:
            q = rnd.randint(1, 50)
            held[s] += q
            side = "buy"
        out.append([s, f"INE{int(s[3:]):06d}A01", day, "NSE", "EQ", "EQ", side, "false", q,
                    round(rnd.uniform(100, 3000), 2), str(10_000_000 + i), str(1_300_000_000_000_000 + i),
                    f"{day}T10:{(i // 60) % 60:02d}:{i % 60:02d}"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    args = ap.parse_args()
    cache = Path(f"/tmp/tt-bench-tradebook-{args.rows}.xlsx")
    if not cache.exists():
        t = time.perf_counter()
        cache.write_bytes(tradebook_xlsx(rows(args.rows)))
        print(f"built {cache} ({cache.stat().st_size / 2**20:.1f} MB) in {time.perf_counter() - t:.1f}s")
    data = cache.read_bytes()
    with platform("embedded", {"PYTHONFAULTHANDLER": "1"}) as (base, tmp):
        try:
            cookies = login(base, tmp, "bench-imports@example.com")
            t = time.perf_counter()
            r = requests.post(base + "/api/uploads/tradebook", cookies=cookies,
                              files=[("files[]", ("tradebook.xlsx", data))], timeout=600)
            post = time.perf_counter() - t
            r.raise_for_status()
            rep = r.json()
            print(f"POST /api/uploads/tradebook: {rep['rows_read']} rows read, {rep['imported']} imported "
                  f"in {post:.2f}s (target <= 15 s)")
            t = time.perf_counter()
            s = requests.get(base + "/api/analytics/summary", cookies=cookies, timeout=600).json()
            first = time.perf_counter() - t
            print(f"first GET /api/analytics/summary (builds the snapshot): {first:.2f}s; "
                  f"trades {s['trades']}, closed {s['closed_trades']}, realized {s['realized_pnl']}")
            print(f"end to end (upload + analytics ready): {post + first:.2f}s")
            t = time.perf_counter()
            requests.get(base + "/api/analytics/summary", cookies=cookies, timeout=600).raise_for_status()
            print(f"second GET /api/analytics/summary: {(time.perf_counter() - t) * 1000:.0f} ms")
            t = time.perf_counter()
            again = requests.post(base + "/api/uploads/tradebook", cookies=cookies,
                                  files=[("files[]", ("tradebook.xlsx", data))], timeout=600).json()
            print(f"re-upload: imported {again['imported']}, duplicates {again['duplicates']} "
                  f"in {time.perf_counter() - t:.2f}s")
        except requests.ConnectionError:
            print("the server went away; the end of its log:")
            print("\n".join((tmp / "serve.log").read_text(errors="replace").splitlines()[-40:]))
            raise


if __name__ == "__main__":
    main()
