"""Store -> relay -> Kafka (a real Kafka-protocol broker) -> projector, on Postgres."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition

from commands import messages as m
from commands.ports import CommandMeta
from infra.bootstrap import Platform, bootstrap, seed
from streams.relay import KafkaRelay
from streams.workers import ReadYourWrites, make_projector, make_relay, rebuild_read_models
from tests.conftest import make_settings
from tests.support.services import KafkaBroker, free_port
from tests.support.snapshots import snapshot

META = CommandMeta(actor="test")


@pytest.fixture
def kplatform(tmp_path: Path, pg_url: str, kafka: KafkaBroker) -> Any:
    settings = make_settings(tmp_path, pg_url, kafka_bootstrap=kafka.bootstrap,
                             kafka_topic=f"tt.{uuid.uuid4().hex[:8]}", kafka_partitions=3)
    p = bootstrap(settings)
    yield p
    p.close()


def _body(name: str) -> m.StrategyBody:
    return m.StrategyBody(name, "", "sma_crossover", None, None, None, True)


def _strategy_life(p: Platform, account: int = 7) -> int:
    sid = p.bus.handle(m.CreateStrategy(account, _body("a")), META).value
    p.bus.handle(m.UpdateStrategy(account, sid, _body("b")), META)
    p.bus.handle(m.ToggleShareStrategy(account, sid), META)
    p.bus.handle(m.DeleteStrategy(account, sid), META)
    return int(sid)


def _drain(relay: KafkaRelay) -> None:
    while relay.step():
        pass


def _read_topic(p: Platform, expect: int, timeout: float = 20) -> list[Any]:
    consumer = KafkaConsumer(bootstrap_servers=p.settings.kafka_bootstrap, enable_auto_commit=False, group_id=None)
    parts = consumer.partitions_for_topic(p.settings.kafka_topic)
    tps = [TopicPartition(p.settings.kafka_topic, x) for x in sorted(parts)]
    consumer.assign(tps)
    consumer.seek_to_beginning()
    records: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(records) < expect and time.monotonic() < deadline:
        for recs in consumer.poll(timeout_ms=200).values():
            records.extend(recs)
    consumer.close()
    return records


def test_a_strategys_life_is_on_the_topic_in_order(kplatform: Platform) -> None:
    sid = _strategy_life(kplatform, account=7)
    relay = make_relay(kplatform)
    _drain(relay)
    assert relay.position() == kplatform.store.max_position()
    import json

    records = _read_topic(kplatform, expect=4)
    mine = [r for r in records if json.loads(r.value)["data"].get("strategy_id", None) in (sid, None)
            and json.loads(r.value)["aggregate_type"] == "Strategy"]
    assert [json.loads(r.value)["type"] for r in mine] == [
        "StrategyCreated", "StrategyUpdated", "StrategyShared", "StrategyDeleted"]
    first = mine[0]
    assert first.key == b"7"
    headers = dict(first.headers)
    envelope = json.loads(first.value)
    assert headers["type"] == b"StrategyCreated" and headers["event_id"].decode() == envelope["event_id"]
    assert set(envelope) >= {"event_id", "type", "schema_version", "aggregate_type", "aggregate_id",
                             "aggregate_version", "account_id", "occurred_at", "position", "data"}
    assert len({r.partition for r in mine}) == 1  # one account's events share a partition: order kept


def test_projector_from_kafka_builds_read_models_and_rebuild_equals_incremental(kplatform: Platform) -> None:
    seed(kplatform)
    for acct in (1, 2, 3):
        sid = kplatform.bus.handle(m.CreateStrategy(acct, _body(f"s{acct}")), META).value
        kplatform.bus.handle(m.UpdateStrategy(acct, sid, _body(f"t{acct}")), META)
    _strategy_life(kplatform, 4)
    _drain(make_relay(kplatform))
    runner = make_projector(kplatform, "kafka")
    head = kplatform.store.max_position()
    _catch_up(runner, head)
    waiter = ReadYourWrites(kplatform, None)
    for acct in (0, 1, 2, 3, 4):  # each account's last event is applied on its partition
        last = max(e.position for e in kplatform.store.read(0, 10_000) if e.account_id == acct)
        assert waiter.reached([acct], last)
    incremental = snapshot(kplatform.db)
    assert {r[3] for r in incremental["rm_strategies"] if r[2] in (1, 2, 3)} == {"t1", "t2", "t3"}
    rebuilt_n, covered, _ = rebuild_read_models(kplatform, make_projector(kplatform, "kafka"), "kafka", head)
    assert covered == head
    assert rebuilt_n == len(kplatform.store.read(0, 100_000))  # every event once, from the topic
    assert snapshot(kplatform.db) == incremental


def _catch_up(runner: Any, head: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    idle = 0
    while runner.applied_position < head or idle < 3:
        idle = 0 if runner.step() else idle + 1
        assert time.monotonic() < deadline, "projector did not catch up"


def test_republished_events_are_applied_once(kplatform: Platform) -> None:
    for acct in (1, 2):
        kplatform.bus.handle(m.CreateStrategy(acct, _body("x")), META)
    relay = make_relay(kplatform)
    _drain(relay)
    relay._record_position(0)  # as if the relay died after Kafka acked but before recording its position
    _drain(make_relay(kplatform))  # the restarted relay publishes from its recorded position again
    runner = make_projector(kplatform, "kafka")
    total = 0
    for _ in range(30):
        total += runner.step()
    assert total == 2 * kplatform.store.max_position()  # every event arrived twice...
    rows = snapshot(kplatform.db)["rm_strategies"]
    assert len([r for r in rows if r[2] in (1, 2)]) == 2  # ...and was applied once


def test_relay_survives_kafka_down_and_catches_up(kplatform: Platform) -> None:
    relay = make_relay(kplatform)
    real = relay.bootstrap
    relay.bootstrap = f"127.0.0.1:{free_port()}"  # nothing listens there: Kafka is "down"
    relay._drop_producer()  # the connection made at start (make_relay warms up) goes with it
    relay._topic_ready = False
    stop = threading.Event()
    t = threading.Thread(target=relay.run, args=(stop,), daemon=True)
    t.start()
    try:
        for acct in (1, 2, 3):
            kplatform.bus.handle(m.CreateStrategy(acct, _body("y")), META)  # commands keep working
        time.sleep(1.0)
        assert relay.position() == 0 and t.is_alive()
        relay.bootstrap = real  # Kafka is back: the relay resumes within its own backoff (at most 5 s), not
        deadline = time.monotonic() + 15  # after kafka-python's 30 s bootstrap and reconnect waits
        while relay.position() < kplatform.store.max_position():
            assert time.monotonic() < deadline, "relay did not catch up"
            time.sleep(0.1)
    finally:
        stop.set()
        t.join(10)
    assert len(_read_topic(kplatform, expect=3)) == 3


def test_an_idle_relay_and_projector_are_woken_by_the_next_insert(kplatform: Platform) -> None:
    """Idle, the relay and the projector wait for the store's insert notification, not for their next
    look: those looks are stretched to a minute here, so the command reaching the read models within
    the bound was relayed and projected because the insert woke both."""
    relay = make_relay(kplatform)
    relay.loop.idle_wait = 60.0  # the safety-net looks
    projector = make_projector(kplatform, "kafka")
    projector.loop.idle_wait = 60.0
    waiter = ReadYourWrites(kplatform, None)
    stop = threading.Event()
    threads = [threading.Thread(target=w.run, args=(stop,), daemon=True) for w in (relay, projector)]
    for t in threads:
        t.start()
    try:
        first = kplatform.bus.handle(m.CreateStrategy(7, _body("first")), META)
        assert waiter.wait(first.touched_accounts, first.position, timeout=30)
        time.sleep(0.3)  # both idle now: the relay in its wait for a notification, the projector polling
        second = kplatform.bus.handle(m.CreateStrategy(7, _body("second")), META)
        assert waiter.wait(second.touched_accounts, second.position, timeout=20)
    finally:
        stop.set()
        kplatform.bus.handle(m.CreateStrategy(7, _body("third")), META)  # wakes both to see the stop
        for t in threads:
            t.join(10)
