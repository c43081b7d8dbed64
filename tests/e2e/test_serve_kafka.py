"""Production mode as separate processes: `serve`, `relay`, `projector` on Postgres + a Kafka-protocol
broker. POST-then-GET reads its own write through Kafka, and SIGKILL of the relay or the projector
mid-stream loses nothing and applies nothing twice."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import requests
from kafka import KafkaConsumer, TopicPartition

from infra.store.db import Database
from infra.store.eventstore import SqlEventStore, SystemClock, make_recorder
from projections.registry import all_projections
from streams.runner import ProjectionRunner
from streams.sources import StoreSource
from tests.support.processes import Proc, Server, health, tt_env
from tests.support.services import KafkaBroker, PostgresServer, free_port
from tests.support.snapshots import snapshot


def _login(s: requests.Session, base: str, db: Database, addr: str) -> None:
    # The OTP goes to the console mailer; read the .eml the server wrote.
    assert s.post(base + "/api/auth/magic-link", json={"email": addr}).status_code == 200


def _topic_positions(bootstrap: str, topic: str, expect: int, timeout: float = 30) -> list[int]:
    c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    tps = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic) or [])]
    c.assign(tps)
    c.seek_to_beginning()
    out: list[int] = []
    deadline = time.monotonic() + timeout
    idle = 0
    while time.monotonic() < deadline and (len(set(out)) < expect or idle < 3):
        batch = c.poll(timeout_ms=200)
        idle = 0 if batch else idle + 1
        for recs in batch.values():
            out.extend(json.loads(r.value)["position"] for r in recs)
    c.close()
    return out


def _wait_caught_up(base: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        h = health(base)
        if h["transport"]["relay_lag"] == 0 and h["projection_lag"] == 0:
            return dict(h)
        assert time.monotonic() < deadline, f"pipeline did not catch up: {h}"
        time.sleep(0.2)


def test_separate_processes_read_your_writes_and_survive_sigkill(tmp_path: Path, postgres: PostgresServer,
                                                                  kafka: KafkaBroker) -> None:
    import re

    url = postgres.create_database()
    topic = f"tt.e2e.{uuid.uuid4().hex[:8]}"
    env = tt_env(tmp_path, database_url=url, kafka_bootstrap=kafka.bootstrap, kafka_topic=topic,
                 kafka_partitions=3)
    server = Server(env, tmp_path / "serve.log")
    relay = Proc(["relay"], env, tmp_path / "relay.log")
    projector = Proc(["projector"], env, tmp_path / "projector.log")
    procs: list[Proc] = [server, relay, projector]
    try:
        server.start()
        relay.start()
        projector.start()
        base = server.url
        s = requests.Session()
        s.headers["X-Requested-With"] = "tradertape"  # as the web app sends (CSRF, api/csrf.py)
        addr = "kafka.user@example.com"
        assert s.post(base + "/api/auth/magic-link", json={"email": addr}).status_code == 200
        mail = next((tmp_path / "var" / "mail").glob("*.eml")).read_text()
        otp = re.search(r"code: (\d{6})", mail).group(1)  # type: ignore[union-attr]
        assert s.post(base + "/api/auth/verify-link", json={"email": addr, "otp": otp}).status_code == 200
        _wait_caught_up(base)  # the relay and projector processes are up (they start in parallel with serve)

        # read-your-writes through store -> relay -> Kafka -> projector
        for i in range(5):
            r = s.post(base + "/api/strategies", json={"name": f"rw{i}", "base_model": "sma_crossover"})
            assert r.status_code == 201
            assert s.get(base + f"/api/strategies/{r.json()['id']}").json()["name"] == f"rw{i}"

        # a burst of commands while the relay and then the projector are SIGKILLed and restarted
        created: list[int] = []
        errors: list[str] = []

        def burst() -> None:
            for i in range(60):
                r = s.post(base + "/api/strategies", json={"name": f"b{i}", "base_model": "momentum_breakout"})
                if r.status_code == 201:
                    created.append(r.json()["id"])
                else:
                    errors.append(r.text)

        t = threading.Thread(target=burst)
        t.start()
        time.sleep(0.4)
        relay.kill9()
        time.sleep(0.5)
        relay.start()
        time.sleep(0.6)
        projector.kill9()
        time.sleep(0.5)
        projector.start()
        t.join(120)
        assert not errors and len(created) == 60

        health = _wait_caught_up(base)
        head = health["store"]["position"]
        listed = s.get(base + "/api/strategies", params={"is_template": False, "limit": 500})
        assert listed.headers["X-Total-Count"] == "65"
        assert {x["id"] for x in listed.json()} >= set(created)

        # every stored event is on the topic (duplicates allowed, none missing)
        db = Database.from_url(url)
        store = SqlEventStore(make_recorder(url), SystemClock())
        store_positions = {e.position for e in store.read(0, 100_000)}
        on_topic = _topic_positions(kafka.bootstrap, topic, expect=len(store_positions))
        assert set(on_topic) == store_positions
        assert max(store_positions) == head

        # the read models equal a fresh replay of the store (nothing applied twice, nothing lost)
        live = snapshot(db)
        replay_url = postgres.create_database()
        replay_db = Database.from_url(replay_url)
        runner = ProjectionRunner(replay_db, all_projections(), StoreSource(store))
        runner.create_tables()
        runner.rebuild(head)
        replayed = snapshot(replay_db)
        assert replayed.keys() == live.keys()
        for table in live:
            assert len(live[table]) == len(replayed[table]), table
            for a, b in zip(live[table], replayed[table], strict=True):
                assert a == b, f"{table} row {a[0]} differs:\nlive     {a}\nreplayed {b}"
        replay_db.dispose()
        postgres.drop_database(replay_url)

        # `tradertape audit verify`: chains on the store and the topic, every event on the topic in
        # order, every projection equal to a rebuild from the topic
        ok = subprocess.run([sys.executable, "-m", "api.cli", "audit", "verify"], env=env, capture_output=True,
                            text=True, timeout=300, cwd=Path(__file__).parents[2])
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert "audit verify passed" in ok.stdout and "0 of" in ok.stdout
        with db.write() as conn:  # a read-model row goes missing
            conn.exec_driver_sql("DELETE FROM rm_strategies WHERE id = %s", (created[0],))
        bad = subprocess.run([sys.executable, "-m", "api.cli", "audit", "verify", "--no-topic"], env=env,
                             capture_output=True, text=True, timeout=300, cwd=Path(__file__).parents[2])
        assert bad.returncode == 1 and "read model rm_strategies differs from a rebuild" in bad.stdout
        db.dispose()
    finally:
        for p in procs:
            p.stop()
    _ = free_port
