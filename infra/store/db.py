"""Database engines (SQLite in the embedded default, Postgres in production) and the plain security tables."""

from __future__ import annotations

import contextlib
import logging
import select
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from infra.config.settings import Settings

security_metadata = sa.MetaData()

id_sequences = sa.Table(
    "id_sequences", security_metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)
email_accounts = sa.Table(
    "email_accounts", security_metadata,
    sa.Column("email", sa.String(320), primary_key=True),
    sa.Column("account_id", sa.BigInteger, nullable=False, unique=True),
)
login_codes = sa.Table(
    "login_codes", security_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("email", sa.String(320), nullable=False, index=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("otp_hash", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("used_at", sa.Float),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
)
sessions = sa.Table(
    "sessions", security_metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("account_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("revoked_at", sa.Float),
)
passwords = sa.Table(
    "passwords", security_metadata,
    sa.Column("account_id", sa.BigInteger, primary_key=True),
    sa.Column("hash", sa.String(255), nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)
agent_keys = sa.Table(
    "agent_keys", security_metadata,
    sa.Column("account_id", sa.BigInteger, primary_key=True),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("last_used_at", sa.Float),
    sa.Column("revoked_at", sa.Float),
)
kite_login_states = sa.Table(  # one-time nonces binding a Kite login to the account that started it
    "kite_login_states", security_metadata,
    sa.Column("state_hash", sa.String(64), primary_key=True),
    sa.Column("account_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("used_at", sa.Float),
)
rate_hits = sa.Table(
    "rate_hits", security_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(400), nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Index("ix_rate_hits_key_at", "key", "at"),
)

# A command's answer under its Idempotency-Key (api/acks.py): one row per (account, key), claimed before
# the command runs (status NULL while it runs), the answer stored when it ends; kept 24 hours.
idempotency_keys = sa.Table(
    "idempotency_keys", security_metadata,
    sa.Column("account_id", sa.BigInteger, primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),  # sha256 of method, path, query and body
    sa.Column("created_at", sa.Float, nullable=False, index=True),
    sa.Column("after_position", sa.BigInteger, nullable=False),  # the store head when it was claimed
    sa.Column("status", sa.Integer),
    sa.Column("headers", sa.JSON),
    sa.Column("body", sa.LargeBinary),
)


def sqlalchemy_url(database_url: str) -> str:
    if database_url.startswith("postgresql://") or database_url.startswith("postgres://"):
        return "postgresql+psycopg://" + database_url.split("://", 1)[1]
    return database_url


def sqlite_path(database_url: str) -> str:
    return database_url.split("///", 1)[1]


def private_sqlite_file(path: str) -> None:
    """The SQLite file (and its -wal/-shm/-journal companions, which SQLite creates with the file's mode) is
    readable by its owner only: it holds sessions, password hashes and encrypted broker tokens."""
    import os

    if path in ("", ":memory:"):
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    # Never open() a database file that may already be open: closing any descriptor of a file drops every
    # POSIX lock this process holds on it, SQLite's included (another process then takes the "last
    # connection" path and deletes the -wal/-shm under us: "disk I/O error", "database disk image is
    # malformed"). Only a file that does not exist yet is created here; existing ones are only chmod-ed.
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    for name in (path, path + "-wal", path + "-shm", path + "-journal"):
        if os.path.exists(name):
            os.chmod(name, 0o600)


def sqlite_synchronous_pragma(synchronous: str) -> str:
    """The PRAGMA for `Settings.sqlite_synchronous` (normal / full), for every SQLite connection of the product."""
    if synchronous not in ("normal", "full"):
        raise ValueError(f"sqlite_synchronous must be normal or full, not {synchronous!r}")
    return f"PRAGMA synchronous={synchronous.upper()}"


def _sqlite_engine(url: str, immediate: bool, synchronous: str = "normal") -> Engine:
    engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                              pool_size=8, max_overflow=16)

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # let SQLAlchemy's begin event issue BEGIN
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(sqlite_synchronous_pragma(synchronous))
        cur.execute("PRAGMA wal_autocheckpoint=0")  # the Checkpointer's thread does it (below)
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Write transactions take the lock up front so they wait instead of failing on upgrade.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


CHECKPOINT_EVERY = 0.5  # seconds


class Checkpointer:
    """SQLite: copies the write-ahead log back into the database file from a thread of its own, every
    CHECKPOINT_EVERY seconds, PASSIVE (it waits for no reader and no writer). Without it a committing writer
    does that itself (SQLite's auto-checkpoint, when the log passes 1,000 pages): a copy and an fsync inside
    the writer's commit, while every other writer of the process waits its turn behind it. The product's own
    connections turn the auto-checkpoint off; the event store's (eventsourcing's pool) keep it, and with the
    log checkpointed twice a second it rarely reaches the 1,000 pages that set it off. (The webhooks bench's
    tail was mostly the event store's fsync per commit: see `Settings.sqlite_synchronous`.)"""

    def __init__(self, path: str) -> None:
        self.path = path
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        if self._thread is not None or self._stop.is_set():
            return
        with self._lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        try:
            while not self._stop.wait(CHECKPOINT_EVERY):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:  # (a file being replaced by a restore): the next round tries again
                    logging.getLogger(__name__).debug("checkpoint of %s: %s", self.path, exc)
        finally:
            conn.close()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, wait: bool = True) -> None:
        self._stop.set()
        thread = self._thread
        if wait and thread is not None and thread is not threading.current_thread():
            thread.join(5.0)


PING_AFTER_IDLE = 2.0  # seconds


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled Postgres connection before use only when it sat idle for PING_AFTER_IDLE: that is
    when a restarted or failed-over server leaves dead connections behind. `pool_pre_ping` checked on
    every checkout, a round trip that cost a fifth of a busy list endpoint's throughput. A connection
    that dies while in steady use fails its request once, and the pool then renews every connection
    older than the failure (SQLAlchemy's disconnect handling)."""

    @sa.event.listens_for(engine, "checkin")
    def _checked_in(dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is not None and time.monotonic() - since > PING_AFTER_IDLE:
            try:
                engine.dialect.do_ping(dbapi_conn)
            except Exception as exc:
                raise sa.exc.DisconnectionError(f"stale pooled connection: {exc}") from exc


class CommitFailed(Exception):
    """Postgres refused a COMMIT that `Database.commit_then` had already acted on."""


@dataclass
class Database:
    """One database: a writer engine and a reader engine (the same engine on Postgres)."""

    url: str
    writer: Engine
    reader: Engine  # Postgres: the writer's pool in autocommit
    lazy_writer: Engine | None = None  # Postgres: sessions with synchronous_commit off (write(durable=False))
    # SQLite: this process's writers take turns here, in order, instead of in SQLite's busy handler, which
    # sleeps between tries (1 ms growing to 100 ms) and lets whoever tries last win: the notifier's sixteen
    # senders and its recorder beside a writing API process sent 200 events/s with p99 3.4 s from event to
    # email; taking turns here, p99 0.76 s (bench/notifications.py). (Re-entrant: a thread's nested write is
    # its own.) Other processes still meet at SQLite's lock.
    _sqlite_writers: threading.RLock = field(default_factory=threading.RLock, repr=False)
    checkpointer: Checkpointer | None = field(default=None, repr=False)  # SQLite: started by the first write

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls.from_url(settings.database_url, settings.db_pool_size, settings.sqlite_synchronous)

    @classmethod
    def from_url(cls, database_url: str, pool_size: int = 10, synchronous: str = "normal") -> Database:
        """`pool_size` (TRADERTAPE_DB_POOL_SIZE; Postgres only): the writers' and readers' pool keeps up to twice
        that many connections and opens as many again under load; the non-durable writers' keeps 2/5 of it."""
        url = sqlalchemy_url(database_url)
        if url.startswith("sqlite"):
            from pathlib import Path

            Path(sqlite_path(url)).parent.mkdir(parents=True, exist_ok=True)
            private_sqlite_file(sqlite_path(url))
            checkpointer = Checkpointer(sqlite_path(url))
            db = cls(url, _sqlite_engine(url, True, synchronous), _sqlite_engine(url, False, synchronous),
                     checkpointer=checkpointer)
            weakref.finalize(db, checkpointer.stop, False)  # a Database dropped without dispose() stops its thread too
            return db
        engine = sa.create_engine(url, pool_size=2 * pool_size, max_overflow=2 * pool_size)
        _ping_when_idle(engine)
        # The non-durable writers (projector, relay, chain seals) get their own small pool whose sessions
        # commit without waiting for the WAL flush, instead of a SET LOCAL round trip per transaction.
        lazy_size = max(1, 2 * pool_size // 5)
        lazy = sa.create_engine(url, pool_size=lazy_size, max_overflow=2 * lazy_size,
                                connect_args={"options": "-c synchronous_commit=off"})
        _ping_when_idle(lazy)
        # Reads run in autocommit: no BEGIN/ROLLBACK round trips. Under READ COMMITTED every statement
        # takes its own snapshot anyway, so a read transaction bought no consistency across statements.
        return cls(url, engine, engine.execution_options(isolation_level="AUTOCOMMIT"), lazy)

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @contextmanager
    def write(self, durable: bool = True) -> Iterator[Connection]:
        """A write transaction. `durable=False` (Postgres) commits without waiting for the WAL flush:
        for rows that can be derived again -- read models with their tracking, relay positions, chain
        seals -- a crash loses at most the last few milliseconds, which are then re-applied."""
        engine = self.writer if durable or self.lazy_writer is None else self.lazy_writer
        if self.is_sqlite:
            if self.checkpointer is not None:
                self.checkpointer.start()
            with self._sqlite_writers, engine.begin() as conn:
                yield conn
            return
        with engine.begin() as conn:
            yield conn

    def commit_then(self, conn: Connection, then: Callable[[], None]) -> None:
        """Commit `conn`'s transaction (from `write()`) and call `then()` the moment the commit can no longer
        be lost to this process dying, with as little as possible in between: for a step outside the database
        that must happen if and only if the commit did (a notification's final SMTP "."). The gap a SIGKILL
        can fall into is then a few microseconds, not a whole commit and its return through the pool.

        SQLite: the driver's COMMIT (its WAL write is what a killed process leaves behind), then `then()`.
        Postgres: COMMIT is sent, `then()` runs while the server commits, then its answer is read (libpq's
        documented asynchronous calls); a server that refuses the COMMIT raises CommitFailed after `then()`
        ran -- the caller records the outside step another way. The transaction's own `commit()` on leaving
        `write()` is then a no-op (the connection is already out of its transaction)."""
        raw: Any = conn.connection.dbapi_connection
        if self.is_sqlite:
            raw.commit()
            then()
            return
        pg = raw.pgconn
        pg.send_query(b"COMMIT")
        while pg.flush():  # 1: more to send (a non-blocking connection)
            select.select([], [pg.socket], [], 5.0)
        try:
            then()
        finally:  # the server's answer is read whatever `then()` did, leaving the connection usable
            self._commit_answer(pg)

    @staticmethod
    def _commit_answer(pg: Any) -> None:
        from psycopg import pq

        failure = None
        while True:
            pg.consume_input()
            while pg.is_busy():
                select.select([pg.socket], [], [], 5.0)
                pg.consume_input()
            result = pg.get_result()
            if result is None:
                break
            if result.status != pq.ExecStatus.COMMAND_OK:
                failure = (result.error_message or b"").decode("utf-8", "replace")[:200]
        if failure is not None or pg.transaction_status != pq.TransactionStatus.IDLE:
            raise CommitFailed(failure or "the server did not end the transaction")

    @contextmanager
    def writer_turn(self) -> Iterator[None]:
        """SQLite: this process's turn at the file's write lock, for a writer with its own connection (the
        event store's inserts) -- in order with `write`, instead of polling the lock in SQLite's busy handler,
        whose sleeps (up to 100 ms) the turn-taking writers kept winning: an alert's insert waiting behind
        them was the webhooks bench's p99. Postgres: nothing to wait for."""
        if self.is_sqlite:
            if self.checkpointer is not None:
                self.checkpointer.start()
            with self._sqlite_writers:
                yield
            return
        yield

    @contextmanager
    def self_committing(self) -> Iterator[Connection]:
        """For one write statement that commits on its own (Postgres: in autocommit, so any row lock it
        takes is released inside the server, not after a client round trip to COMMIT); SQLite: a write
        transaction."""
        if self.is_sqlite:
            with self.write() as conn:
                yield conn
        else:
            with self.reader.connect() as conn:
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.reader.connect() as conn:
            yield conn

    def create_security_tables(self) -> None:
        security_metadata.create_all(self.writer)

    def dispose(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.stop()
        self.writer.dispose()
        if self.lazy_writer is not None:
            self.lazy_writer.dispose()
        if self.reader.pool is not self.writer.pool:
            self.reader.dispose()


PROJECTED_CHANNEL = "tradertape_projected"  # the projector's commits (read-your-writes waiters LISTEN)


def notify(conn: Connection, channel: str, payload: str = "") -> None:
    """Postgres: wake the LISTENers of `channel` when this transaction commits."""
    conn.execute(sa.text("SELECT pg_notify(:channel, :payload)"), {"channel": channel, "payload": payload})


class Listener:
    """A dedicated Postgres connection LISTENing on `channel` (not from the pool: it stays idle in
    LISTEN). `wait` returns when a notification arrives or after `timeout`; a lost connection is
    opened again at the next wait (and that wait reports a wake-up, so nothing is missed meanwhile).
    `payloads` holds the payloads of the notifications the last `wait` drained (empty after a
    reconnect: what happened meanwhile is unknown)."""

    def __init__(self, database_url: str, channel: str) -> None:
        self.dsn = "postgresql://" + sqlalchemy_url(database_url).split("://", 1)[1]
        self.channel = channel
        self._conn: Any = None
        self.payloads: list[str] = []

    def _connect(self) -> Any:
        import psycopg

        conn = psycopg.connect(self.dsn, autocommit=True)
        conn.execute(f"LISTEN {self.channel}")
        return conn

    def wait(self, timeout: float) -> bool:
        """True if notified within `timeout` seconds (pending notifications are drained)."""
        self.payloads = []
        try:
            if self._conn is None:
                self._conn = self._connect()
                return True  # (re)connected: whatever happened meanwhile is unknown, so look now
            for n in self._conn.notifies(timeout=timeout, stop_after=1):
                self.payloads.append(n.payload)
            if self.payloads:
                self.payloads.extend(n.payload for n in self._conn.notifies(timeout=0))
            return bool(self.payloads)
        except Exception:
            self.payloads = []
            self.close()
            time.sleep(min(timeout, 0.5))
            return True

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):  # already broken: nothing to close cleanly
                self._conn.close()
            self._conn = None


def epoch(dt: datetime) -> float:
    return dt.timestamp()


class SqlIdAllocator:
    """Integer ids from a per-kind sequence row (an atomic upsert-and-return)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._stmt = sa.text(
            "INSERT INTO id_sequences (name, value) VALUES (:name, 1) "
            "ON CONFLICT (name) DO UPDATE SET value = id_sequences.value + 1 RETURNING value"
        )

    def next_id(self, kind: str) -> int:
        with self.db.self_committing() as conn:  # concurrent creates queue on this row: hold it briefly
            return int(conn.execute(self._stmt, {"name": kind}).scalar_one())
