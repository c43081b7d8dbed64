"""Audit tooling: verify that the store's hash chains, the Kafka topic and every projection agree;
replay read models into a scratch database and compare row checksums; export one account's events
with their chain and check an export offline.

    tradertape audit verify [--no-topic] [--no-projections]
    tradertape audit export --account EMAIL [--from D] [--to D] --format jsonl|parquet [--out FILE]
    tradertape audit import-check FILE
    tradertape replay --projection NAME|all [--source store|kafka] [--in-place]
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from infra.bootstrap import Platform, bootstrap
from infra.config.settings import Settings
from infra.store.chain import GENESIS, Break, verify_envelopes
from infra.store.db import Database
from projections.audit import utc_moment
from projections.base import Projection, projection_tracking
from projections.envelope import Envelope
from projections.registry import all_projections
from streams.runner import ProjectionRunner, RebuildStalled
from streams.sources import KAFKA_RETRY, KafkaSource, StoreSource
from streams.workers import rebuild_read_models

console = Console()
EXPORT_MAGIC = "tradertape-audit-export"


# ------------------------------------------------------------------ row checksums


def _norm(v: Any) -> Any:
    if isinstance(v, bool) or v is None or isinstance(v, int | str):
        return v
    if isinstance(v, float | Decimal):
        return round(float(v), 6)
    if isinstance(v, dict | list):
        return json.dumps(v, sort_keys=True, default=str)
    return str(v)


def table_checksums(db: Database, projections: Sequence[Projection]) -> dict[str, tuple[int, str]]:
    """Per read-model table: (rows, sha256 over its rows in primary-key order)."""
    out: dict[str, tuple[int, str]] = {}
    with db.read() as conn:
        for p in projections:
            for table in p.metadata.sorted_tables:
                keys = list(table.primary_key.columns) or list(table.columns)
                rows = conn.execute(sa.select(table).order_by(*keys)).all()
                digest = hashlib.sha256()
                for r in rows:
                    digest.update(json.dumps([_norm(v) for v in r], default=str).encode())
                out[table.name] = (len(rows), digest.hexdigest())
    return out


@contextmanager
def scratch_database(live: Database) -> Iterator[Database]:
    """An empty database of the same kind as `live`, dropped afterwards."""
    if live.is_sqlite:
        with tempfile.TemporaryDirectory(prefix="tt-replay-") as tmp:
            db = Database.from_url(f"sqlite:///{tmp}/replay.db")
            try:
                yield db
            finally:
                db.dispose()
        return
    url = sa.engine.make_url(live.url)
    name = f"{url.database}_replay_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    db = Database.from_url(url.set(database=name).render_as_string(hide_password=False))
    try:
        yield db
    finally:
        db.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _select(names: str) -> list[Projection]:
    projections = all_projections()
    if names == "all":
        return projections
    wanted = {n.strip() for n in names.split(",")}
    known = {p.name for p in projections}
    if not wanted <= known:
        unknown = ", ".join(sorted(wanted - known))
        raise SystemExit(f"unknown projection(s) {unknown}; known: {', '.join(sorted(known))}")
    return [p for p in projections if p.name in wanted]


def _source(platform: Platform, kind: str) -> StoreSource | KafkaSource:
    if kind == "kafka":
        s = platform.settings
        if not s.kafka_bootstrap:
            raise SystemExit("TRADERTAPE_KAFKA_BOOTSTRAP is not set: --source kafka reads the topic")
        return KafkaSource(s.kafka_bootstrap, s.kafka_topic)
    return StoreSource(platform.store)


def wait_live_caught_up(platform: Platform, projections: Sequence[Projection], head: int, timeout: float = 30.0) -> int:
    """The position every named live projection has applied, once it reaches `head` (or the timeout)."""
    names = [p.name for p in projections]
    deadline = time.monotonic() + timeout
    while True:
        with platform.db.read() as conn:
            rows = conn.execute(sa.select(projection_tracking.c.projection, projection_tracking.c.position)
                                .where(projection_tracking.c.projection.in_(names))).all()
        best: dict[str, int] = {}
        for r in rows:
            best[r.projection] = max(best.get(r.projection, 0), int(r.position))
        applied = min((best.get(n, 0) for n in names), default=0)
        if applied >= head or time.monotonic() > deadline:
            return applied


LIVE_READS = 5  # reads of the live read models, each at a still store head, before giving up


def replay_and_compare(platform: Platform, projections: Sequence[Projection],
                       source: str) -> tuple[dict[str, tuple[int, str]], dict[str, tuple[int, str]], int]:
    """Rebuild `projections` into a scratch database from `source` up to the store head (from Kafka:
    until every partition reached its end offset as of the start); returns the live and replayed
    checksums and the head. The live checksums are read once the live read models applied the head and while no
    event arrives. Raises ReplayIncomplete if the source did not hold every event up to it, or the live read
    models could not be read at a still head (never a difference that is only lag)."""
    for _ in range(LIVE_READS):
        head = platform.store.max_position()
        applied = wait_live_caught_up(platform, projections, head)
        if applied < head:  # comparing now would report a difference that is only the projector's lag
            raise ReplayIncomplete(f"the live read models have applied only up to position {applied} of the store "
                                   f"head {head}: the projector is behind; run this again once it caught up")
        live = table_checksums(platform.db, projections)
        if platform.store.max_position() == head:  # nothing arrived while the live tables were read
            break
    else:
        raise ReplayIncomplete(f"events kept arriving while the live read models were read ({LIVE_READS} tries): "
                               "run this again in a quieter moment")
    with scratch_database(platform.db) as scratch:
        runner = ProjectionRunner(scratch, list(projections), _source(platform, source))
        try:  # creates the tracking and read-model tables in the empty database
            _, covered, _ = rebuild_read_models(platform, runner, source, head, cover=False)
        except RebuildStalled as exc:
            raise ReplayIncomplete(str(exc)) from None
        finally:
            runner.source.close()
        if covered < head:
            raise ReplayIncomplete(f"the relay has published only up to position {covered} of the store head "
                                   f"{head}: the topic cannot be replayed to the head")
        replayed = table_checksums(scratch, projections)
    return live, replayed, head


class ReplayIncomplete(RuntimeError):
    pass


def _owners(projections: Sequence[Projection]) -> dict[str, str]:
    """Read-model table -> the projection that writes it (the name `replay --projection` takes)."""
    return {table.name: p.name for p in projections for table in p.metadata.sorted_tables}


def _checksum_table(live: dict[str, tuple[int, str]], replayed: dict[str, tuple[int, str]],
                    projections: Sequence[Projection]) -> tuple[Table, list[str]]:
    owners = _owners(projections)
    table = Table("projection", "read model", "live rows", "replayed rows", "")  # checksums: in the failures
    for column in table.columns[:2]:
        column.no_wrap, column.overflow = True, "fold"
    bad: list[str] = []
    for name in sorted(live, key=lambda n: (owners.get(n, ""), n)):
        (ln, lc), (rn, rc) = live[name], replayed.get(name, (0, ""))
        ok = (ln, lc) == (rn, rc)
        owner = owners.get(name, "?")
        if not ok:
            bad.append(f"read model {name} differs from a rebuild: live {ln} rows (checksum {lc[:16]}), "
                       f"rebuilt {rn} rows (checksum {rc[:16]}); `tradertape replay --projection {owner} "
                       "--in-place` rebuilds it")
        table.add_row(owner, name, str(ln), str(rn), "[green]equal[/]" if ok else "[red]DIFFERENT[/]")
    return table, bad


# ------------------------------------------------------------------ the topic


def read_topic(platform: Platform, expected: set[int] | None = None) -> list[tuple[int, int, Envelope]]:
    """Every message on the topic as (partition, offset, envelope), per partition in offset order: read
    until every partition reached its end offset as of the start and (if given) every `expected`
    position was seen -- a broker may answer an end offset short (Tansu: the last batch's base offset
    plus one) -- or no message came for 30 s."""
    from kafka import KafkaConsumer, TopicPartition

    s = platform.settings
    assert s.kafka_bootstrap
    consumer = KafkaConsumer(bootstrap_servers=s.kafka_bootstrap, enable_auto_commit=False, group_id=None,
                             fetch_max_wait_ms=50, max_poll_records=5000, request_timeout_ms=30000,
                             **KAFKA_RETRY)
    try:
        parts = sorted(consumer.partitions_for_topic(s.kafka_topic) or [])
        tps = [TopicPartition(s.kafka_topic, p) for p in parts]
        if not tps:
            return []
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        out: list[tuple[int, int, Envelope]] = []
        done = {tp: consumer.position(tp) >= ends[tp] for tp in tps}
        missing = set(expected or ())
        idle_until = time.monotonic() + 30  # no message for this long: the broker stalls, give up
        while (missing or not all(done.values())) and time.monotonic() < idle_until:
            for tp, records in consumer.poll(timeout_ms=200).items():
                idle_until = time.monotonic() + 30
                for rec in records:
                    env = Envelope.from_json(rec.value)
                    missing.discard(env.position)
                    out.append((tp.partition, rec.offset, env))
                done[tp] = consumer.position(tp) >= ends[tp]
        return sorted(out, key=lambda x: (x[0], x[1]))
    finally:
        consumer.close()


def verify_topic(platform: Platform) -> tuple[list[str], dict[str, int]]:
    problems: list[str] = []
    store_positions: dict[int, str] = {}  # position -> event id (all the comparison needs)
    after = 0
    while True:
        batch = platform.store.read_plain(after, 5000)
        if not batch:
            break
        for env in batch:
            store_positions[env.position] = env.event_id
        after = batch[-1].position
    messages = read_topic(platform, set(store_positions))
    seen: dict[str, int] = {}
    last_by_account: dict[int, int] = {}
    for part, offset, env in messages:
        if env.event_id in seen:
            continue
        seen[env.event_id] = env.position
        acct = env.account_id if env.account_id is not None else 0
        if env.position <= last_by_account.get(acct, 0):
            problems.append(f"account {acct}: position {env.position} (partition {part} offset {offset}) "
                            f"arrives after {last_by_account[acct]}: order differs from the store")
        last_by_account[acct] = max(env.position, last_by_account.get(acct, 0))
        if store_positions.get(env.position) != env.event_id:
            problems.append(f"position {env.position}: topic event {env.event_id} is not that position in the store")
    missing = sorted(set(store_positions) - set(seen.values()))
    if missing:
        problems.append(f"{len(missing)} stored event(s) missing from the topic, first at position {missing[0]}")
    breaks, figures = verify_envelopes(env for _, _, env in messages)
    problems.extend(f"topic chain break at {b}" for b in breaks[:20])
    figures.update(messages=len(messages), missing=len(missing), stored=len(store_positions))
    return problems, figures


# ------------------------------------------------------------------ commands


def cmd_verify(args: argparse.Namespace) -> int:
    platform = bootstrap(Settings())
    failures: list[str] = []
    try:
        chain = platform.store.chain
        breaks, figures = chain.verify_store()
        console.print(f"store chains: {figures['events']} events, {figures['sealed']} sealed hashes, "
                      f"{figures['accounts']} accounts")
        if breaks:
            console.print(f"[red]first break:[/] {breaks[0]}", soft_wrap=True)
            failures.extend(f"store chain break at {b}" for b in breaks)
        if platform.settings.kafka_bootstrap and not args.no_topic:
            problems, tf = verify_topic(platform)
            console.print(f"topic {platform.settings.kafka_topic}: {tf['messages']} messages, {tf['events']} distinct "
                          f"events, {tf['duplicates']} duplicates, {tf['missing']} of {tf['stored']} stored missing")
            failures.extend(problems)
        if not args.no_projections:
            projections = all_projections()
            source = "kafka" if platform.settings.kafka_bootstrap else "store"
            try:
                live, replayed, head = replay_and_compare(platform, projections, source)
            except ReplayIncomplete as exc:
                failures.append(f"projections could not be rebuilt from the {source}: {exc}")
            else:
                table, bad = _checksum_table(live, replayed, projections)
                console.print(f"projections vs a rebuild from the {source} up to position {head}:")
                console.print(table)
                failures.extend(bad)
    finally:
        platform.close()
    for f in failures[:50]:
        console.print(f"[red]FAIL[/] {f}", soft_wrap=True)
    if failures:
        console.print(f"[red]audit verify failed: {len(failures)} discrepancy(ies)[/]")
        return 1
    console.print("[green]audit verify passed[/]")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    platform = bootstrap(Settings())
    try:
        projections = _select(args.projection)
        source = args.source or ("store" if platform.settings.embedded_transport else "kafka")
        if args.in_place:
            runner = ProjectionRunner(platform.db, projections, _source(platform, source))
            try:
                n, covered, head = rebuild_read_models(platform, runner, source)
            except RebuildStalled as exc:
                console.print(f"[red]replay failed:[/] {exc}")
                return 1
            finally:
                runner.source.close()
            console.print(f"replayed {n} events into {', '.join(p.name for p in projections)} up to position "
                          f"{covered} (head {head})")
            for name, (rows, digest) in sorted(table_checksums(platform.db, projections).items()):
                console.print(f"  {name}: {rows} rows, checksum {digest[:16]}")
            return 0 if covered >= head else 1
        try:
            live, replayed, head = replay_and_compare(platform, projections, source)
        except ReplayIncomplete as exc:
            console.print(f"[red]replay failed:[/] {exc}", soft_wrap=True)
            return 1
        table, bad = _checksum_table(live, replayed, projections)
        console.print(f"replayed from the {source} up to position {head} into a scratch database:")
        console.print(table)
        for line in bad:
            console.print(f"[red]DIFFERENT[/] {line}", soft_wrap=True)
        return 1 if bad else 0
    finally:
        platform.close()


def _day_bound(text: str | None, end: bool) -> str | None:
    if not text:
        return None
    try:
        return utc_moment(text, end_of_day=end)
    except ValueError as exc:
        raise SystemExit(f"--from/--to: {exc}") from None


def export_events(platform: Platform, account_id: int, since: str | None, until: str | None) -> list[Envelope]:
    """The account's events in the window with their chain hashes. The log is read plain and hashes
    are fetched only for the events kept (not for every account's events, batch by batch)."""
    chain = platform.store.chain
    out: list[Envelope] = []
    after = 0
    while True:
        batch = platform.store.read_plain(after, 5000)
        if not batch:
            break
        after = batch[-1].position
        for env in batch:
            if (env.account_id or 0) != account_id:
                continue
            at = datetime.fromisoformat(env.occurred_at).astimezone(UTC).isoformat()
            if (since and at < since) or (until and at > until):
                continue
            out.append(env)
    if out:
        chain.seal(out[-1].position)
    hashes = chain.hashes(e.position for e in out)
    return [dataclasses.replace(e, prev_hash=hashes[e.position][0], hash=hashes[e.position][1]) for e in out]


def cmd_export(args: argparse.Namespace) -> int:
    platform = bootstrap(Settings())
    try:
        account_id = platform.security.account_id_for_email(args.account.strip().lower())
        if account_id is None:
            console.print(f"[red]Error:[/] no account with email {args.account}")
            return 2
        envs = export_events(platform, account_id, _day_bound(args.start, False), _day_bound(args.end, True))
    finally:
        platform.close()
    header = {"format": EXPORT_MAGIC, "version": 1, "account_id": account_id, "from": args.start, "to": args.end,
              "events": len(envs), "first_prev_hash": envs[0].prev_hash if envs else GENESIS,
              "last_hash": envs[-1].hash if envs else GENESIS,
              "exported_at": datetime.now(UTC).isoformat()}
    out = Path(args.out or f"audit-{account_id}.{args.format}")
    if args.format == "jsonl":
        with out.open("w", encoding="utf-8") as fh:
            fh.write(json.dumps({"header": header}, sort_keys=True) + "\n")
            for env in envs:
                fh.write(env.to_json().decode() + "\n")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        cols: dict[str, list[Any]] = {k: [] for k in Envelope.__dataclass_fields__}
        for env in envs:
            for k in cols:
                v = getattr(env, k)
                cols[k].append(json.dumps(v, sort_keys=True) if isinstance(v, dict) else v)
        table = pa.table(cols).replace_schema_metadata({"tradertape": json.dumps(header, sort_keys=True)})
        pq.write_table(table, out)
    console.print(f"exported {len(envs)} events of account {account_id} to {out} "
                  f"(last hash {header['last_hash'][:16]})")
    return 0


def load_export(path: Path) -> tuple[dict[str, Any], list[Envelope]]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        header = json.loads((table.schema.metadata or {}).get(b"tradertape", b"{}"))
        envs = []
        for row in table.to_pylist():
            row["data"], row["meta"] = json.loads(row["data"]), json.loads(row["meta"])
            envs.append(Envelope(**row))
        return header, envs
    lines = path.read_text(encoding="utf-8").splitlines()
    header = json.loads(lines[0]).get("header", {}) if lines else {}
    return header, [Envelope.from_json(line) for line in lines[1:] if line.strip()]


def check_export(path: Path) -> tuple[list[str], dict[str, Any]]:
    try:
        header, envs = load_export(path)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return [f"cannot read {path}: {exc}"], {}
    problems: list[str] = []
    if header.get("format") != EXPORT_MAGIC:
        problems.append("not a tradertape audit export (no header)")
    if header.get("events") != len(envs):
        problems.append(f"header says {header.get('events')} events, the file holds {len(envs)}")
    if envs and envs[0].prev_hash != header.get("first_prev_hash"):
        problems.append("the first event does not link to the header's first_prev_hash")
    if envs and envs[-1].hash != header.get("last_hash"):
        problems.append("the last event's hash differs from the header's last_hash (events removed at the end?)")
    positions = [e.position for e in envs]
    if positions != sorted(positions):
        problems.append("events are not in store order")
    breaks: list[Break]
    breaks, figures = verify_envelopes(envs, from_genesis=False)
    problems.extend(str(b) for b in breaks)
    return problems, {"header": header, **figures}


def cmd_import_check(args: argparse.Namespace) -> int:
    problems, figures = check_export(Path(args.file))
    if problems:
        for p in problems[:50]:
            console.print(f"[red]FAIL[/] {p}", soft_wrap=True)
        return 1
    header = figures["header"]
    console.print(f"[green]export verified[/]: {figures['events']} events, chain intact "
                  f"(account {header.get('account_id')}, last hash {str(header.get('last_hash', ''))[:16]})")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    audit = sub.add_parser("audit", help="tamper evidence, exports, agreement of store, topic and read models")
    asub = audit.add_subparsers(dest="audit_cmd", required=True)
    v = asub.add_parser("verify", help="recompute hash chains (store, topic), check the topic holds every event "
                                       "in order, compare every projection with a rebuild; non-zero on discrepancy")
    v.add_argument("--no-topic", action="store_true")
    v.add_argument("--no-projections", action="store_true")
    v.set_defaults(func=cmd_verify)
    e = asub.add_parser("export", help="one account's events with their hash chain")
    e.add_argument("--account", required=True, metavar="EMAIL")
    e.add_argument("--from", dest="start", default=None, help="date or ISO timestamp")
    e.add_argument("--to", dest="end", default=None)
    e.add_argument("--format", choices=["jsonl", "parquet"], default="jsonl")
    e.add_argument("--out", default=None, help="default audit-<account>.<format>")
    e.set_defaults(func=cmd_export)
    c = asub.add_parser("import-check", help="verify an export offline (chain, counts, order)")
    c.add_argument("file")
    c.set_defaults(func=cmd_import_check)
    r = sub.add_parser("replay", help="rebuild read models from the store or the topic and compare checksums")
    r.add_argument("--projection", default="all", help="a projection name, several comma-separated, or all")
    r.add_argument("--source", choices=["store", "kafka"], default=None)
    r.add_argument("--in-place", action="store_true", help="replace the live read models (stop projectors first)")
    r.set_defaults(func=cmd_replay)
