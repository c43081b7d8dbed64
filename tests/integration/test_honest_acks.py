"""Acknowledgements that tell the truth while the projector is down: every command's answer is built from
what the command did, never from a read model that has not caught up, and says so (`X-Projection-Lag`).

The app runs without its projector (as an API process whose projector died or is rebuilding); the test
applies the events by hand (`catch_up`) only where it wants the read model current."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from api.app import create_app
from infra.bars.store import BarStore
from infra.bars.synthetic import extend, generate
from infra.bars.universes import load_universe
from infra.bootstrap import bootstrap
from infra.mail.mailers import SmtpMailer
from streams.workers import make_projector
from tests.conftest import ApiClient, Inbox, make_settings, unique_email

UNIVERSE = "nifty_50"


class Stalled:
    def __init__(self, client: ApiClient) -> None:
        self.client = client
        self.runner = make_projector(client.platform, "store")

    def catch_up(self) -> None:
        while self.runner.step():
            pass


@pytest.fixture
def stalled(tmp_path: Path, inbox: Inbox) -> Iterator[Stalled]:
    settings = make_settings(tmp_path, smtp_url=f"smtp://127.0.0.1:{inbox.port}", read_your_writes_timeout=0.2)
    platform = bootstrap(settings, mailer=SmtpMailer(settings.smtp_url or "", settings.mail_from))
    generate(BarStore(settings.data_dir), load_universe(UNIVERSE), date(2019, 1, 1), date(2020, 12, 31))
    client = ApiClient(create_app(settings, platform=platform, run_projector=False))
    client.inbox = inbox
    client.platform = platform
    with client:
        s = Stalled(client)
        s.catch_up()
        client.login(unique_email())
        yield s
    platform.close()


def lagging(r: Any, status: int = 200) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert int(r.headers["X-Projection-Lag"]) > 0  # the answer says the read models are behind
    return dict(r.json()) if r.content else {}


def _template(c: ApiClient) -> int:
    templates = c.get("/api/strategies", params={"is_template": True}).json()
    return int(next(t["id"] for t in templates if t["base_model"] == "v3_dip_buyer"))


def _deploy_body(strategy_id: int) -> dict[str, Any]:
    return {"strategy_id": strategy_id, "name": "Dip paper", "mode": "paper", "capital": 1_000_000,
            "universe": UNIVERSE, "position_size_pct": 10, "max_positions": 5, "max_per_sector": 2}


def test_portfolio_signal_cart_and_position_answers_come_from_the_commands_events(stalled: Stalled) -> None:
    c = stalled.client
    strategy = lagging(c.post(f"/api/strategies/{_template(c)}/fork", json={"name": "My dip"}), 201)

    pf = lagging(c.post("/api/model/portfolios/deploy", json=_deploy_body(strategy["id"])), 201)  # was 404
    assert pf["status"] == "active" and pf["cash"] == 1_000_000 and pf["name"] == "Dip paper"
    assert c.get("/api/model/portfolios").json() == []  # the read model really is behind
    stalled.catch_up()
    assert c.get(f"/api/model/dashboard?portfolio_id={pf['id']}").json()["portfolio"] == pf
    assert lagging(c.post(f"/api/model/portfolios/{pf['id']}/pause"))["status"] == "paused"  # was "active"
    assert lagging(c.post(f"/api/model/portfolios/{pf['id']}/resume"))["status"] == "active"

    signals: list[dict[str, Any]] = []
    store = BarStore(c.platform.settings.data_dir)
    for _ in range(60):  # scan while the projector is down: the new signals are in the answer
        got = c.post("/api/model/scan", json={"portfolio_id": pf["id"]})
        assert got.status_code == 200, got.text
        signals = [s for s in got.json()["signals"] if s["kind"] == "entry"]
        if len(signals) >= 2:
            assert int(got.headers["X-Projection-Lag"]) > 0
            break
        extend(store, load_universe(UNIVERSE), 1)  # the next scan steps the portfolio through the new day
    assert len(signals) >= 2 and all(s["status"] == "pending_approval" for s in signals)

    first, second = signals[0], signals[1]
    assert lagging(c.post(f"/api/model/signals/{first['id']}/approve"))["status"] == "in_cart"
    assert lagging(c.post(f"/api/model/signals/{second['id']}/reject", json={"reason": "no"}))["status"] == "rejected"
    placed = lagging(c.post("/api/model/cart/place"))  # right after the approval: was {"placed": []}
    assert [(s["id"], s["status"]) for s in placed["placed"]] == [(first["id"], "placed")]
    assert placed["refused"] == []

    stalled.catch_up()
    listed = {s["id"]: s for s in c.get("/api/model/signals", params={"portfolio_id": pf["id"]}).json()}
    assert listed[first["id"]] == placed["placed"][0]  # the answer equals what the read model shows later
    assert listed[second["id"]]["status"] == "rejected"

    # market entries (sma_crossover fills at the next open) so that a position opens within days
    templates = c.get("/api/strategies", params={"is_template": True}).json()
    sma = next(t["id"] for t in templates if t["base_model"] == "sma_crossover")
    auto = lagging(c.post("/api/model/portfolios/deploy", json={**_deploy_body(sma), "auto_approve": True}), 201)
    opened: list[dict[str, Any]] = []
    for _ in range(40):
        c.post("/api/model/scan", json={"portfolio_id": auto["id"]})
        c.app.state.market_clock.run_due(  # type: ignore[attr-defined]
            extend(store, load_universe(UNIVERSE), 1)[0].isoformat())
        stalled.catch_up()
        opened = c.get("/api/model/positions", params={"portfolio_id": auto["id"], "status": "open"}).json()
        if opened:
            break
    assert opened
    closed = lagging(c.post(f"/api/model/positions/{opened[0]['id']}/close"))
    assert closed["outcome"] == "closed" and closed["status"] == "closed"  # was "open"
    stalled.catch_up()
    assert opened[0]["id"] not in {p["id"] for p in c.get("/api/model/positions", params={
        "portfolio_id": auto["id"], "status": "open"}).json()}

    assert lagging(c.post(f"/api/model/portfolios/{pf['id']}/retire"))["status"] == "retired"
    other = lagging(c.post("/api/model/portfolios/deploy", json=_deploy_body(strategy["id"])), 201)
    assert lagging(c.post(f"/api/model/portfolios/{other['id']}/pause"))["status"] == "paused"  # was 404


def test_risk_family_broker_and_agent_answers_while_the_projector_is_down(stalled: Stalled) -> None:
    c = stalled.client
    rule = lagging(c.post("/api/risk/rules", json={"rule_type": "max_open_positions", "value": 3}), 201)  # was 404
    assert rule["rule_type"] == "max_open_positions" and rule["value"] == 3 and rule["scope"] == "account"
    changed = lagging(c.put(f"/api/risk/rules/{rule['id']}", json={"rule_type": "max_open_positions", "value": 4}))
    assert changed["id"] == rule["id"] and changed["value"] == 4  # was 404 (the rule was not projected)
    lagging(c.delete(f"/api/risk/rules/{rule['id']}"), 204)
    assert c.delete(f"/api/risk/rules/{rule['id']}").status_code == 404  # the command knows it is gone

    group = lagging(c.post("/api/family/groups", json={"name": "Sharmas"}), 201)  # was 404
    assert group["name"] == "Sharmas" and [m["role"] for m in group["members"]] == ["owner"]

    creds = lagging(c.post("/api/auth/kite-credentials", json={"api_key": "kitekey1", "api_secret": "s3cr3t-v"}))
    assert creds["api_key"] == "kitekey1" and "s3cr3t-v" not in str(creds)  # was 404 "No Kite credentials"

    key = lagging(c.post("/api/auth/agent-key"), 201)["key"]
    agent = {"Authorization": f"Bearer {key}"}
    status = lagging(c.post("/api/agent/access-token", json={"access_token": "tok-1", "user_id": "AB1234"},
                            headers=agent))
    assert status["connected"] is True and status["user_id"] == "AB1234"  # was connected: false
    status = lagging(c.post("/api/agent/session-invalid", json={"reason": "TokenException"}, headers=agent))
    assert status["connected"] is False
    stalled.catch_up()
    assert c.get("/api/auth/status").json()["connected"] is False
    assert c.get("/api/risk/rules").json() == []
