"""Event sources for projectors: the store's notification log (embedded) or the Kafka topic.

Both yield (shard, kafka_offset, envelope) items; the runner deduplicates by position per shard, so
the same projection code runs unchanged on either source.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from kafka import KafkaConsumer, TopicPartition

from infra.store.eventstore import SqlEventStore
from projections.envelope import Envelope

# Every Kafka client here: while the broker is down, give up a bootstrap after 5 s and wait at most 1 s
# between reconnects, so that the caller's own loop (streams/loop.py: backoff up to 5 s, the failure shown
# by /api/health) retries -- kafka-python's defaults (30 s bootstrap, reconnect backoff growing to 30 s)
# kept a relay or projector away for half a minute after Kafka was back.
KAFKA_RETRY: dict[str, int] = {"reconnect_backoff_max_ms": 1000, "bootstrap_timeout_ms": 5000}

log = logging.getLogger(__name__)

STORE_SHARD = "store"


@dataclass(frozen=True)
class Item:
    shard: str
    offset: int | None
    envelope: Envelope


Tracking = Callable[[], dict[str, tuple[int, int | None]]]


class EventSource(Protocol):
    def shards(self) -> Sequence[str]: ...

    def fetch(self, tracking: Tracking, max_items: int) -> list[Item]:
        """Next items after what `tracking()` (shard -> (position, kafka offset)) says was applied; a
        source that keeps its own read position calls it only when it has to (re)position."""
        ...

    def reset(self) -> None:
        """Forget in-memory read positions (after a failed transaction) so the next fetch re-reads."""
        ...

    def close(self) -> None: ...


class StoreSource:
    """The store's notification log. Projections need no hashes, so events are read plain; the hash
    chain is sealed here when the log is idle and at least every `seal_every` seconds under load (one
    transaction for many events, instead of one per batch)."""

    def __init__(self, store: SqlEventStore, seal_every: float = 0.25, seals: bool = True) -> None:
        """`seals=False`: another reader of the store in this process seals it (the embedded notifier beside
        the projector), so this one does not contend for the write lock to do it again."""
        self.store = store
        self.seal_every = seal_every
        self.seals = seals
        self._sealed_at = 0.0

    def shards(self) -> Sequence[str]:
        return [STORE_SHARD]

    def fetch(self, tracking: Tracking, max_items: int) -> list[Item]:
        after = tracking().get(STORE_SHARD, (0, None))[0]
        envs = self.store.read_plain(after, max_items)
        now = time.monotonic()
        if self.seals and self.store.chain is not None and (not envs or now - self._sealed_at >= self.seal_every):
            self._sealed_at = now
            self.store.chain.seal()
        return [Item(STORE_SHARD, None, env) for env in envs]

    def reset(self) -> None:
        pass

    def close(self) -> None:
        pass


def kafka_shard(partition: int) -> str:
    return f"kafka:{partition}"


class KafkaSource:
    """Explicit partition assignment; offsets live in the projector's own tracking rows. `fetch` long-polls
    (up to 100 ms). Each fetch request waits at most 5 ms at the broker: Tansu holds a fetch for its whole
    wait even when records arrive meanwhile, and at 20 ms a lone command's read-your-writes wait was 2-3 ms
    longer (p50 14.0 -> 11.8 ms); under load the batches are as large either way (commands/s unchanged)."""

    def __init__(self, bootstrap: str, topic: str, partitions: Sequence[int] | None = None) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self._wanted = list(partitions) if partitions is not None else None
        self._consumer: KafkaConsumer | None = None
        self._positioned = False

    def _ensure(self) -> KafkaConsumer:
        if self._consumer is None:
            self._consumer = KafkaConsumer(
                bootstrap_servers=self.bootstrap, enable_auto_commit=False, group_id=None,
                fetch_max_wait_ms=5, max_poll_records=1000, auto_offset_reset="earliest",
                request_timeout_ms=30000, **KAFKA_RETRY,
            )
            self._positioned = False
        return self._consumer

    def partitions(self) -> list[int]:
        consumer = self._ensure()
        found = consumer.partitions_for_topic(self.topic)
        if not found:
            return []
        return sorted(p for p in found if self._wanted is None or p in self._wanted)

    def shards(self) -> Sequence[str]:
        return [kafka_shard(p) for p in self.partitions()]

    def fetch(self, tracking: Tracking, max_items: int) -> list[Item]:
        consumer = self._ensure()
        if not self._positioned:  # the consumer keeps its position from here on
            parts = self.partitions()
            if not parts:
                return []
            tps = [TopicPartition(self.topic, p) for p in parts]
            consumer.assign(tps)
            applied = tracking()
            for tp in tps:
                last = applied.get(kafka_shard(tp.partition), (0, None))[1]
                if last is None:
                    consumer.seek_to_beginning(tp)
                else:
                    consumer.seek(tp, last + 1)
            self._positioned = True
        batch = consumer.poll(timeout_ms=100, max_records=max_items)
        items: list[Item] = []
        for tp, records in batch.items():
            for rec in records:
                items.append(Item(kafka_shard(tp.partition), rec.offset, Envelope.from_json(rec.value)))
        return items

    def end_offsets(self) -> dict[int, int]:
        """Per partition, the offset the next message will get (as of now)."""
        tps = [TopicPartition(self.topic, p) for p in self.partitions()]
        if not tps:
            return {}
        return {tp.partition: int(off) for tp, off in self._ensure().end_offsets(tps).items()}

    def reset(self) -> None:
        self._positioned = False

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None


def offsets_upto(bootstrap: str, topic: str, cutoff: int, chunk: int = 1000, timeout: float = 60.0) -> dict[int, int]:
    """Per partition of the topic, the offset of its last message whose store position is at most
    `cutoff` (partitions with none are left out). Read backwards from the end a chunk at a time: after a
    rebuild up to about the head that message is near the end. (The relay publishes in store order and a
    restarted relay publishes again from its recorded position, so every message after that offset is of
    a later position.)"""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                             fetch_max_wait_ms=50, max_poll_records=chunk, request_timeout_ms=30000,
                             **KAFKA_RETRY)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        if not tps:
            return {}
        begins, ends = consumer.beginning_offsets(tps), consumer.end_offsets(tps)
        out: dict[int, int] = {}
        for tp in tps:
            hi = int(ends[tp])
            while hi > int(begins[tp]) and tp.partition not in out:
                lo = max(int(begins[tp]), hi - chunk)
                consumer.assign([tp])
                consumer.seek(tp, lo)
                found: list[int] = []
                deadline = time.monotonic() + timeout
                while consumer.position(tp) < hi:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"reading {topic} partition {tp.partition} at offset {lo} timed out")
                    for rec in consumer.poll(timeout_ms=200).get(tp, []):
                        if rec.offset < hi and json.loads(rec.value)["position"] <= cutoff:
                            found.append(rec.offset)
                if found:
                    out[tp.partition] = max(found)
                hi = lo
        return out
    finally:
        consumer.close()
