"""Production topology with the projector process down: `serve` and `relay` on Postgres + Kafka, no
`projector`. Every command still answers with what it did (`X-Projection-Lag` says the reads are
behind), a stored Idempotency-Key answer survives a SIGKILL of the API, and once a projector runs the
read models agree with the answers."""

from __future__ import annotations

import re
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import requests

from infra.bars.store import BarStore
from infra.bars.synthetic import generate
from infra.bars.universes import load_universe
from tests.support.processes import Proc, Server, health, tt_env
from tests.support.services import KafkaBroker, PostgresServer


def _lagging(r: requests.Response, status: int = 200) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert int(r.headers["X-Projection-Lag"]) > 0
    return dict(r.json()) if r.content else {}


def test_answers_with_the_projector_process_down(tmp_path: Path, postgres: PostgresServer,
                                                 kafka: KafkaBroker) -> None:
    url = postgres.create_database()
    env = tt_env(tmp_path, database_url=url, kafka_bootstrap=kafka.bootstrap,
                 kafka_topic=f"tt.acks.{uuid.uuid4().hex[:8]}", kafka_partitions=2, read_your_writes_timeout=0.5)
    generate(BarStore(tmp_path / "var" / "data"), load_universe("nifty_50"), date(2020, 1, 1), date(2020, 12, 31))
    server = Server(env, tmp_path / "serve.log")
    relay = Proc(["relay"], env, tmp_path / "relay.log")
    projector = Proc(["projector"], env, tmp_path / "projector.log")
    try:
        server.start()
        relay.start()
        base = server.url
        s = requests.Session()
        s.headers["X-Requested-With"] = "tradertape"  # as the web app sends (CSRF, api/csrf.py)
        addr = "acks.user@example.com"
        assert s.post(base + "/api/auth/magic-link", json={"email": addr}).status_code == 200
        otp = re.search(r"code: (\d{6})", next((tmp_path / "var" / "mail").glob("*.eml")).read_text())
        assert otp is not None
        assert s.post(base + "/api/auth/verify-link", json={"email": addr, "otp": otp.group(1)}).status_code == 200

        strategy = _lagging(s.post(base + "/api/strategies", json={"name": "dips", "base_model": "v3_dip_buyer"}),
                            201)
        body = {"strategy_id": strategy["id"], "name": "Paper", "capital": 500_000, "universe": "nifty_50"}
        pf = _lagging(s.post(base + "/api/model/portfolios/deploy", json=body), 201)  # was 404
        assert pf["status"] == "active" and pf["cash"] == 500_000
        assert _lagging(s.post(base + f"/api/model/portfolios/{pf['id']}/pause"))["status"] == "paused"
        rule = _lagging(s.post(base + "/api/risk/rules", json={"rule_type": "max_orders_per_day", "value": 9}), 201)
        assert s.get(base + "/api/model/portfolios", params={"status": "paused"}).json() == []  # reads are behind

        # the answer stored under an Idempotency-Key outlives the API process
        key = {"Idempotency-Key": f"create-{uuid.uuid4().hex}"}
        first = s.post(base + "/api/strategies", json={"name": "once", "base_model": "sma_crossover"}, headers=key)
        assert first.status_code == 201
        server.kill9()
        server.start()
        again = s.post(base + "/api/strategies", json={"name": "once", "base_model": "sma_crossover"}, headers=key)
        assert again.status_code == 201 and again.json() == first.json()
        assert again.headers["Idempotent-Replayed"] == "true"

        projector.start()  # the read models catch up and agree with what the commands answered
        deadline = time.monotonic() + 90
        while health(base)["projection_lag"] or health(base)["transport"]["relay_lag"]:
            assert time.monotonic() < deadline, health(base)
            time.sleep(0.3)
        listed = s.get(base + "/api/model/portfolios", params={"status": "paused"}).json()
        assert [p["id"] for p in listed] == [pf["id"]]
        assert [r["id"] for r in s.get(base + "/api/risk/rules").json()] == [rule["id"]]
        mine = s.get(base + "/api/strategies", params={"is_template": False}).json()
        assert sorted(x["name"] for x in mine) == ["dips", "once"]
    finally:
        for p in (projector, relay, server):
            p.stop()
        postgres.drop_database(url)
