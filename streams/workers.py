"""Builds the background workers (projector, relay) and the read-your-writes waiter for a platform."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence

from kafka.partitioner.default import murmur2

from domain.aggregate import SYSTEM_ACCOUNT_ID
from infra.bootstrap import Platform, schema_lock
from projections.base import min_position
from projections.registry import all_projections
from streams.relay import KafkaRelay, ensure_topic
from streams.runner import ProjectionRunner
from streams.sources import STORE_SHARD, EventSource, KafkaSource, StoreSource, kafka_shard

log = logging.getLogger(__name__)


def make_source(platform: Platform, kind: str, partitions: Sequence[int] | None = None) -> EventSource:
    s = platform.settings
    if kind == "kafka":
        if not s.kafka_bootstrap:
            raise SystemExit("TRADERTAPE_KAFKA_BOOTSTRAP is not set: there is no Kafka to read from")
        _warm_up(lambda: ensure_topic(s.kafka_bootstrap or "", s.kafka_topic, s.kafka_partitions))
        return KafkaSource(s.kafka_bootstrap, s.kafka_topic, partitions)
    return StoreSource(platform.store)


def make_projector(platform: Platform, kind: str | None = None,
                   partitions: Sequence[int] | None = None) -> ProjectionRunner:
    kind = kind or ("store" if platform.settings.embedded_transport else "kafka")
    runner = ProjectionRunner(platform.db, all_projections(), make_source(platform, kind, partitions))
    with schema_lock(platform.db):
        runner.create_tables()
    return runner


def make_relay(platform: Platform) -> KafkaRelay:
    s = platform.settings
    if not s.kafka_bootstrap:
        raise SystemExit("TRADERTAPE_KAFKA_BOOTSTRAP is not set: the relay publishes to Kafka")
    relay = KafkaRelay(platform.store, platform.db, s.kafka_bootstrap, s.kafka_topic, s.kafka_partitions)
    with schema_lock(platform.db):
        relay.create_tables()
    _warm_up(relay.connect)
    return relay


def _warm_up(action: Callable[[], object]) -> None:
    """Create the topic / connect the producer at start, so the first command does not wait for it;
    Kafka being down here is not fatal (the loops retry)."""
    try:
        action()
    except Exception as exc:
        log.warning("Kafka not ready at start (%s); will retry", exc)


def partition_for(account_id: int | None, partitions: int) -> int:
    key = str(account_id if account_id is not None else SYSTEM_ACCOUNT_ID).encode()
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class ReadYourWrites:
    """Waits (bounded) until every projection has applied a command's position."""

    def __init__(self, platform: Platform, runner: ProjectionRunner | None) -> None:
        self.platform = platform
        self.runner = runner
        self.names = [p.name for p in all_projections()]

    def _shard(self, account_id: int | None) -> str:
        s = self.platform.settings
        if s.embedded_transport:
            return STORE_SHARD
        return kafka_shard(partition_for(account_id, s.kafka_partitions))

    def reached(self, accounts: Iterable[int], position: int) -> bool:
        shards = {self._shard(a) for a in accounts} or {self._shard(SYSTEM_ACCOUNT_ID)}
        with self.platform.db.read() as conn:
            return all(min_position(conn, self.names, shard) >= position for shard in shards)

    def wait(self, accounts: Iterable[int], position: int | None, timeout: float | None = None) -> bool:
        """True once every projection applied `position` on the shards of `accounts` (the owners of
        what the command saved); False after the timeout (the response then goes out anyway)."""
        if position is None:
            return True
        accounts = list(accounts)
        timeout = self.platform.settings.read_your_writes_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        delay = 0.003
        while True:
            # The in-process runner is the fast path; the tracking rows also count, because another
            # worker process (or a separate projector) may be the one that applied the position.
            if self.runner is not None and self.runner.wait_applied(position, delay):
                return True
            if self.reached(accounts, position):
                return True
            if time.monotonic() >= deadline:
                return False
            if self.runner is None:
                time.sleep(delay)
            delay = min(delay * 1.5, 0.02)
