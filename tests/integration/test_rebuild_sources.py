"""Rebuilds from either source are complete and leave tracking right for both: a rebuild from Kafka reads
every partition to its end offset as of the start (not until the highest position across partitions
passes the head), and after a rebuild from the store (or from Kafka) a projector on the other source
resumes exactly after it. `audit verify` and `replay --source kafka` share the loop."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from api.cli import main
from commands import messages as m
from commands.ports import CommandMeta
from infra.bootstrap import Platform, bootstrap, seed
from projections.base import projection_dead_letters
from projections.registry import all_projections
from streams.audit import replay_and_compare
from streams.runner import ProjectionRunner
from streams.workers import make_projector, make_relay, partition_for, rebuild_read_models
from tests.conftest import make_settings
from tests.support.services import KafkaBroker
from tests.support.snapshots import snapshot

META = CommandMeta(actor="test")
PARTITIONS = 3


@pytest.fixture
def kplatform(tmp_path: Path, pg_url: str, kafka: KafkaBroker, monkeypatch: pytest.MonkeyPatch) -> Any:
    settings = make_settings(tmp_path, pg_url, kafka_bootstrap=kafka.bootstrap,
                             kafka_topic=f"tt.{uuid.uuid4().hex[:8]}", kafka_partitions=PARTITIONS)
    p = bootstrap(settings)
    seed(p)
    for key, value in {"DATABASE_URL": pg_url, "VAR_DIR": str(settings.var_dir), "SECRET_KEYS": settings.secret_keys,
                       "DATA_DIR": str(settings.data_dir), "DUCKDB_PATH": str(settings.duckdb_path),
                       "KAFKA_BOOTSTRAP": kafka.bootstrap, "KAFKA_TOPIC": settings.kafka_topic,
                       "KAFKA_PARTITIONS": str(PARTITIONS)}.items():
        monkeypatch.setenv(f"TRADERTAPE_{key}", value)
    yield p
    p.close()


def _accounts() -> list[int]:
    """One account per partition, plus a second on partition 0."""
    found: dict[int, list[int]] = {}
    acct = 100
    while len(found) < PARTITIONS or len(found[partition_for(100, PARTITIONS)]) < 2:
        found.setdefault(partition_for(acct, PARTITIONS), []).append(acct)
        acct += 1
    return [a for accts in found.values() for a in accts[:2]]


def _write(p: Platform, accounts: list[int], per_account: int, tag: str) -> None:
    body = lambda name: m.StrategyBody(name, "", "sma_crossover", None, None, None, True)  # noqa: E731
    for i in range(per_account):
        for acct in accounts:
            p.bus.handle(m.CreateStrategy(acct, body(f"{tag}-{acct}-{i}")), META)


def _relay(p: Platform) -> None:
    relay = make_relay(p)
    while relay.step():
        pass
    assert relay.position() == p.store.max_position()


def _until_idle(runner: ProjectionRunner, head: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    idle = 0
    while runner.applied_position < head or idle < 3:
        idle = 0 if runner.step() else idle + 1
        assert time.monotonic() < deadline, "the projector did not catch up"


def _no_dead_letters(p: Platform) -> None:
    with p.db.read() as conn:
        assert conn.execute(sa.select(projection_dead_letters)).all() == []


def _agrees_with_a_rebuild(p: Platform) -> None:
    live, replayed, _ = replay_and_compare(p, all_projections(), "store")
    assert live == replayed


def test_rebuild_from_kafka_reads_every_partition_to_its_end(kplatform: Platform) -> None:
    accounts = _accounts()
    _write(kplatform, accounts[:-1], 12, "early")  # most events early, on every partition
    _write(kplatform, accounts[-1:], 1, "last")  # the head: one quiet account's single event
    _relay(kplatform)
    incremental_runner = make_projector(kplatform, "store")
    _until_idle(incremental_runner, kplatform.store.max_position())
    incremental = snapshot(kplatform.db)
    runner = make_projector(kplatform, "kafka")
    runner.batch_size = 5  # small batches: the head arrives long before the other partitions are read
    n, covered, head = rebuild_read_models(kplatform, runner, "kafka")
    assert (covered, n) == (head, head)  # every event, once
    assert snapshot(kplatform.db) == incremental


def test_store_rebuild_leaves_the_kafka_projector_resuming_after_it(kplatform: Platform) -> None:
    accounts = _accounts()
    _write(kplatform, accounts, 4, "before")
    _relay(kplatform)
    _until_idle(make_projector(kplatform, "kafka"), kplatform.store.max_position())
    n, covered, head = rebuild_read_models(kplatform, make_projector(kplatform, "store"), "store")
    assert covered == head == n
    _write(kplatform, accounts, 2, "after")
    _relay(kplatform)
    kafka = make_projector(kplatform, "kafka")  # a restarted projector: positions itself from tracking
    _until_idle(kafka, kplatform.store.max_position())  # (a step that raised would fail here)
    _no_dead_letters(kplatform)
    _agrees_with_a_rebuild(kplatform)


def test_kafka_rebuild_leaves_the_store_projector_resuming_after_it(kplatform: Platform) -> None:
    accounts = _accounts()
    _write(kplatform, accounts, 4, "before")
    _relay(kplatform)
    n, covered, head = rebuild_read_models(kplatform, make_projector(kplatform, "kafka"), "kafka")
    assert covered == head == n
    _write(kplatform, accounts, 2, "after")
    store = make_projector(kplatform, "store")
    _until_idle(store, kplatform.store.max_position())
    _no_dead_letters(kplatform)
    _agrees_with_a_rebuild(kplatform)
    # and back to Kafka, through a rebuild from the store
    _relay(kplatform)
    _, covered2, head2 = rebuild_read_models(kplatform, make_projector(kplatform, "store"), "store")
    assert covered2 == head2
    _write(kplatform, accounts, 1, "again")
    _relay(kplatform)
    _until_idle(make_projector(kplatform, "kafka"), kplatform.store.max_position())
    _no_dead_letters(kplatform)
    _agrees_with_a_rebuild(kplatform)


def test_audit_verify_and_replay_from_kafka_over_several_partitions(kplatform: Platform,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    accounts = _accounts()
    _write(kplatform, accounts[:-1], 6, "many")
    _write(kplatform, accounts[-1:], 1, "last")
    _relay(kplatform)
    _until_idle(make_projector(kplatform, "kafka"), kplatform.store.max_position())
    main(["audit", "verify"])  # exits non-zero (SystemExit) on any discrepancy
    assert "audit verify passed" in capsys.readouterr().out
    main(["replay", "--source", "kafka"])
    out = capsys.readouterr().out
    assert f"up to position {kplatform.store.max_position()}" in out and "DIFFERENT" not in out
    main(["projections", "rebuild", "--source", "kafka"])
    assert f"up to position {kplatform.store.max_position()} " in capsys.readouterr().out


@pytest.mark.parametrize("kind", ["store", "kafka"])
def test_a_rebuild_completes_beside_a_live_projector_that_reapplies_first(kplatform: Platform, kind: str) -> None:
    """A projector running beside a rebuild sees its tracking dropped with the tables, applies every event
    again and writes tracking at the head before the rebuild reads anything: the rebuild still reads the
    whole source (it follows its own progress) and the read models come out the same, each event once."""
    accounts = _accounts()
    _write(kplatform, accounts, 3, "before")
    _relay(kplatform)
    head = kplatform.store.max_position()
    live = make_projector(kplatform, kind)
    _until_idle(live, head)
    expected = snapshot(kplatform.db)
    runner = make_projector(kplatform, kind)
    reset = runner.source.reset

    def reset_while_the_live_projector_catches_up() -> None:  # called right after the tables are dropped
        reset()
        _until_idle(live, head)

    runner.source.reset = reset_while_the_live_projector_catches_up  # type: ignore[method-assign]
    _, covered, _ = rebuild_read_models(kplatform, runner, kind)
    assert covered == head
    assert snapshot(kplatform.db) == expected
    _no_dead_letters(kplatform)
    _agrees_with_a_rebuild(kplatform)
