"""Prometheus metrics counted in this process (served with the pipeline's figures at `/metrics`).

Counters live in their own registry, not the library's global one: tests build many apps in one
process. With several API worker processes each counts its own requests (the pipeline figures, read
from the database at every scrape, are the same in all)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

COMMANDS = Counter("tradertape_commands", "Commands handled, by command type and outcome (ok, refused, error)",
                   ["command", "outcome"], registry=REGISTRY)
COMMAND_SECONDS = Histogram(
    "tradertape_command_seconds", "Time to handle and store a command (without the read-your-writes wait)",
    ["command"], registry=REGISTRY,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
READ_YOUR_WRITES_TIMEOUTS = Counter(
    "tradertape_read_your_writes_timeouts",
    "Commands answered before the read models showed their effect (the wait timed out)", registry=REGISTRY)


def command_done(command: str, outcome: str, started: float) -> None:
    """Count a command and its latency (`started`: its time.perf_counter())."""
    COMMANDS.labels(command, outcome).inc()
    COMMAND_SECONDS.labels(command).observe(time.perf_counter() - started)
