"""The projector loop: fetch a batch from a source, apply it to every projection and record the
tracking positions in the same transaction (exactly-once effects, safe to kill at any point).

One bad event never halts the pipeline: when a batch fails for any reason but the database being
unreachable, it is applied again in the same kind of transaction with every (projection, event) in its
own savepoint; an event that fails there is set aside in `projection_dead_letters` with its error, the
other projections apply it, and the projector moves on. `retry_failed` applies the set-aside events
again (after a fix) and removes those that succeed."""

from __future__ import annotations

import json
import logging
import threading
import time
import zlib
from collections.abc import Callable, Sequence

import sqlalchemy as sa

from infra.store.db import PROJECTED_CHANNEL, Database, Listener, notify
from projections.base import (
    Projection,
    projection_dead_letters,
    projection_tracking,
    read_tracking,
    tracking_metadata,
    write_tracking,
)
from projections.envelope import Envelope
from streams.loop import StepLoop, status_metadata, status_reporter
from streams.sources import STORE_SHARD, EventSource, Item, KafkaSource, kafka_shard

log = logging.getLogger(__name__)


_SHARD_LOCK = 7411100

# The database being unreachable or busy says nothing about the events: the step is retried as a whole
# (with backoff) and no event is set aside.
TRANSIENT: tuple[type[BaseException], ...] = (
    sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.DisconnectionError, sa.exc.TimeoutError,
    ConnectionError, TimeoutError)


def error_text(exc: BaseException) -> str:
    """`Type: message`, at most 1000 characters, always encodable (a lone surrogate in the message is
    escaped)."""
    text = f"{type(exc).__name__}: {exc}"[:1000]
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _lock_shard(conn: sa.Connection, shard: str) -> None:
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:a, :b)"),
                 {"a": _SHARD_LOCK, "b": zlib.crc32(shard.encode()) & 0x7FFFFFFF})


class ProjectionRunner:
    def __init__(self, db: Database, projections: Sequence[Projection], source: EventSource,
                 batch_size: int = 1000, wake_channel: str | None = None) -> None:
        """`wake_channel` (Postgres): when idle, wait for a NOTIFY on it (the store's inserts) instead of
        sleeping 200 ms between polls of the source."""
        self.db = db
        self.projections = list(projections)
        self.names = [p.name for p in self.projections]
        self.source = source
        self.batch_size = batch_size
        self.applied_position = 0  # highest position applied in this process (for in-process waiters)
        self._cond = threading.Condition()
        # Idle on Kafka, the projector waits for the store's next insert, then long-polls the topic until
        # the relay has published it. Sleeping 200 ms between polls held up the first command after a
        # quiet spell by ~100 ms on average; polling without a pause cost 7% of a core while idle.
        self._listener = Listener(db.url, wake_channel) if wake_channel and not db.is_sqlite else None
        self.loop = StepLoop("projector", self.step, idle_wait=0.2 if self._listener is None else 0.5,
                             idle=None if self._listener is None else self._listener.wait,
                             report=status_reporter(db, "projector"))

    def create_tables(self) -> None:
        with self.db.write() as conn:
            tracking_metadata.create_all(conn)
            status_metadata.create_all(conn)
            for p in self.projections:
                p.create(conn)

    def _combined(self) -> dict[str, tuple[int, int | None]]:
        """Per shard, the lowest (position, offset) any projection has applied: where to read from."""
        with self.db.read() as conn:
            per = read_tracking(conn, self.names)
        shards = {shard for (_, shard) in per}
        combined: dict[str, tuple[int, int | None]] = {}
        for shard in shards:
            positions = [per.get((n, shard)) for n in self.names]
            if any(p is None for p in positions):
                combined[shard] = (0, None)  # a projection has nothing from this shard yet: start over there
                continue
            pos = min(p[0] for p in positions if p is not None)
            offsets = [p[1] for p in positions if p is not None]
            known = [o for o in offsets if o is not None]
            combined[shard] = (pos, min(known) if len(known) == len(offsets) else None)
        return combined

    def step(self) -> int:
        """Apply one batch; returns how many items were fetched."""
        t0 = time.perf_counter()
        items = self.source.fetch(self._combined, self.batch_size)
        if not items:
            return 0
        t1 = time.perf_counter()
        self._apply_batch(items)
        top = max(i.envelope.position for i in items)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("applied %d items up to %d: fetch %.1f ms, apply %.1f ms", len(items), top,
                      (t1 - t0) * 1e3, (time.perf_counter() - t1) * 1e3)
        with self._cond:
            self.applied_position = max(self.applied_position, top)
            self._cond.notify_all()
        return len(items)

    def _apply_batch(self, items: list[Item]) -> None:
        try:
            try:
                self._apply(items, isolate=False)
            except TRANSIENT:
                raise
            except Exception as exc:  # some event of the batch cannot be applied: find it, set it aside
                log.warning("projector batch failed (%s); applying it again one event at a time", error_text(exc))
                self._apply(items, isolate=True)
        except Exception:
            self.source.reset()
            raise

    def _apply(self, items: list[Item], isolate: bool) -> None:
        """`isolate`: every (projection, event) in its own savepoint; one that fails is set aside."""
        with self.db.write(durable=False) as conn:  # rows and tracking together: re-applied after a crash
            if not self.db.is_sqlite:  # (SQLite's BEGIN IMMEDIATE serialises writers already)
                # Two runners on one shard (a rebuild beside a live projector, two projector processes)
                # take turns, so neither applies what the other just applied.
                for shard in sorted({i.shard for i in items}):
                    _lock_shard(conn, shard)
            # Re-read inside the write transaction: another projector process may have moved on.
            state = read_tracking(conn, self.names)
            existed = set(state)
            dirty: set[tuple[str, str]] = set()
            later: dict[str, list[Envelope]] = {p.name: [] for p in self.projections if p.batched}
            for item in items:
                env = item.envelope
                for p in self.projections:
                    key = (p.name, item.shard)
                    pos, off = state.get(key, (0, None))
                    if env.position > pos:
                        if isolate:
                            self._apply_one(conn, p, env, item.shard)
                        elif p.batched:
                            later[p.name].append(env)
                        else:
                            p.apply(conn, env)
                        pos = env.position
                    if item.offset is not None and (off is None or item.offset > off):
                        off = item.offset
                    if (pos, off) != state.get(key):
                        state[key] = (pos, off)
                        dirty.add(key)
            for p in self.projections:
                if p.batched:
                    p.apply_many(conn, later[p.name])
            write_tracking(conn, {key: state[key] for key in dirty}, existed)
            if not self.db.is_sqlite:  # read-your-writes waiters in API processes learn it at commit
                notify(conn, PROJECTED_CHANNEL, json.dumps(self._reached(state, {i.shard for i in items})))

    def _apply_one(self, conn: sa.Connection, p: Projection, env: Envelope, shard: str) -> bool:
        """Apply one event to one projection in a savepoint; if it fails (for any reason but the
        database), set it aside. True if applied."""
        try:
            with conn.begin_nested():
                if p.batched:
                    p.apply_many(conn, [env])
                else:
                    p.apply(conn, env)
            return True
        except TRANSIENT:
            raise
        except Exception as exc:
            error = error_text(exc)
            log.error("projection %s: event %s (%s, position %d, account %s) set aside: %s", p.name,
                      env.event_id, env.type, env.position, env.account_id, error)
            set_aside(conn, p.name, shard, env, error)
            return False

    def _reached(self, state: dict[tuple[str, str], tuple[int, int | None]], shards: set[str]) -> dict[str, int]:
        """Per shard, the position every projection has applied there."""
        return {shard: min(state.get((n, shard), (0, None))[0] for n in self.names) for shard in shards}

    def notify(self, _position: int | None = None) -> None:
        """New events were saved in this process: fetch now instead of at the next poll."""
        self.loop.wake()

    def wait_applied(self, position: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.applied_position < position:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def run(self, stop: threading.Event) -> None:
        self.loop.run(stop)
        self.source.close()
        if self._listener is not None:
            self._listener.close()

    def start_thread(self, stop: threading.Event) -> threading.Thread:
        t = threading.Thread(target=self.run, args=(stop,), name="projector", daemon=True)
        t.start()
        return t

    def retry_failed(self, projection: str | None = None) -> tuple[int, int]:
        """Apply the set-aside events again, oldest first, each in its own transaction; those that
        succeed leave the dead-letter table, the others keep it with the new error. (applied, failed)"""
        by_name = {p.name: p for p in self.projections}
        query = sa.select(projection_dead_letters).order_by(projection_dead_letters.c.position,
                                                            projection_dead_letters.c.projection)
        if projection is not None:
            query = query.where(projection_dead_letters.c.projection == projection)
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        applied = failed = 0
        for row in rows:
            p = by_name.get(row.projection)
            if p is None:
                continue
            env = Envelope.from_json(row.envelope)
            with self.db.write() as conn:
                if not self.db.is_sqlite:
                    _lock_shard(conn, row.shard)
                ok = self._apply_one(conn, p, env, row.shard)
                if ok:
                    conn.execute(sa.delete(projection_dead_letters).where(
                        projection_dead_letters.c.projection == row.projection,
                        projection_dead_letters.c.position == row.position))
            applied, failed = (applied + 1, failed) if ok else (applied, failed + 1)
        return applied, failed

    def rebuild(self, cutoff: int, partitions: Sequence[int] = (),
                find_offsets: Callable[[int], dict[int, int]] | None = None, stall: float = 60.0,
                expected: int | None = None) -> int:
        """Drop and recreate every read model, then apply exactly the events at positions up to `cutoff`
        (every one of them must be in the source: the store's head when the rebuild started, or for
        Kafka what the relay had published). Complete when the store was read past `cutoff`, or (Kafka)
        when every partition reached its end offset as of the start and `expected` (the number of
        stored events up to `cutoff`) distinct events up to `cutoff` were read -- not when the highest
        position across partitions passed it, which left quiet partitions behind. (Both, because a
        broker may answer a partition's end offset short: Tansu answers the last batch's base offset
        plus one.) Raises RebuildStalled if the source makes no progress for `stall` seconds.

        Tracking is then written for every shard, so a projector on either source resumes exactly
        after `cutoff`: the store shard at `cutoff`; each Kafka partition (those of `partitions` and the
        topic's) at `cutoff` with the offset of its last event up to `cutoff` -- seen while consuming
        (Kafka source) or found by `find_offsets(cutoff)` (store source). Returns the events applied."""
        with self.db.write() as conn:
            tracking_metadata.create_all(conn)
            status_metadata.create_all(conn)
            for p in self.projections:
                p.drop(conn)
                p.create(conn)
        self.source.reset()
        self.applied_position = 0
        kafka = isinstance(self.source, KafkaSource)
        ends = self.source.end_offsets() if isinstance(self.source, KafkaSource) else {}
        seen: dict[int, int] = {}  # partition -> highest offset read
        covered: dict[int, int] = {}  # partition -> highest offset of an event up to `cutoff`
        top = 0  # the store source: the highest position read
        total = 0
        progress_at = time.monotonic()

        positions: set[int] = set()  # Kafka: the distinct positions up to `cutoff` read

        def done() -> bool:
            if kafka:
                return (all(seen.get(p, -1) >= end - 1 for p, end in ends.items())
                        and (expected is None or len(positions) >= expected))
            return top >= cutoff

        def read_so_far() -> dict[str, tuple[int, int | None]]:
            # Where this rebuild has read to -- not the shared tracking, which a live projector beside it
            # moves on (it sees its tracking dropped, applies from the start and writes it again). A Kafka
            # source positions itself once, from nothing: every partition from its beginning.
            return {} if kafka else {STORE_SHARD: (top, None)}

        while not done():
            items = self.source.fetch(read_so_far, self.batch_size)
            if not items:
                if time.monotonic() - progress_at > stall:
                    raise RebuildStalled(self._stall_text(cutoff, kafka, ends, seen, top, len(positions), expected))
                continue
            progress_at = time.monotonic()
            keep = [i for i in items if i.envelope.position <= cutoff]
            for i in items:
                top = max(top, i.envelope.position)
                if i.offset is not None:
                    part = int(i.shard.split(":")[1])
                    seen[part] = max(seen.get(part, -1), i.offset)
                    if i.envelope.position <= cutoff:
                        covered[part] = max(covered.get(part, -1), i.offset)
                        positions.add(i.envelope.position)
            if keep:
                self._apply_batch(keep)
                total += len({i.envelope.position for i in keep})
                with self._cond:
                    self.applied_position = max(self.applied_position, max(i.envelope.position for i in keep))
                    self._cond.notify_all()
        offsets: dict[int, int | None] = {p: None for p in [*partitions, *ends]}
        if kafka:
            offsets.update(covered)
        elif find_offsets is not None:
            offsets.update(find_offsets(cutoff))
        self._write_cover(cutoff, offsets)
        return total

    @staticmethod
    def _stall_text(cutoff: int, kafka: bool, ends: dict[int, int], seen: dict[int, int], top: int,
                    read: int = 0, expected: int | None = None) -> str:
        if kafka:
            behind = ", ".join(f"partition {p} at offset {seen.get(p, -1) + 1} of {end}"
                               for p, end in sorted(ends.items()) if seen.get(p, -1) < end - 1)
            return (f"the rebuild from Kafka made no progress: read {read} of the {expected} events up to "
                    f"position {cutoff}" + (f"; {behind}" if behind else ""))
        return f"the rebuild from the store made no progress at position {top} of {cutoff}"

    def _write_cover(self, cutoff: int, offsets: dict[int, int | None]) -> None:
        """Tracking of every projection on every shard: everything up to `cutoff` applied."""
        rows = [(STORE_SHARD, None), *((kafka_shard(p), off) for p, off in sorted(offsets.items()))]
        with self.db.write() as conn:
            conn.execute(sa.delete(projection_tracking).where(projection_tracking.c.projection.in_(self.names)))
            conn.execute(sa.insert(projection_tracking), [
                {"projection": n, "shard": shard, "position": cutoff, "kafka_offset": off}
                for n in self.names for shard, off in rows])


class RebuildStalled(RuntimeError):
    pass


def set_aside(conn: sa.Connection, projection: str, shard: str, env: Envelope, error: str) -> None:
    """Record (or count again) a dead letter: the event `env` could not be applied to `projection`.
    Never fails for the event's sake (that would stop the projector at it): when its fields do not fit
    the row (an account id beyond 64 bits, an over-long event id), it is recorded without them -- the
    position, the error and the whole event (for retry-failed) always fit."""
    try:
        with conn.begin_nested():
            _record_dead_letter(conn, projection, shard, env, error, env.event_id, env.account_id)
    except TRANSIENT:
        raise
    except Exception as exc:
        note = f"{error} (recorded without its event id and account: {error_text(exc)})"
        _record_dead_letter(conn, projection, shard, env, note[:2000], str(env.event_id)[:36], None)


def _record_dead_letter(conn: sa.Connection, projection: str, shard: str, env: Envelope, error: str,
                        event_id: str, account_id: int | None) -> None:
    now = time.time()
    t = projection_dead_letters
    hit = conn.execute(sa.update(t).where(t.c.projection == projection, t.c.position == env.position).values(
        error=error, attempts=t.c.attempts + 1, last_failed_at=now)).rowcount
    if not hit:
        conn.execute(sa.insert(t).values(
            projection=projection, position=env.position, shard=shard, event_id=event_id,
            event_type=str(env.type)[:100], account_id=account_id, occurred_at=str(env.occurred_at)[:40],
            error=error, attempts=1, first_failed_at=now, last_failed_at=now,
            envelope=env.to_json().decode("ascii")))
