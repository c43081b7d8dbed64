"""The outbox relay: publishes every stored event, in store order, to the Kafka topic.

At-least-once: the last published position is recorded only after Kafka acknowledged the batch
(idempotent producer, acks=all), and under load at most every RECORD_EVERY seconds (a restart then
publishes again what followed the recorded position, at most that long of events); consumers
deduplicate by position. If Kafka is down the relay keeps
retrying with backoff while the API goes on accepting commands; it catches up when Kafka returns.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from typing import Any

import sqlalchemy as sa
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from infra.store.chain import RunningSeal
from infra.store.db import Database, Listener
from infra.store.eventstore import SqlEventStore
from streams.loop import StepLoop, status_metadata, status_reporter
from streams.sources import KAFKA_RETRY

log = logging.getLogger(__name__)

relay_metadata = sa.MetaData()
relay_positions = sa.Table(
    "relay_positions", relay_metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
)
# Per partition, the offset and store position of the last event the relay published there (written with
# the relay's position): how far each partition's consumers have to go (/api/health, /metrics).
relay_partitions = sa.Table(
    "relay_partitions", relay_metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("partition", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("kafka_offset", sa.BigInteger, nullable=False),
    sa.Column("position", sa.BigInteger, nullable=False),
)


def ensure_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000, **KAFKA_RETRY)
    try:
        if topic in admin.list_topics():
            return
        try:
            admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1,
                                          topic_configs={"retention.ms": "-1", "retention.bytes": "-1"})])
        except TopicAlreadyExistsError:
            pass
    finally:
        admin.close()


class KafkaRelay:
    RECORD_EVERY = 0.25  # seconds between position writes while events keep coming

    def __init__(self, store: SqlEventStore, db: Database, bootstrap: str, topic: str, partitions: int,
                 name: str = "kafka", batch_size: int = 1000) -> None:
        self.store = store
        self.db = db
        self.bootstrap = bootstrap
        self.topic = topic
        self.partitions = partitions
        self.name = name
        self.batch_size = batch_size
        self._producer: KafkaProducer | None = None
        self._topic_ready = False
        self._position: int | None = None  # acknowledged by Kafka
        self._recorded: int | None = None  # written to relay_positions
        self._recorded_at = 0.0
        self._published: dict[int, tuple[int, int]] = {}  # partition -> (offset, position) not yet recorded
        self.seal = RunningSeal(store.chain) if store.chain is not None else None
        # Postgres: each insert NOTIFYs the store's channel, so an idle relay waits for that (looking again
        # every half second as a safety net) instead of polling every 20 ms and finding a new event 10 ms
        # late on average
        channel = store.insert_channel
        self._listener = Listener(db.url, channel) if channel and not db.is_sqlite else None
        self.loop = StepLoop("relay", self.step, on_error=self._reset_after_error,
                             idle_wait=0.02 if self._listener is None else 0.5,
                             idle=None if self._listener is None else self._wait_for_inserts,
                             report=status_reporter(db, "relay"))

    def create_tables(self) -> None:
        relay_metadata.create_all(self.db.writer)
        status_metadata.create_all(self.db.writer)

    def position(self) -> int:
        with self.db.read() as conn:
            v = conn.execute(sa.select(relay_positions.c.position)
                             .where(relay_positions.c.name == self.name)).scalar_one_or_none()
        return int(v or 0)

    def _record_position(self, position: int) -> None:
        with self.db.write(durable=False) as conn:  # a lost position only republishes (consumers dedupe)
            n = conn.execute(sa.update(relay_positions).where(relay_positions.c.name == self.name)
                             .values(position=position)).rowcount
            if not n:
                conn.execute(sa.insert(relay_positions).values(name=self.name, position=position))
            for part, (offset, pos) in sorted(self._published.items()):
                t = relay_partitions
                if not conn.execute(sa.update(t).where(t.c.name == self.name, t.c.partition == part)
                                    .values(kafka_offset=offset, position=pos)).rowcount:
                    conn.execute(sa.insert(t).values(name=self.name, partition=part, kafka_offset=offset,
                                                     position=pos))
        self._published = {}

    def _record_if_behind(self, every: float) -> None:
        now = time.monotonic()
        if self._position is not None and self._position != self._recorded and now - self._recorded_at >= every:
            self._record_position(self._position)
            self._recorded, self._recorded_at = self._position, now

    def _ensure_producer(self) -> KafkaProducer:
        if not self._topic_ready:
            ensure_topic(self.bootstrap, self.topic, self.partitions)
            self._topic_ready = True
        if self._producer is None:
            self._producer = KafkaProducer(
                bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=True, linger_ms=2,
                batch_size=256 * 1024, max_in_flight_requests_per_connection=5, retries=5,
                request_timeout_ms=15000, max_block_ms=15000, **KAFKA_RETRY,
            )
        return self._producer

    def connect(self) -> None:
        """Create the topic and the producer now (the loop would do it at the first event)."""
        self._ensure_producer()

    def _drop_producer(self) -> None:
        if self._producer is not None:
            try:
                self._producer.close(timeout=1)
            except Exception:
                log.debug("closing producer failed", exc_info=True)
            self._producer = None

    def step(self) -> int:
        """Publish the next batch; returns how many events were published."""
        t0 = time.perf_counter()
        if self._position is None:  # this relay alone writes its row: read it once, then keep it here
            self._position = self.position()
            self._recorded = self._position
        after = self._position
        envs = self.store.read_plain(after, self.batch_size)
        if not envs:
            if self.seal is not None:
                self.seal.flush()
            self._record_if_behind(0.0)
            return 0
        if self.seal is not None:  # every event on the topic carries its chain hashes
            hashes = self.seal.hashes(after, envs)
            envs = [dataclasses.replace(e, prev_hash=hashes[e.position][0], hash=hashes[e.position][1])
                    for e in envs]
        t1 = time.perf_counter()
        producer = self._ensure_producer()
        futures: list[Any] = []
        for env in envs:
            futures.append(producer.send(
                self.topic, key=env.kafka_key, value=env.to_json(),
                headers=[("type", env.type.encode()), ("event_id", env.event_id.encode())],
            ))
        producer.flush(timeout=30)
        for env, f in zip(envs, futures, strict=True):
            meta = f.get(timeout=30)  # raises if any send failed: the position is then not advanced
            self._published[meta.partition] = (meta.offset, env.position)
        t2 = time.perf_counter()
        self._position = envs[-1].position
        if self.seal is not None and self.seal.due():
            self.seal.flush()
        self._record_if_behind(self.RECORD_EVERY)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("relayed %d events up to %d: read %.1f ms, publish %.1f ms, position %.1f ms", len(envs),
                      envs[-1].position, (t1 - t0) * 1e3, (t2 - t1) * 1e3, (time.perf_counter() - t2) * 1e3)
        return len(envs)

    GATHER = 0.002  # seconds

    def _wait_for_inserts(self, timeout: float) -> None:
        """Until an insert is notified, then GATHER more: woken at every single insert under load, the
        relay published one event per batch and spent a third more CPU per event."""
        assert self._listener is not None
        if self._listener.wait(timeout):
            time.sleep(self.GATHER)

    def _reset_after_error(self) -> None:
        self._drop_producer()
        self._position = self._recorded = None
        self._published = {}
        self._topic_ready = False
        if self.seal is not None:
            self.seal.reset()

    def run(self, stop: threading.Event) -> None:
        self.loop.run(stop)
        try:
            if self.seal is not None:
                self.seal.flush()
            self._record_if_behind(0.0)
        except Exception:  # the database is gone: the next start publishes that stretch again
            log.warning("could not record the relay position at stop", exc_info=True)
        self._drop_producer()
        if self._listener is not None:
            self._listener.close()
