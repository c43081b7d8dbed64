"""Builds the background workers (projector, relay) and the read-your-writes waiter for a platform."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence

import sqlalchemy as sa
from kafka.partitioner.default import murmur2

from commands.bus import CommandResult
from domain.aggregate import SYSTEM_ACCOUNT_ID
from domain.errors import DomainError
from infra.bootstrap import Platform, schema_lock
from infra.runtime.telemetry import READ_YOUR_WRITES_TIMEOUTS
from infra.runtime.workgate import WorkGate
from infra.store.db import PROJECTED_CHANNEL, Listener
from projections.base import projection_tracking
from projections.registry import all_projections
from streams.relay import KafkaRelay, ensure_topic, relay_positions
from streams.runner import ProjectionRunner
from streams.sources import STORE_SHARD, EventSource, KafkaSource, StoreSource, kafka_shard, offsets_upto

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
    wake = platform.store.insert_channel if kind == "kafka" else None
    runner = ProjectionRunner(platform.db, all_projections(), make_source(platform, kind, partitions),
                              wake_channel=wake)
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


def relay_position(platform: Platform) -> int:
    """The position up to which the relay has published every event (0 if it never ran)."""
    try:
        with platform.db.read() as conn:
            v = conn.execute(sa.select(relay_positions.c.position)
                             .where(relay_positions.c.name == "kafka")).scalar_one_or_none()
    except sa.exc.DBAPIError:  # no relay table yet
        return 0
    return int(v or 0)


def rebuild_read_models(platform: Platform, runner: ProjectionRunner, kind: str, head: int | None = None,
                        cover: bool = True, wait_relay: float = 60.0) -> tuple[int, int, int]:
    """Rebuild `runner`'s read models from the store or the topic up to the store's head; returns
    (events applied, the position covered, the head). From Kafka the topic must hold every event up to
    the head: the relay is waited for (up to `wait_relay` seconds); if it is still behind, the rebuild
    covers what it published (less than the head: the caller says so). `cover`: leave tracking for
    both sources (every Kafka partition and the store), so that a projector of either kind resumes
    right after the rebuild (False for a scratch database)."""
    s = platform.settings
    head = platform.store.max_position() if head is None else head
    cutoff = head
    if kind == "kafka":
        deadline = time.monotonic() + wait_relay
        while (published := relay_position(platform)) < head and time.monotonic() < deadline:
            time.sleep(0.2)
        cutoff = min(head, published)
    partitions: list[int] = list(range(s.kafka_partitions)) if cover and s.kafka_bootstrap else []
    find = None
    if cover and s.kafka_bootstrap and kind == "store":
        bootstrap, topic = s.kafka_bootstrap, s.kafka_topic

        def find(upto: int) -> dict[int, int]:
            try:
                return offsets_upto(bootstrap, topic, upto)
            except Exception as exc:  # the projector then reads each partition from its start, skipping
                log.warning("could not read the topic's offsets (%s): a Kafka projector will re-read every "
                            "partition from the start (skipping what the rebuild applied)", exc)
                return {}
    expected = platform.store.count_upto(cutoff) if kind == "kafka" else None
    n = runner.rebuild(cutoff, partitions, find, expected=expected)
    return n, cutoff, head


def partition_for(account_id: int | None, partitions: int) -> int:
    key = str(account_id if account_id is not None else SYSTEM_ACCOUNT_ID).encode()
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class ReadYourWrites:
    """Waits (bounded) until every projection has applied a command's position.

    With an in-process projector the runner's own counter is the fast path (woken the moment it
    applies), and the tracking rows are consulted only every `DB_CHECK` seconds (another worker process
    may have applied it). Without one (Kafka: a separate projector), one shared poller reads the
    tracking rows for every waiting request instead of each request querying on its own: on Postgres
    when the projector's commit NOTIFYs (LISTEN), on SQLite every POLL seconds."""

    DB_CHECK = 0.1
    POLL = 0.004

    def __init__(self, platform: Platform, runner: ProjectionRunner | None, gate: WorkGate | None = None) -> None:
        """`gate`: the API's work gate, whose turn a request gives back while it waits for the projector."""
        self.platform = platform
        self.runner = runner
        self.gate = gate or WorkGate()
        self.names = [p.name for p in all_projections()]
        self._cond = threading.Condition()
        self._known: dict[str, int] = {}  # shard -> position every projection has applied there
        self._pending: list[tuple[set[str], int, threading.Event]] = []  # (shards, position, woken)
        self._poller: threading.Thread | None = None

    def _shard(self, account_id: int | None) -> str:
        s = self.platform.settings
        if s.embedded_transport:
            return STORE_SHARD
        return kafka_shard(partition_for(account_id, s.kafka_partitions))

    def _shards(self, accounts: Iterable[int]) -> set[str]:
        return {self._shard(a) for a in accounts} or {self._shard(SYSTEM_ACCOUNT_ID)}

    def _read_positions(self) -> dict[str, int]:
        with self.platform.db.read() as conn:
            rows = conn.execute(sa.select(projection_tracking.c.projection, projection_tracking.c.shard,
                                          projection_tracking.c.position)
                                .where(projection_tracking.c.projection.in_(self.names))).all()
        per_shard: dict[str, dict[str, int]] = {}
        for r in rows:
            per_shard.setdefault(r.shard, {})[r.projection] = int(r.position)
        return {shard: min((got.get(n, 0) for n in self.names), default=0) for shard, got in per_shard.items()}

    def reached(self, accounts: Iterable[int], position: int) -> bool:
        known = self._read_positions()
        return all(known.get(shard, 0) >= position for shard in self._shards(accounts))

    def _poll_loop(self) -> None:
        db = self.platform.db
        # Postgres: each projector commit NOTIFYs the positions it reached, so the tracking rows are read
        # only when no notification came for DB_CHECK (a safety net) or the listener reconnected;
        # SQLite has no notifications: poll every POLL seconds.
        listener = None if db.is_sqlite else Listener(db.url, PROJECTED_CHANNEL)
        if listener is not None:
            listener.wait(0)  # LISTEN before the first read: no commit after that read goes unheard
        positions: dict[str, int] | None = None  # None: read the tracking rows
        while True:
            with self._cond:
                if not self._pending:
                    self._cond.wait(1.0)
                idle = not self._pending
            if idle:  # nobody waits: still read the notifications, which would otherwise pile up
                if listener is not None:
                    woke = listener.wait(0)
                    got = self._parse(listener.payloads)
                    self._learn(got or {})
                    positions = None if woke and got is None else {}  # (woke with nothing: reconnected)
                continue
            if positions is None:
                try:
                    positions = self._read_positions()
                except Exception:  # the database is briefly unavailable: waiters time out on their own
                    positions = {}
            self._learn(positions)
            with self._cond:
                # wake only the requests whose position was reached: the others sleep on (with a
                # notify_all every waiting request thread woke, took the GIL and went back to sleep)
                for waiter in [w for w in self._pending if self._satisfied(w[0], w[1])]:
                    self._pending.remove(waiter)
                    waiter[2].set()
            if listener is None:
                time.sleep(self.POLL)
                positions = None
            else:  # a commit after the read above has its notification waiting here
                listener.wait(self.DB_CHECK)
                positions = self._parse(listener.payloads)

    @staticmethod
    def _parse(payloads: list[str]) -> dict[str, int] | None:
        """The positions the notifications carry, the latest per shard (they arrive in commit order);
        None if there were none or one carried none."""
        if not payloads:
            return None
        latest: dict[str, int] = {}
        try:
            for payload in payloads:
                latest.update({shard: int(position) for shard, position in json.loads(payload).items()})
        except (ValueError, AttributeError, TypeError):
            return None
        return latest

    def _learn(self, positions: dict[str, int]) -> None:
        with self._cond:
            self._known.update(positions)  # (a rebuild moves a shard back: then it is behind again)

    def _satisfied(self, shards: set[str], position: int) -> bool:
        return all(self._known.get(s, 0) >= position for s in shards)

    def _wait_polled(self, shards: set[str], position: int, deadline: float) -> bool:
        waiter = (shards, position, threading.Event())
        with self._cond:
            if self._satisfied(shards, position):
                return True
            if self._poller is None:
                self._poller = threading.Thread(target=self._poll_loop, name="read-your-writes", daemon=True)
                self._poller.start()
            self._pending.append(waiter)
            self._cond.notify()
        if waiter[2].wait(max(0.0, deadline - time.monotonic())):
            return True
        with self._cond:
            if waiter in self._pending:
                self._pending.remove(waiter)
            return waiter[2].is_set()

    def wait(self, accounts: Iterable[int], position: int | None, timeout: float | None = None) -> bool:
        """True once every projection applied `position` on the shards of `accounts` (the owners of
        what the command saved); False after the timeout (the response then goes out anyway)."""
        if position is None or self._reached_now(accounts, position):
            return True  # the common embedded case: the request keeps its turn (infra/runtime/workgate.py)
        with self.gate.released():  # waiting for the projector is not this request's work
            reached = self._wait(accounts, position, timeout)
        if not reached:
            READ_YOUR_WRITES_TIMEOUTS.inc()
        return reached

    def settled(self, result: CommandResult, timeout: float | None = None) -> bool:
        """`wait` for what a command saved (its answer then reads the read models)."""
        return self.wait(result.touched_accounts, result.position, timeout)

    def settled_refusal(self, refusal: DomainError, timeout: float | None = None) -> None:
        """`wait` for what a refused command still recorded (a risk breach), if anything."""
        if refusal.saved_position is not None:
            self.wait(refusal.saved_accounts, refusal.saved_position, timeout)

    def _reached_now(self, accounts: Iterable[int], position: int) -> bool:
        """What this process already knows, without a query."""
        if self.runner is not None:
            return self.runner.applied_position >= position
        with self._cond:
            return self._satisfied(self._shards(accounts), position)

    def _wait(self, accounts: Iterable[int], position: int, timeout: float | None) -> bool:
        shards = self._shards(accounts)
        timeout = self.platform.settings.read_your_writes_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        if self.runner is None:
            return self._wait_polled(shards, position, deadline)
        while True:
            left = deadline - time.monotonic()
            if self.runner.wait_applied(position, max(0.0, min(self.DB_CHECK, left))):
                return True
            if self.reached(accounts, position):
                return True
            if time.monotonic() >= deadline:
                return False
