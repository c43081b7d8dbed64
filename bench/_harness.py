"""Shared bench harness: start the platform as real processes on loopback and sign a user in."""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.processes import Proc, Server, tt_env
from tests.support.services import KafkaBroker, PostgresServer


@contextmanager
def platform(mode: str, workers_env: dict[str, str] | None = None, workers: int = 1) -> Iterator[tuple[str, Path]]:
    """Yields (base URL, tmp dir) of a running platform: 'embedded' (SQLite, one process) or 'kafka'
    (Postgres + Tansu broker; serve, relay and projector as separate processes)."""
    tmp = Path(tempfile.mkdtemp(prefix="tt-bench-"))
    procs: list[Proc] = []
    pg = broker = None
    url = None
    try:
        if mode == "kafka":
            pg = PostgresServer().start()
            url = pg.create_database()
            broker = KafkaBroker().start()
            env = tt_env(tmp, database_url=url, kafka_bootstrap=broker.bootstrap,
                         kafka_topic=f"bench.{uuid.uuid4().hex[:6]}", kafka_partitions=3)
        else:
            env = tt_env(tmp)
        # settings from the caller's environment reach the platform (TRADERTAPE_API_THREADS=2 bench/...)
        env.update({k: v for k, v in os.environ.items() if k.startswith("TRADERTAPE_") and k not in env})
        env.update(workers_env or {})
        server = Server(env, tmp / "serve.log", ["--workers", str(workers)])
        procs.append(server)
        server.start()
        if mode == "kafka":
            procs.append(Proc(["relay"], env, tmp / "relay.log").start())
            procs.append(Proc(["projector"], env, tmp / "projector.log").start())
        yield server.url, tmp
    finally:
        for p in procs:
            p.stop()
        if broker:
            broker.stop()
        if pg and url:
            pg.drop_database(url)


def login(base: str, tmp: Path, email: str) -> dict[str, str]:
    s = requests.Session()
    s.post(base + "/api/auth/magic-link", json={"email": email}).raise_for_status()
    otp = None
    for _ in range(100):
        for f in sorted((tmp / "var" / "mail").glob("*.eml"), reverse=True):
            text = f.read_text()
            if f"To: {email}" in text:
                otp = re.search(r"code: (\d{6})", text).group(1)  # type: ignore[union-attr]
                break
        if otp:
            break
        time.sleep(0.05)
    r = s.post(base + "/api/auth/verify-link", json={"email": email, "otp": otp})
    r.raise_for_status()
    return {"kite_session": s.cookies["kite_session"]}


WRK_FIGURES = {"rps": r"Requests/sec:\s+([\d.]+)", "p50": r"50%\s+([\d.]+\w+)", "p99": r"99%\s+([\d.]+\w+)",
               "non2xx": r"Non-2xx or 3xx responses: (\d+)"}


def wrk_figures(out: str) -> dict[str, str]:
    """Requests/s, p50, p99 and non-2xx count from wrk's --latency output ("?" if missing, non-2xx "0")."""
    got = {}
    for key, rx in WRK_FIGURES.items():
        m = re.search(rx, out)
        got[key] = m.group(1) if m else ("0" if key == "non2xx" else "?")
    return got


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))
    return ordered[k]


def summary(name: str, latencies: list[float], elapsed: float, extra: dict[str, Any] | None = None) -> None:
    n = len(latencies)
    print(f"{name}: {n} requests in {elapsed:.2f}s = {n / elapsed:.0f}/s; "
          f"p50 {percentile(latencies, 50) * 1000:.1f} ms, p99 {percentile(latencies, 99) * 1000:.1f} ms"
          + (f"; {extra}" if extra else ""))
