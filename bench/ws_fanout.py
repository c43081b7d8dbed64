"""Tick WebSocket fan-out: N clients x M symbols each, simulated feed at R ticks/s per symbol, against
`tradertape serve` (one process, embedded). Prints delivery latency (server tick timestamp -> client
receipt, same machine clock) and per-client tick counts (starvation: the least-served client's share).

    .venv/bin/python bench/ws_fanout.py [--clients 500] [--symbols 50] [--rate 2] [--seconds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import websockets
from _harness import login, percentile  # type: ignore[import-not-found]

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from infra.bars.store import BarStore
from infra.bars.synthetic import generate
from infra.bars.universes import load_universe
from tests.support.processes import Server, tt_env

COMPRESSION: str | None = "deflate"


async def client(url: str, cookie: str, symbols: list[str], start_at: float, stop_at: float,
                 latencies: list[float], counts: list[int], idx: int) -> None:
    async with websockets.connect(url, additional_headers={"Cookie": cookie}, max_size=2**24,
                                  open_timeout=60, ping_interval=None, compression=COMPRESSION) as ws:
        await ws.send(json.dumps({"action": "subscribe", "symbols": symbols, "mode": "quote"}))
        while True:
            raw = await ws.recv()
            now = time.time()
            if now >= stop_at:
                return
            if now < start_at or not raw.startswith('{"type":"ticks"'):
                continue
            # every tick of a simulated step carries the step's timestamp: read the first one and count the
            # ticks without decoding the whole message (keeps the measuring client off the critical path)
            at = raw.index('"timestamp":"') + 13
            sent = datetime.fromisoformat(raw[at:raw.index('"', at)]).timestamp()
            n = raw.count('"ltp":')
            latencies.extend([now - sent] * n)
            counts[idx] += n


async def run(url: str, cookie: str, universe: list[str], n: int, m: int, warmup: float,
              seconds: float) -> tuple[list[float], list[int]]:
    """Connect every client, let `warmup` seconds pass (connections and subscriptions settle), then
    record `seconds` of deliveries."""
    latencies: list[float] = []
    counts = [0] * n
    start_at = time.time() + warmup
    stop_at = start_at + seconds
    tasks = [asyncio.create_task(client(url, cookie, [f"NSE:{s}" for s in random.Random(i).sample(universe, m)],
                                        start_at, stop_at, latencies, counts, i)) for i in range(n)]
    await asyncio.gather(*tasks)
    return latencies, counts


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=500)
    ap.add_argument("--symbols", type=int, default=50)
    ap.add_argument("--rate", type=float, default=2.0, help="ticks per second per symbol")
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--warmup", type=float, default=8.0)
    ap.add_argument("--no-compression", action="store_true", help="do not offer permessage-deflate")
    args = ap.parse_args()
    global COMPRESSION
    COMPRESSION = None if args.no_compression else "deflate"
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    tmp = Path(tempfile.mkdtemp(prefix="tt-bench-ws-"))
    universe = load_universe("nifty_100")
    generate(BarStore(tmp / "var" / "data"), universe, datetime(2024, 1, 1).date(), datetime(2024, 6, 28).date())
    env = tt_env(tmp, scheduler="false", tick_feed="simulated", tick_always_open="true",
                 tick_interval=str(1.0 / args.rate))
    server = Server(env, tmp / "serve.log").start()
    try:
        cookie = f"kite_session={login(server.url, tmp, 'bench@example.com')['kite_session']}"
        url = server.url.replace("http://", "ws://") + "/api/ws/ticks"
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
        latencies, counts = asyncio.run(run(url, cookie, list(universe.symbols), args.clients, args.symbols,
                                               args.warmup, args.seconds))
    finally:
        server.stop()
    expected = args.symbols * args.rate * args.seconds
    least, most = min(counts), max(counts)
    print(f"ws fan-out: {args.clients} clients x {args.symbols} symbols at {args.rate:g} ticks/s/symbol "
          f"({len(universe.symbols)}-symbol universe), {args.seconds:g}s measured")
    print(f"  ticks delivered {len(latencies)} ({len(latencies) / args.seconds:,.0f}/s); expected per client "
          f"{expected:.0f}, got min {least} / median {sorted(counts)[len(counts) // 2]} / max {most} "
          f"(least-served client {least / expected * 100:.0f}% of expected; starved clients "
          f"(<50%): {sum(c < expected / 2 for c in counts)})")
    p50, p99 = percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000
    print(f"  delivery latency p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {max(latencies) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
