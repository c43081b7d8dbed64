"""Health that sees trouble: per projection and per partition lag, the age of the oldest unapplied event,
the workers' repeated failures and dead letters, `degraded` past the thresholds; detail only for admins
and the scrape token; the same figures plus command counts/latency and read-your-writes timeouts as
Prometheus metrics at /metrics."""

from __future__ import annotations

import re
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from commands import messages as m
from commands.ports import CommandMeta
from infra.bootstrap import Platform, bootstrap, seed
from streams.status import pipeline_status
from streams.workers import make_projector, make_relay, partition_for
from tests.conftest import make_settings, unique_email
from tests.support.services import KafkaBroker

META = CommandMeta(actor="test")
TOKEN = "scrape-token-for-tests-0123456789"


def _strategy(name: str) -> dict[str, Any]:
    return {"name": name, "base_model": "sma_crossover"}


def test_health_detail_is_for_admins_and_the_scrape_token(api_factory: Any) -> None:
    admin = unique_email("admin")
    client = api_factory(admin_emails=admin, metrics_token=TOKEN)
    anonymous = TestClient(client.app)
    assert set(anonymous.get("/api/health").json()) == {"status", "version"}
    assert set(anonymous.get("/api/health", headers={"Authorization": "Bearer wrong"}).json()) == {"status", "version"}
    user = api_factory()
    user.login()
    assert set(user.get("/api/health").json()) == {"status", "version"}
    client.login(admin)
    detail = client.get("/api/health").json()
    assert detail["status"] == "ok" and detail["shards"]["store"]["lag"] == 0
    assert set(detail["projections"]["strategies"]["shards"]) == {"store"}
    by_token = anonymous.get("/api/health", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert by_token["store"]["position"] == detail["store"]["position"]


def test_metrics_need_an_admin_or_the_token_and_count_commands(api_factory: Any) -> None:
    client = api_factory(metrics_token=TOKEN)
    anonymous = TestClient(client.app)
    assert anonymous.get("/metrics").status_code == 401
    client.login()
    assert client.get("/metrics").status_code == 403  # signed in, not an admin
    assert client.post("/api/strategies", json=_strategy("counted")).status_code == 201
    assert client.post("/api/strategies", json={"name": "x", "base_model": "no_such_model"}).status_code == 422
    r = anonymous.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert re.search(r'^tradertape_commands_total\{command="CreateStrategy",outcome="ok"\} [1-9]', text, re.M)
    assert re.search(r'^tradertape_command_seconds_count\{command="CreateStrategy"\} [1-9]', text, re.M)
    assert re.search(r'^tradertape_shard_lag_events\{shard="store"\} 0\.0$', text, re.M)
    assert re.search(r'^tradertape_dead_letters\{projection="strategies"\} 0\.0$', text, re.M)
    assert re.search(r"^tradertape_health_degraded 0\.0$", text, re.M)
    assert re.search(r"^tradertape_read_your_writes_timeouts_total ", text, re.M)


@pytest.fixture
def kplatform(tmp_path: Path, pg_url: str, kafka: KafkaBroker) -> Any:
    settings = make_settings(tmp_path, pg_url, kafka_bootstrap=kafka.bootstrap,
                             kafka_topic=f"tt.{uuid.uuid4().hex[:8]}", kafka_partitions=3, health_max_lag=5)
    p = bootstrap(settings)
    seed(p)
    yield p
    p.close()


def _body(name: str) -> m.StrategyBody:
    return m.StrategyBody(name, "", "sma_crossover", None, None, None, True)


def test_per_partition_lag_and_oldest_unapplied_age_turn_health_degraded(kplatform: Platform) -> None:
    quiet = next(a for a in range(100, 200) if partition_for(a, 3) != partition_for(None, 3))
    busy = next(a for a in range(200, 300) if partition_for(a, 3) not in (partition_for(None, 3),
                                                                           partition_for(quiet, 3)))
    kafka = make_projector(kplatform, "kafka")
    relay = make_relay(kplatform)
    while relay.step():
        pass
    while kafka.step():  # the seeded templates are applied
        pass
    kplatform.bus.handle(m.CreateStrategy(quiet, _body("q")), META)
    time.sleep(1.1)
    for i in range(8):
        kplatform.bus.handle(m.CreateStrategy(busy, _body(f"b{i}")), META)
    while relay.step():
        pass
    st = pipeline_status(kplatform)
    q_shard, b_shard = f"kafka:{partition_for(quiet, 3)}", f"kafka:{partition_for(busy, 3)}"
    assert st["shards"][q_shard]["lag"] == 1 and st["shards"][b_shard]["lag"] == 8
    assert st["shards"][q_shard]["oldest_unapplied_age_s"] >= 1.0  # the quiet account's event waits longest
    assert st["shards"][b_shard]["oldest_unapplied_age_s"] < st["shards"][q_shard]["oldest_unapplied_age_s"]
    assert st["projections"]["strategies"]["shards"][b_shard]["lag"] == 8
    assert st["status"] == "degraded" and any(b_shard in r and "8 events behind" in r for r in st["reasons"])
    deadline = time.monotonic() + 30
    while pipeline_status(kplatform)["projection_lag"]:
        kafka.step()
        assert time.monotonic() < deadline
    st = pipeline_status(kplatform)
    assert st["status"] == "ok" and st["transport"]["relay_lag"] == 0, st["reasons"]


def test_a_worker_failing_repeatedly_turns_health_degraded(kplatform: Platform) -> None:
    """A projector (running apart from the API) whose every step fails: here the database refuses its
    tracking writes (a trigger raising, as a full disk or a broken table would)."""
    projector = make_projector(kplatform, "store")
    projector.loop.max_backoff = 0.2
    with kplatform.db.write() as conn:
        conn.execute(sa.text("CREATE FUNCTION tt_refuse() RETURNS trigger LANGUAGE plpgsql AS "
                             "$$ BEGIN RAISE EXCEPTION 'tracking refused'; END $$"))
        conn.execute(sa.text("CREATE TRIGGER tt_refuse BEFORE INSERT OR UPDATE ON projection_tracking "
                             "FOR EACH ROW EXECUTE FUNCTION tt_refuse()"))
    stop = threading.Event()
    t = threading.Thread(target=projector.run, args=(stop,), daemon=True)
    t.start()
    try:
        deadline = time.monotonic() + 60
        while pipeline_status(kplatform)["workers"].get("projector", {}).get("failures", 0) < 3:
            assert time.monotonic() < deadline, "the projector's failures were not recorded"
            time.sleep(0.1)
        st = pipeline_status(kplatform)  # read from the table: what an API process elsewhere sees
        assert st["status"] == "degraded"
        assert any(r.startswith("the projector failed") and "tracking refused" in r for r in st["reasons"])
        with kplatform.db.write() as conn:  # the cause is fixed
            conn.execute(sa.text("DROP TRIGGER tt_refuse ON projection_tracking"))
        deadline = time.monotonic() + 60
        while pipeline_status(kplatform)["workers"]["projector"]["failures"]:
            assert time.monotonic() < deadline, "the projector's recovery was not recorded"
            time.sleep(0.1)
        assert not [r for r in pipeline_status(kplatform)["reasons"] if "projector" in r]
    finally:
        stop.set()
        t.join(10)


def test_read_your_writes_timeouts_are_counted(pg_url: str, kafka: KafkaBroker, api_factory: Any) -> None:
    client = api_factory(pg_url, kafka_bootstrap=kafka.bootstrap, kafka_topic=f"tt.{uuid.uuid4().hex[:8]}",
                         read_your_writes_timeout=0.2, metrics_token=TOKEN)  # no relay, no projector
    client.login()

    def timeouts() -> float:
        text = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
        found = re.search(r"^tradertape_read_your_writes_timeouts_total (\S+)$", text, re.M)
        assert found
        return float(found.group(1))

    before = timeouts()
    client.post("/api/strategies", json=_strategy("never projected"))
    assert timeouts() >= before + 1
