"""Tamper evidence: a SHA-256 hash chain per account over the stored events.

    hash(e) = sha256(prev_hash || canonical_json(e))     prev_hash of an account's first event = 64 x "0"

`canonical_json` is the event's envelope without its store position and hashes (sorted keys, no
spaces), so an export re-imported elsewhere verifies the same. The chain follows store order
(the notification ids, which never reorder commits).

Sealing: the readers that hand events on seal first -- the relay before it publishes (so every event
on the topic carries its hash), the audit API and `audit verify` -- in one short transaction per batch
under a global lock (an advisory lock on Postgres, BEGIN IMMEDIATE on SQLite). The relay computes the
hashes of what it publishes in memory and writes them every 250 ms (`RunningSeal`): a chain is a pure
function of store order, so every sealer computes the same hashes. In the embedded default
the projector, which needs no hashes, seals when the log is idle and at least every 250 ms
(`streams.sources.StoreSource`). Commands pay no extra transaction; an event stays unsealed for at most
a moment after its commit. Sealed hashes are kept in
`audit_chain`; `verify_store` recomputes every chain from the stored events and reports the first
break (an altered event, a deleted one, a hash row that was changed).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from infra.store.db import Database
from projections.envelope import Envelope

GENESIS = "0" * 64
_ADVISORY_KEY = 7411002
_BATCH = 2000

metadata = sa.MetaData()
audit_chain = sa.Table(
    "audit_chain", metadata,
    sa.Column("position", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("account_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("event_id", sa.String(36), nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)
audit_chain_heads = sa.Table(
    "audit_chain_heads", metadata,
    sa.Column("account_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("events", sa.BigInteger, nullable=False),
)
audit_chain_state = sa.Table(
    "audit_chain_state", metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("sealed_position", sa.BigInteger, nullable=False),
)

# built once (the relay runs these for every batch)
_SEALED = sa.select(audit_chain_state.c.sealed_position).where(audit_chain_state.c.name == "store")
_HEADS = sa.select(audit_chain_heads.c.account_id, audit_chain_heads.c.hash, audit_chain_heads.c.events).where(
    audit_chain_heads.c.account_id.in_(sa.bindparam("accounts", expanding=True)))
_SET_HEAD = sa.update(audit_chain_heads).where(audit_chain_heads.c.account_id == sa.bindparam("acct")).values(
    hash=sa.bindparam("h"), events=sa.bindparam("n"), position=sa.bindparam("pos"))
_SET_SEALED = sa.update(audit_chain_state).where(audit_chain_state.c.name == "store").values(
    sealed_position=sa.bindparam("pos"))
_INSERT_CHAIN = sa.insert(audit_chain)


def canonical(env: Envelope) -> bytes:
    """The hashed form of an event: its envelope minus position and hashes.

    Total: it cannot fail on any stored event. JSON as UTF-8 (not ASCII-escaped), where a lone surrogate
    (a `\\ud800` escape in a stored document, which is not a character UTF-8 can hold) is written as
    its 3-byte surrogate code unit (Python's `surrogatepass`): deterministic, and every valid event
    hashes exactly as before."""
    doc: dict[str, Any] = {
        "event_id": env.event_id, "type": env.type, "schema_version": env.schema_version,
        "aggregate_type": env.aggregate_type, "aggregate_id": env.aggregate_id,
        "aggregate_version": env.aggregate_version, "account_id": env.account_id,
        "occurred_at": env.occurred_at, "meta": env.meta, "data": env.data,
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass")


def chain_hash(prev_hash: str, env: Envelope) -> str:
    return hashlib.sha256(prev_hash.encode() + canonical(env)).hexdigest()


def account_of(env: Envelope) -> int:
    return int(env.account_id) if env.account_id is not None else 0


@dataclass(frozen=True)
class Break:
    position: int
    account_id: int
    reason: str

    def __str__(self) -> str:
        return f"position {self.position} (account {self.account_id}): {self.reason}"


class HashChain:
    """The per-account chains of one event store (`read_after(position, limit)` yields envelopes)."""

    def __init__(self, db: Database, read_after: Any) -> None:
        self.db = db
        self.read_after = read_after
        self.sealed = 0  # this process's view of the sealed position (a lower bound)

    def create_tables(self) -> None:
        metadata.create_all(self.db.writer)

    @staticmethod
    def _lock(conn: Connection, db: Database) -> None:
        if not db.is_sqlite:  # SQLite: the write transaction is BEGIN IMMEDIATE already
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_KEY})

    def _sealed_position(self, conn: Connection) -> int:
        return int(conn.execute(_SEALED).scalar_one_or_none() or 0)

    def seal(self, upto: int | None = None) -> int:
        """Chain every stored event not yet sealed (at least up to `upto` if given); returns the sealed
        position. Events are read before the lock is taken (the store's own connection pool must not
        be needed while this transaction holds the write lock); the batch is written only if nobody
        sealed meanwhile, else it is read again."""
        while upto is None or self.sealed < upto:
            with self.db.read() as conn:
                start = self._sealed_position(conn)
            self.sealed = max(self.sealed, start)
            if upto is not None and start >= upto:
                break
            envs = self.read_after(start, _BATCH)
            if not envs:
                break
            with self.db.write(durable=False) as conn:  # a lost seal is sealed again, identically
                self._lock(conn, self.db)
                if self._sealed_position(conn) != start:
                    continue  # another process sealed these; read again
                self._write_batch(conn, envs)
            self.sealed = envs[-1].position
            if len(envs) < _BATCH:
                break
        return self.sealed

    def seal_read(self, after: int, envs: list[Envelope]) -> dict[int, tuple[str, str]]:
        """Seal `envs` -- what one store read returned after position `after`: every stored event from
        there up to the last of them -- and return their (prev_hash, hash) by position. The common
        case (the relay, whose position never passes the sealed one) writes the seal from these
        envelopes without reading the events again and takes the new hashes from the write."""
        if not envs:
            return {}
        last = envs[-1].position
        found: dict[int, tuple[str, str]] = {}
        if self.sealed < last:
            with self.db.write(durable=False) as conn:  # a lost seal is sealed again, identically
                self._lock(conn, self.db)
                start = self._sealed_position(conn)
                if start >= after:
                    todo = [e for e in envs if e.position > start]
                    if todo:
                        found = self._write_batch(conn, todo)
            if start < after:  # unsealed events lie before these: seal from the store, as usual
                self.seal(last)
            else:
                self.sealed = max(self.sealed, start, last)
        missing = [e.position for e in envs if e.position not in found]
        if missing:
            found.update(self.hashes(missing))
        return found

    @staticmethod
    def _read_heads(conn: Connection, accounts: Iterable[int]) -> dict[int, tuple[str, int, int]]:
        """account -> (hash, events, 0) of the stored heads of these accounts."""
        wanted = sorted(set(accounts))
        heads: dict[int, tuple[str, int, int]] = {}
        for i in range(0, len(wanted), 500):
            for row in conn.execute(_HEADS, {"accounts": wanted[i:i + 500]}):
                heads[int(row.account_id)] = (str(row.hash), int(row.events), 0)
        return heads

    @staticmethod
    def _write_seal(conn: Connection, rows: list[dict[str, Any]], heads: dict[int, tuple[str, int, int]],
                    sealed: int, after: int = 0) -> None:
        """Store chain rows, the heads whose last position passed `after`, and the sealed position."""
        conn.execute(_INSERT_CHAIN, rows)
        for acct, (h, count, last) in heads.items():
            if last > after and not conn.execute(_SET_HEAD, {"acct": acct, "h": h, "n": count, "pos": last}).rowcount:
                conn.execute(sa.insert(audit_chain_heads).values(account_id=acct, hash=h, events=count,
                                                                 position=last))
        if not conn.execute(_SET_SEALED, {"pos": sealed}).rowcount:
            conn.execute(sa.insert(audit_chain_state).values(name="store", sealed_position=sealed))

    def _write_batch(self, conn: Connection, envs: list[Envelope]) -> dict[int, tuple[str, str]]:
        heads = self._read_heads(conn, (account_of(env) for env in envs))
        rows = []
        sealed_hashes: dict[int, tuple[str, str]] = {}
        for env in envs:
            acct = account_of(env)
            prev, count, _ = heads.get(acct, (GENESIS, 0, 0))
            h = chain_hash(prev, env)
            heads[acct] = (h, count + 1, env.position)
            sealed_hashes[env.position] = (prev, h)
            rows.append({"position": env.position, "account_id": acct, "event_id": env.event_id,
                         "prev_hash": prev, "hash": h})
        self._write_seal(conn, rows, heads, envs[-1].position)
        return sealed_hashes

    def hashes(self, positions: Iterable[int]) -> dict[int, tuple[str, str]]:
        wanted = sorted(set(positions))
        if not wanted:
            return {}
        cols = sa.select(audit_chain.c.position, audit_chain.c.prev_hash, audit_chain.c.hash)
        lo, hi = wanted[0], wanted[-1]
        with self.db.read() as conn:
            if hi - lo + 1 <= 2 * len(wanted):  # (nearly) contiguous, as a store batch: one range scan
                rows = conn.execute(cols.where(audit_chain.c.position.between(lo, hi))).all()
            else:  # sparse (one account's page among many accounts): only the wanted rows
                rows = [r for i in range(0, len(wanted), 500)
                        for r in conn.execute(cols.where(audit_chain.c.position.in_(wanted[i:i + 500]))).all()]
        keep = set(wanted)
        return {int(r.position): (str(r.prev_hash), str(r.hash)) for r in rows if int(r.position) in keep}

    # ------------------------------------------------------------------ verification

    def stored_rows(self) -> Iterator[Any]:
        with self.db.read() as conn:
            yield from conn.execute(sa.select(audit_chain).order_by(audit_chain.c.position)).all()

    def verify_store(self) -> tuple[list[Break], dict[str, int]]:
        """Recompute every chain from the stored events and compare with the sealed hashes."""
        self.seal()
        chain_rows = {int(r.position): r for r in self.stored_rows()}
        heads: dict[int, str] = {}
        breaks: list[Break] = []
        seen: set[int] = set()
        events = 0
        after = 0
        while True:
            envs = self.read_after(after, _BATCH)
            if not envs:
                break
            for env in envs:
                events += 1
                after = env.position
                seen.add(env.position)
                acct = account_of(env)
                prev = heads.get(acct, GENESIS)
                h = chain_hash(prev, env)
                heads[acct] = h
                row = chain_rows.get(env.position)
                if row is None:
                    breaks.append(Break(env.position, acct, "event has no sealed hash"))
                elif row.hash != h or row.prev_hash != prev:
                    why = ("the event differs from what was sealed (altered after it was recorded)"
                           if row.prev_hash == prev else "the chain before it changed (an earlier event of "
                           "this account was altered or removed)")
                    breaks.append(Break(env.position, acct, why))
                    heads[acct] = row.hash  # continue from the sealed chain to find further breaks
        for position, row in chain_rows.items():
            if position not in seen:
                breaks.append(Break(position, int(row.account_id), f"event {row.event_id} is missing from the store"))
        breaks.sort(key=lambda b: b.position)
        return breaks, {"events": events, "sealed": len(chain_rows), "accounts": len(heads)}


def verify_envelopes(envs: Iterable[Envelope], from_genesis: bool = True) -> tuple[list[Break], dict[str, int]]:
    """Recompute the chains carried by envelopes (from the topic or an export), in their order;
    duplicates (same event id) are counted and skipped. `from_genesis` False (an export of a time
    window): each account's first event may link to a hash before the window."""
    heads: dict[int, str] = {}
    seen: set[str] = set()
    breaks: list[Break] = []
    n = dup = 0
    for env in envs:
        if env.event_id in seen:
            dup += 1
            continue
        seen.add(env.event_id)
        n += 1
        acct = account_of(env)
        prev = heads.get(acct, GENESIS if from_genesis else env.prev_hash)
        if env.prev_hash != prev:
            breaks.append(Break(env.position, acct, "prev_hash does not link to the account's previous event"))
        h = chain_hash(env.prev_hash, env)
        if h != env.hash:
            breaks.append(Break(env.position, acct, "hash does not match the event (altered)"))
        heads[acct] = env.hash
    return breaks, {"events": n, "duplicates": dup, "accounts": len(heads)}


class RunningSeal:
    """The relay's view of the chains: hashes computed in memory as it reads the store, written to
    `audit_chain` in one transaction every `every` seconds (and when it idles or stops) instead of one
    transaction per published batch.

    Safe because a chain is a pure function of the store's order: whoever seals a position (this relay,
    an API process serving the audit trail, `audit verify`) computes the same hashes, so publishing a
    hash before it is written changes nothing, and a relay that dies with hashes unwritten leaves them to
    be computed again, identically. The memory is trusted only while nobody else sealed: it continues
    from the store's sealed position `base`; an account's head not in memory comes from
    `audit_chain_heads` only if the sealed position is still `base` (else the head row may be ahead of
    what this relay has read). Whenever that does not hold, or the relay re-reads from elsewhere, the
    batch goes through `HashChain.seal_read` and the memory starts again from there."""

    def __init__(self, chain: HashChain, every: float = 0.25) -> None:
        self.chain = chain
        self.every = every
        self._heads: dict[int, tuple[str, int, int]] = {}  # account -> (hash, events, last position)
        self._rows: list[dict[str, Any]] = []  # sealed in memory, not written yet
        self._at: int | None = None  # memory is exact through this position
        self._base = 0  # the store's sealed position the memory continues from
        self._written_at = 0.0

    def hashes(self, after: int, envs: list[Envelope]) -> dict[int, tuple[str, str]]:
        """(prev_hash, hash) by position for `envs`, the events after position `after`."""
        if not envs:
            return {}
        if self._at != after:
            return self._restart(after, envs)
        missing = sorted({account_of(e) for e in envs} - set(self._heads))
        if missing:
            loaded = self._load_heads(missing)
            if loaded is None:  # somebody else sealed meanwhile: the memory may be stale
                self.flush()
                return self._restart(after, envs)
            self._heads.update(loaded)
        out: dict[int, tuple[str, str]] = {}
        for env in envs:
            acct = account_of(env)
            prev, count, _ = self._heads.get(acct, (GENESIS, 0, 0))
            h = chain_hash(prev, env)
            self._heads[acct] = (h, count + 1, env.position)
            out[env.position] = (prev, h)
            self._rows.append({"position": env.position, "account_id": acct, "event_id": env.event_id,
                               "prev_hash": prev, "hash": h})
        self._at = envs[-1].position
        return out

    def _restart(self, after: int, envs: list[Envelope]) -> dict[int, tuple[str, str]]:
        self._heads, self._rows, self._at = {}, [], None
        found = self.chain.seal_read(after, envs)
        with self.chain.db.read() as conn:
            sealed = self.chain._sealed_position(conn)
        if sealed == envs[-1].position:  # the store is sealed exactly this far: continue in memory
            self._at = self._base = sealed
        return found

    def _load_heads(self, accounts: list[int]) -> dict[int, tuple[str, int, int]] | None:
        with self.chain.db.read() as conn:
            if self.chain._sealed_position(conn) != self._base:
                return None
            return HashChain._read_heads(conn, accounts)

    def due(self) -> bool:
        return bool(self._rows) and time.monotonic() - self._written_at >= self.every

    def flush(self) -> None:
        """Write what was sealed in memory (the part nobody else wrote meanwhile)."""
        self._written_at = time.monotonic()
        if not self._rows or self._at is None:
            return
        db = self.chain.db
        with db.write(durable=False) as conn:  # a lost seal is sealed again, identically
            HashChain._lock(conn, db)
            sealed = self.chain._sealed_position(conn)
            rows = [r for r in self._rows if r["position"] > sealed]
            if rows:
                HashChain._write_seal(conn, rows, self._heads, self._at, after=sealed)
        self.chain.sealed = max(self.chain.sealed, sealed, self._at)
        self._rows = []
        if sealed > self._at:  # somebody sealed past this memory: start again from the store next time
            self._heads, self._at = {}, None
        else:
            self._base = self._at
            self._heads = {a: (h, n, 0) for a, (h, n, _) in self._heads.items()}

    def reset(self) -> None:
        """Forget the memory (after an error): the next batch starts from the store."""
        self._heads, self._rows, self._at = {}, [], None
