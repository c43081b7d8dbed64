"""The event store: domain aggregates persisted through the `eventsourcing` library's recorders.

Domain events stay free of the library: each is stored as a `StoredEvent` whose topic is the event type
and whose state is a JSON document {event_id, type, schema_version, aggregate_type, account_id,
occurred_at, meta, data}. The recorder's notification id is the event's global `position`.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar, cast
from urllib.parse import unquote, urlparse

from eventsourcing.persistence import (
    ApplicationRecorder,
    InfrastructureFactory,
    IntegrityError,
    InterfaceError,
    Notification,
    OperationalError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import retry
from psycopg.sql import SQL, Identifier

from commands.ports import Clock, CommandMeta, ConcurrencyConflict
from domain.aggregate import Aggregate
from domain.events import DomainEvent, event_from_data
from infra.store.db import private_sqlite_file, sqlite_path, sqlite_synchronous_pragma
from projections.envelope import Envelope

A = TypeVar("A", bound=Aggregate)


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def recorder_env(database_url: str, pool_size: int = 10) -> dict[str, str]:
    """eventsourcing's environment for a database URL (sqlite:///path or postgresql://...). `pool_size`:
    the Postgres connections its pool opens at start (and keeps), up to twice that under load."""
    if database_url.startswith("sqlite"):
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": sqlite_path(database_url),
            "SQLITE_LOCK_TIMEOUT": "30",
        }
    u = urlparse(database_url.replace("+psycopg", ""))
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": (u.path or "/postgres").lstrip("/"),
        "POSTGRES_HOST": u.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(u.port or 5432),
        "POSTGRES_USER": unquote(u.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(u.password or ""),
        "POSTGRES_POOL_SIZE": str(pool_size),
        "POSTGRES_MAX_OVERFLOW": str(2 * pool_size),
        "POSTGRES_CONNECT_TIMEOUT": "10",
        "POSTGRES_LOCK_TIMEOUT": "5",
        "APPLICATION_RECORDER_TOPIC": f"{__name__}:OrderedPostgresRecorder",
    }
    return env


class OrderedPostgresRecorder(PostgresApplicationRecorder):
    """The library's recorder, inserting in one round trip.

    The library takes its table lock (which makes notification ids follow commit order, so a reader
    tailing the log never passes a gap that fills later) in a client-side transaction: the lock is then
    held while the client, one Python thread among many, gets round to sending COMMIT. Here one
    statement, in autocommit, locks, inserts and commits inside the server (a PL/pgSQL function), so
    the lock is held only for the insert and the WAL flush."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        ds = self.datastore
        self._insert_function = f"tt_insert_events_{self.events_table_name}"[:63]
        self.sql_create_statements.append(SQL(
            "CREATE OR REPLACE FUNCTION {schema}.{fn}(events {schema}.{event}[]) "
            "RETURNS SETOF bigint LANGUAGE plpgsql AS $BODY$ BEGIN "
            "SET LOCAL lock_timeout = '{lock_timeout}s'; "
            "LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; "
            "NOTIFY {channel}; "
            "RETURN QUERY INSERT INTO {schema}.{table} AS t (originator_id, originator_version, topic, state) "
            "SELECT originator_id, originator_version, topic, state FROM unnest(events) "
            "RETURNING notification_id; "
            "END; $BODY$"
        ).format(schema=Identifier(ds.schema), fn=Identifier(self._insert_function),
                 event=Identifier(self.stored_event_type_name), table=Identifier(self.events_table_name),
                 channel=Identifier(self.channel_name), lock_timeout=ds.lock_timeout))
        self._insert_call = SQL("SELECT * FROM {schema}.{fn}(%s)").format(
            schema=Identifier(ds.schema), fn=Identifier(self._insert_function))

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)  # as the library's
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        if not stored_events:
            return []
        rows = [self.construct_pg_stored_event(e.originator_id, e.originator_version, e.topic, e.state)
                for e in stored_events]
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._insert_call, (rows,), prepare=True)
            return [r[self._insert_function] for r in curs.fetchall()]


def stored_rows(recorder: ApplicationRecorder,
                aggregate_ids: Sequence[uuid.UUID]) -> list[tuple[uuid.UUID, int, int, bytes]]:
    """(aggregate id, version, position, state) of every stored event of `aggregate_ids`, by position."""
    ids = sorted(set(aggregate_ids))
    if not ids:
        return []
    if isinstance(recorder, PostgresApplicationRecorder):
        ds = recorder.datastore
        statement = SQL("SELECT originator_id, originator_version, notification_id, state FROM {schema}.{table} "
                        "WHERE originator_id = ANY(%s) ORDER BY notification_id").format(
            schema=Identifier(ds.schema), table=Identifier(recorder.events_table_name))
        with ds.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, (ids,))
            return [(uuid.UUID(str(r["originator_id"])), int(r["originator_version"]), int(r["notification_id"]),
                     bytes(r["state"])) for r in curs.fetchall()]
    sqlite = cast(Any, recorder)
    marks = ",".join("?" * len(ids))
    with sqlite.datastore.transaction(commit=False) as c:
        c.execute(f"SELECT originator_id, originator_version, rowid AS notification_id, state "
                  f"FROM {sqlite.events_table_name} WHERE originator_id IN ({marks}) ORDER BY rowid",
                  [i.hex for i in ids])
        return [(uuid.UUID(str(r["originator_id"])), int(r["originator_version"]), int(r["notification_id"]),
                 bytes(r["state"])) for r in c.fetchall()]


def stored_event_ids(recorder: ApplicationRecorder,
                     keys: Sequence[tuple[uuid.UUID, int]]) -> dict[tuple[uuid.UUID, int], tuple[str, int]]:
    """(aggregate id, version) -> (event_id, position) of the stored events among `keys`."""
    wanted = set(keys)
    return {(agg_id, version): (str(json.loads(state)["event_id"]), position)
            for agg_id, version, position, state in stored_rows(recorder, [k[0] for k in keys])
            if (agg_id, version) in wanted}


def make_recorder(database_url: str, pool_size: int = 10, synchronous: str = "normal") -> ApplicationRecorder:
    """The event store's recorder. SQLite: its connections get `synchronous` (Settings.sqlite_synchronous) like
    the product's others; eventsourcing's own default is SQLite's FULL, an fsync inside every command's commit,
    which a busy disk stretched to 100-300 ms for every writer queued behind it (bench/webhooks.py's p99)."""
    if database_url.startswith("sqlite"):
        private_sqlite_file(sqlite_path(database_url))
    factory = InfrastructureFactory.construct(recorder_env(database_url, pool_size))
    recorder = factory.application_recorder()
    if database_url.startswith("sqlite"):
        _set_on_connect(cast(Any, recorder).datastore.pool, sqlite_synchronous_pragma(synchronous))
    return recorder


def _set_on_connect(pool: Any, pragma: str) -> None:
    """Run `pragma` on every connection eventsourcing's SQLite pool opens (it has no setting for it: its
    `_create_connection` is wrapped; the version is pinned in requirements.lock, and a test checks it takes)."""
    for conn in list(pool._pool):  # opened already (creating the tables)
        conn._sqlite_conn.execute(pragma)
    create = pool._create_connection

    def created() -> Any:
        conn = create()
        conn._sqlite_conn.execute(pragma)
        return conn

    pool._create_connection = created


def envelope_from_notification(n: Notification) -> Envelope:
    doc = json.loads(n.state)
    return Envelope(
        event_id=doc["event_id"],
        type=doc["type"],
        schema_version=doc["schema_version"],
        aggregate_type=doc["aggregate_type"],
        aggregate_id=str(n.originator_id),
        aggregate_version=n.originator_version,
        account_id=doc["account_id"],
        occurred_at=doc["occurred_at"],
        position=n.id,
        data=doc["data"],
        meta=doc.get("meta", {}),
    )


@dataclass
class _Cached:
    events: list[DomainEvent]  # never changed in place: a longer history replaces the list
    first_at: str
    last_at: str
    spares: list[Aggregate] = dataclasses.field(default_factory=list)  # built from prefixes of `events`,
    # held by no caller: each goes to one `load` (several when commands on a busy aggregate overlap)


class SqlEventStore:
    """Loads read only the events after what this process already decoded: stored events never change,
    so a per-aggregate cache of decoded events (LRU, `cache_size` aggregates) is always a valid prefix.

    The cache also keeps aggregate objects themselves between commands, handed out only by an explicit
    check-out: `check_out` gives one (no other caller gets it until it comes back) brought up to date with
    the events stored since, and `check_in` takes it back only when every change it holds was saved; the
    unit of work does both, readers use `reading`. `load` never hands out a kept object. Up to SPARES
    objects per aggregate, so that overlapping commands on a busy one (the approvals of one account all
    read its RiskBook) each find one. A command on a portfolio with hundreds of signals, or on a RiskBook
    with thousands of counted orders, so replays only what other processes stored since."""

    SPARES = 4

    def __init__(self, recorder: ApplicationRecorder, clock: Clock, cache_size: int = 4096) -> None:
        self.recorder = recorder
        self.clock = clock
        self.cache_size = cache_size
        self._cache: OrderedDict[uuid.UUID, _Cached] = OrderedDict()
        self._cache_lock = threading.Lock()
        self.chain: Any = None  # infra.store.chain.HashChain, attached by the composition root
        # held around each insert (the composition root attaches `Database.writer_turn`: SQLite's writers of
        # one process take turns)
        self.writer_turn: Callable[[], AbstractContextManager[None]] = nullcontext

    def load(self, cls: type[A], aggregate_id: uuid.UUID) -> A | None:
        """The aggregate rebuilt from its events: a new object, the caller's own (never a kept one)."""
        found = self._load(cls, aggregate_id, kept=False)
        return None if found is None else found[0]

    def load_with_times(self, cls: type[A], aggregate_id: uuid.UUID) -> tuple[A, str, str] | None:
        """As `load`, with the times of its first and last events."""
        return self._load(cls, aggregate_id, kept=False)

    def check_out(self, cls: type[A], aggregate_id: uuid.UUID) -> A | None:
        """The aggregate for the caller alone until it is checked in: a kept one brought up to date when
        there is one, else rebuilt. For the unit of work (readers: `reading`)."""
        found = self._load(cls, aggregate_id, kept=True)
        return None if found is None else found[0]

    def _load(self, cls: type[A], aggregate_id: uuid.UUID, kept: bool) -> tuple[A, str, str] | None:
        """The aggregate with the times of its first and last events; with `kept`, a kept object (the
        newest) is taken out of the cache when there is one."""
        live: A | None = None
        with self._cache_lock:
            cached = self._cache.get(aggregate_id)
            if cached is not None:
                self._cache.move_to_end(aggregate_id)
                events, first_at, last_at = cached.events, cached.first_at, cached.last_at
                if kept and cached.spares and type(cached.spares[-1]) is cls:
                    live = cast(A, cached.spares.pop())  # checked out: the most recent one
            else:
                events, first_at, last_at = [], "", ""
        known = len(events)
        stored = self.recorder.select_events(aggregate_id, gt=known or None)
        if not stored and not known:
            return None
        new: list[DomainEvent] = []
        if stored:
            docs = [json.loads(s.state) for s in stored]
            new = [event_from_data(d["type"], d["data"]) for d in docs]
            first_at = first_at or docs[0]["occurred_at"]
            last_at = docs[-1]["occurred_at"]
            if cls.cache_events:
                self._remember(aggregate_id, events, new, first_at, last_at)
        if live is not None and live.version <= known:
            live.catch_up(events[live.version:])
            live.catch_up(new)
            return live, first_at, last_at
        return cls.rehydrate(aggregate_id, [*events, *new]), first_at, last_at

    def _remember(self, aggregate_id: uuid.UUID, before: list[DomainEvent], new: list[DomainEvent],
                  first_at: str, last_at: str) -> None:
        """Cache `before + new` as the aggregate's history, unless the cache already knows more."""
        with self._cache_lock:
            cur = self._cache.get(aggregate_id)
            if cur is not None and len(cur.events) > len(before):
                return
            if cur is not None and cur.events is not before and len(cur.events) == len(before):
                before = cur.events  # the same prefix, decoded by another caller
            self._cache[aggregate_id] = _Cached([*before, *new], first_at, last_at,
                                                [] if cur is None else cur.spares)
            self._cache.move_to_end(aggregate_id)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

    @contextmanager
    def reading(self, cls: type[A], aggregate_id: uuid.UUID) -> Iterator[A | None]:
        """The aggregate (or None) to read inside the block, checked out and checked in when it ends: for
        readers that change nothing (a command loads and saves through its unit of work instead)."""
        agg = self.check_out(cls, aggregate_id)
        version = None if agg is None else agg.version
        try:
            yield agg
        finally:
            if agg is not None and agg.version == version:
                self.check_in([agg])

    def check_in(self, aggregates: Sequence[Aggregate]) -> None:
        for agg in aggregates:
            if agg.has_changes or not agg.cache_events:  # events recorded but not saved: drop it
                continue
            with self._cache_lock:
                cur = self._cache.get(agg.aggregate_id)
                if cur is None or agg.version > len(cur.events):
                    continue
                spares = cur.spares
                if len(spares) >= self.SPARES:
                    if spares[0].version >= agg.version:
                        continue
                    spares.pop(0)
                spares.append(agg)
                spares.sort(key=lambda a: a.version)  # the newest last: `load` takes it first

    def save(self, aggregates: Sequence[Aggregate], meta: CommandMeta) -> int | None:
        now = self.clock.now().isoformat()
        meta_doc: dict[str, Any] = {"actor": meta.actor}
        if meta.request_id:
            meta_doc["request_id"] = meta.request_id
        if meta.correlation_id:
            meta_doc["correlation_id"] = meta.correlation_id
        if meta.idempotency_key:
            meta_doc["idempotency_key"] = meta.idempotency_key
        records: list[StoredEvent] = []
        saving: list[tuple[Aggregate, list[DomainEvent]]] = []
        for agg in aggregates:
            pending = agg.pending_events()
            first_version = agg.version - len(pending) + 1
            saving.append((agg, pending))
            for i, event in enumerate(pending):
                doc = {
                    "event_id": str(uuid.uuid4()),
                    "type": event.type,
                    "schema_version": event.schema_version,
                    "aggregate_type": agg.aggregate_type,
                    "account_id": agg.account_id,
                    "occurred_at": now,
                    "meta": meta_doc,
                    "data": event.to_data(),
                }
                records.append(StoredEvent(
                    originator_id=agg.aggregate_id,
                    originator_version=first_version + i,
                    topic=event.type,
                    state=json.dumps(doc, separators=(",", ":")).encode(),
                ))
        if not records:
            return None
        try:
            with self.writer_turn():
                ids: Sequence[int] | None = self.recorder.insert_events(records)
        except IntegrityError as exc:
            # Either another command saved these versions first, or the recorder retried an insert whose
            # commit succeeded but whose reply was lost (a dropped connection): then the rows are ours
            # and the command is done -- running its handler again would allocate new ids (a duplicate).
            ids = self._own_positions(records)
            if ids is None:  # the aggregates keep their unsaved events: never released
                raise ConcurrencyConflict(str(exc)) from exc
        for agg, pending in saving:
            agg.collect_events()
            if pending and agg.cache_events:
                self._saved(agg.aggregate_id, agg.version - len(pending), pending, now)
        return max(ids) if ids else None

    def _own_positions(self, records: Sequence[StoredEvent]) -> list[int] | None:
        """The positions of `records` when every one of them is stored (same event ids), else None."""
        wanted = {(uuid.UUID(str(r.originator_id)), r.originator_version): str(json.loads(r.state)["event_id"])
                  for r in records}
        found = stored_event_ids(self.recorder, list(wanted))
        if any(key not in found or found[key][0] != event_id for key, event_id in wanted.items()):
            return None
        return [found[key][1] for key in wanted]

    def _saved(self, aggregate_id: uuid.UUID, known: int, new: list[DomainEvent], at: str) -> None:
        """Extend the cached history with events this process just stored (when it holds the rest)."""
        with self._cache_lock:
            cur = self._cache.get(aggregate_id)
        if cur is None and known == 0:
            self._remember(aggregate_id, [], new, at, at)
        elif cur is not None and len(cur.events) == known:
            self._remember(aggregate_id, cur.events, new, cur.first_at, at)

    def envelopes_of(self, aggregate_ids: Sequence[uuid.UUID]) -> list[Envelope]:
        """Every stored event of these aggregates as envelopes (without chain hashes), in store order."""
        out = []
        for agg_id, version, position, state in stored_rows(self.recorder, aggregate_ids):
            out.append(envelope_from_notification(Notification(
                id=position, originator_id=agg_id, originator_version=version, topic="", state=state)))
        return out

    def history(self, aggregate_id: uuid.UUID, until: str | None = None) -> list[tuple[DomainEvent, str]]:
        """An aggregate's events with their `occurred_at`, oldest first; with `until` (ISO, UTC) only
        those recorded at or before it (the audit "as of" view)."""
        out: list[tuple[DomainEvent, str]] = []
        cutoff = None if until is None else datetime.fromisoformat(until)
        for s in self.recorder.select_events(aggregate_id):
            doc = json.loads(s.state)
            if cutoff is not None and datetime.fromisoformat(doc["occurred_at"]) > cutoff:
                break
            out.append((event_from_data(doc["type"], doc["data"]), doc["occurred_at"]))
        return out

    def read_plain(self, after: int, limit: int = 500) -> list[Envelope]:
        """Envelopes with position > `after`, in store order, without their chain hashes."""
        notes = self.recorder.select_notifications(start=after, limit=limit, inclusive_of_start=False)
        return [envelope_from_notification(n) for n in notes]

    def read(self, after: int, limit: int = 500) -> list[Envelope]:
        """Envelopes with position > `after`, in store order, each with its account's chain hashes
        (events not sealed yet are sealed first)."""
        envs = self.read_plain(after, limit)
        if not envs or self.chain is None:
            return envs
        hashes = self.chain.seal_read(after, envs)
        return [dataclasses.replace(e, prev_hash=hashes[e.position][0], hash=hashes[e.position][1])
                if e.position in hashes else e for e in envs]

    @property
    def insert_channel(self) -> str | None:
        """Postgres: the channel every insert NOTIFYs (idle readers of the log wait on it); else None."""
        return getattr(self.recorder, "channel_name", None)

    def max_position(self) -> int:
        return int(self.recorder.max_notification_id() or 0)

    def count_upto(self, position: int) -> int:
        """How many events are stored at positions up to `position` (positions may skip numbers: an
        insert that failed still used its sequence values)."""
        rec: Any = self.recorder
        if isinstance(rec, PostgresApplicationRecorder):
            query = SQL("SELECT count(*) AS n FROM {schema}.{table} WHERE notification_id <= %s").format(
                schema=Identifier(rec.datastore.schema), table=Identifier(rec.events_table_name))
            with rec.datastore.get_connection() as conn, conn.cursor() as curs:
                curs.execute(query, (position,))
                row = curs.fetchone()
                return int(row["n"]) if row else 0
        with rec.datastore.transaction(commit=False) as c:  # SQLite numbers notifications by rowid
            c.execute(f"SELECT count(*) FROM {rec.events_table_name} WHERE rowid <= ?", (position,))
            return int(c.fetchone()[0])
