"""Live exits through the agent against the Kite stub (the official kiteconnect client on loopback): a
manual close is placed (a MARKET order with market protection) before the working stop/target OCO GTT is
deleted, so the shares are never unprotected; a close Kite refuses leaves the OCO standing; never two
sales, also when the GTT triggers first; a partial exit fill reduces the position and re-arms its
protection for the shares left."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from infra.kite.agent import Agent, AgentConfig
from infra.kite.client import KiteBroker
from tests.support.kite_stub import KiteState, kite_stub
from tests.support.live import Http, live_portfolio_with_placed_signals, make_bars

pytestmark = pytest.mark.filterwarnings("ignore:You should not use the 'timeout' argument")


@dataclass
class Setup:
    api: Any
    kite: KiteState
    agent: Agent
    pf: dict[str, Any]
    position: dict[str, Any] = field(default_factory=dict)  # the open position the fixture made
    oco: dict[str, Any] = field(default_factory=dict)  # its protective two-leg GTT at the stub

    def positions(self, status: str) -> list[dict[str, Any]]:
        return list(self.api.get("/api/model/positions", params={"portfolio_id": self.pf["id"],
                                                                  "status": status}).json())

    def signal(self, sid: int) -> dict[str, Any]:
        return next(s for s in self.api.get("/api/model/signals", params={"portfolio_id": self.pf["id"]}).json()
                    if s["id"] == sid)

    def held(self, symbol: str) -> int:
        """Delivery shares Kite holds for the account (settled, T+1 and today's net trades)."""
        return self.kite.held(symbol)

    def sells(self) -> list[dict[str, Any]]:
        return [p for p in self.kite.placements if p["kind"] == "order" and p["side"] == "SELL"]


@contextmanager
def _protected(api_factory: Any, tmp_path: Path, slots: int) -> Iterator[Setup]:
    """`slots` live positions bought through the agent at the stub, each protected by its OCO GTT there."""
    api = api_factory()
    make_bars(api.platform.settings.data_dir)
    api.login()
    pf, _ = live_portfolio_with_placed_signals(Http(api), slots=slots)
    key = api.post("/api/auth/agent-key").json()["key"]
    with kite_stub(KiteState()) as (root, kite):
        token = kite.grant()
        agent = Agent(AgentConfig(server="", key=key, state_dir=tmp_path, sync_every=1e9, kite_root=root),
                      broker=KiteBroker(kite.api_key, token, root=root))
        agent.server.session = api_factory()
        agent.server.session.headers["Authorization"] = f"Bearer {key}"
        setup = Setup(api, kite, agent, pf)
        agent.step()  # the entry GTTs
        assert kite.trigger_all() == slots  # they fill at the stub
        agent.step()  # the fills are reported, the positions open
        agent.step()  # their protective OCOs are placed
        positions = setup.positions("open")
        ocos = [g for g in kite.gtts.values() if g["type"] == "two-leg"]
        assert len(positions) == len(ocos) == slots and all(g["status"] == "active" for g in ocos)
        assert all(setup.held(pos["symbol"]) == pos["quantity"] for pos in positions)
        setup.position, setup.oco = positions[0], ocos[0]
        yield setup


@pytest.fixture
def held(api_factory: Any, tmp_path: Path) -> Iterator[Setup]:
    """A live position bought through the agent at the stub, protected by its OCO GTT there."""
    with _protected(api_factory, tmp_path, 1) as setup:
        yield setup


def test_manual_close_is_placed_with_protection_before_the_oco_is_deleted(held: Setup) -> None:
    s = held
    pos, oco = s.position, s.oco
    before = s.positions("open")[0]
    assert before["exit_pending"] is True  # its protective OCO is working
    r = s.api.post(f"/api/model/positions/{pos['id']}/close")
    assert r.status_code == 200 and r.json()["outcome"] == "exit_queued" and r.json()["status"] == "open"
    again = s.api.post(f"/api/model/positions/{pos['id']}/close")
    assert again.status_code == 400 and "already has an exit queued" in again.json()["detail"]
    pending = s.api.get("/api/agent/pending-signals", headers=s.agent.server.session.headers).json()
    (close,) = pending
    assert close["reason"] == "manual close requested" and close["quantity"] == pos["quantity"]
    assert [x["gtt_id"] for x in close["replaces"]] == [str(oco["id"])]
    protective_id = close["replaces"][0]["signal_id"]
    start = len(s.kite.requests)
    s.agent.step()  # places the close, then deletes the OCO and reports it cancelled, sees the close complete
    assert s.kite.deletions == [oco["id"]] and oco["status"] == "deleted"
    assert len(s.sells()) == 1 and s.sells()[0]["quantity"] == pos["quantity"]
    sent = s.kite.requests[start:]
    assert sent.index("POST /orders/regular") < sent.index(f"DELETE /gtt/triggers/{oco['id']}")
    assert s.sells()[0]["order_type"] == "MARKET" and s.sells()[0]["market_protection"] == "-1"
    assert s.held(pos["symbol"]) == 0  # sold once, all of it
    s.agent.step()
    (closed,) = s.positions("closed")
    assert closed["id"] == pos["id"] and closed["exit_reason"] == "manual" and not s.positions("open")
    old = s.signal(protective_id)
    assert old["status"] == "failed" and "replaced by a manual close" in old["failure_reason"]
    assert s.signal(close["id"])["status"] == "executed"
    assert len(s.sells()) == 1


def test_an_oco_that_triggers_before_the_cancel_is_the_only_sale(held: Setup) -> None:
    s = held
    pos, oco = s.position, s.oco
    r = s.api.post(f"/api/model/positions/{pos['id']}/close")
    assert r.status_code == 200 and r.json()["outcome"] == "exit_queued"
    assert oco["status"] == "active"
    assert s.kite.trigger_all() == 1  # the target leg fills at Kite before the agent gets to the close
    (close,) = s.api.get("/api/agent/pending-signals", headers=s.agent.server.session.headers).json()
    s.agent.step()
    s.agent.step()
    assert s.sells() == [] and s.kite.deletions == []  # the delete was refused (triggered); no close order
    assert s.held(pos["symbol"]) == 0
    (closed,) = s.positions("closed")
    assert closed["exit_reason"] == "target" and closed["exit_price"] == pos["target"]
    failed = s.signal(close["id"])
    assert failed["status"] == "failed" and "sold the shares first" in failed["failure_reason"]
    assert s.api.get("/api/agent/pending-signals", headers=s.agent.server.session.headers).json() == []


def test_a_close_kite_refuses_leaves_the_oco_standing(held: Setup) -> None:
    s = held
    pos, oco = s.position, s.oco
    s.kite.refuse_symbols.add(pos["symbol"])
    assert s.api.post(f"/api/model/positions/{pos['id']}/close").status_code == 200
    (close,) = s.api.get("/api/agent/pending-signals", headers=s.agent.server.session.headers).json()
    s.agent.step()
    assert s.kite.refusals == ["Invalid `tradingsymbol`."]
    assert oco["status"] == "active" and s.kite.deletions == [] and s.sells() == []  # still protected
    failed = s.signal(close["id"])
    assert failed["status"] == "failed" and "Invalid `tradingsymbol`" in failed["failure_reason"]
    (still,) = s.positions("open")
    assert still["quantity"] == pos["quantity"]
    # the server re-arms the protection; the new OCO is placed before the old one is deleted
    s.kite.refuse_symbols.clear()
    start = len(s.kite.requests)
    s.agent.step()
    active = [g for g in s.kite.gtts.values() if g["type"] == "two-leg" and g["status"] == "active"]
    assert len(active) == 1 and active[0]["id"] != oco["id"] and oco["status"] == "deleted"
    assert s.kite.placements[-1]["id"] == active[0]["id"]
    sent = s.kite.requests[start:]
    assert sent.index("POST /gtt/triggers") < sent.index(f"DELETE /gtt/triggers/{oco['id']}")


def test_a_partial_close_sells_only_its_shares_and_rearms_the_stop_for_the_rest(held: Setup) -> None:
    s = held
    pos, oco = s.position, s.oco
    qty = pos["quantity"]
    r = s.api.post(f"/api/model/positions/{pos['id']}/close", json={"quantity": 2})
    assert r.status_code == 200 and r.json()["outcome"] == "exit_queued"
    s.agent.step()  # cancel the OCO, sell 2, report the fill
    assert oco["status"] == "deleted" and [p["quantity"] for p in s.sells()] == [2]
    s.agent.step()
    (lot,) = s.positions("closed")
    (left,) = s.positions("open")
    assert lot["quantity"] == 2 and lot["exit_reason"] == "manual" and left["id"] == pos["id"]
    assert left["quantity"] == qty - 2 and s.held(pos["symbol"]) == qty - 2
    # the rest is protected again: a new OCO for exactly the shares left
    s.agent.step()
    active = [g for g in s.kite.gtts.values() if g["type"] == "two-leg" and g["status"] == "active"]
    assert len(active) == 1 and {o["quantity"] for o in active[0]["orders"]} == {qty - 2}


def test_a_partial_exit_fill_reported_by_the_agent_reduces_the_position(held: Setup) -> None:
    s = held
    pos = s.position
    headers = s.agent.server.session.headers
    (protective,) = s.api.get("/api/agent/pending-signals", headers=headers, params={"state": "working"}).json()
    body = {"signal_id": protective["id"], "status": "executed", "fill_price": pos["target"], "filled_quantity": 3}
    r = s.api.post("/api/agent/signal-result", headers=headers, json=body)
    assert r.status_code == 200 and r.json()["recorded"] is True, r.text
    assert s.api.post("/api/agent/signal-result", headers=headers, json=body).json()["recorded"] is False
    assert s.api.post("/api/agent/signal-result", headers=headers,
                      json={**body, "filled_quantity": 4}).status_code == 409
    (lot,) = s.positions("closed")
    (left,) = s.positions("open")
    assert (lot["quantity"], lot["exit_reason"], lot["exit_price"]) == (3, "target", pos["target"])
    assert left["quantity"] == pos["quantity"] - 3
    (rearmed,) = s.api.get("/api/agent/pending-signals", headers=headers).json()
    assert rearmed["kind"] == "exit" and rearmed["position"]["quantity"] == pos["quantity"] - 3
    too_many = {"signal_id": rearmed["id"], "status": "executed", "fill_price": 1.0,
                "filled_quantity": pos["quantity"]}
    r = s.api.post("/api/agent/signal-result", headers=headers, json=too_many)
    assert r.status_code == 400 and "exceeds" in r.json()["detail"]


def test_every_kite_call_waits_its_turn_and_lists_are_read_once_per_step(held: Setup) -> None:
    s = held
    turns = {"n": 0}
    acquire = s.agent.limiter.acquire

    def counted() -> None:
        turns["n"] += 1
        acquire()

    s.agent.limiter.acquire = counted  # type: ignore[method-assign]
    before = dict(s.kite.calls)
    pos = s.position
    assert s.api.post(f"/api/model/positions/{pos['id']}/close").status_code == 200
    s.agent.step()  # delete the OCO, read what it did, place the close, check fills
    s.agent.step()  # report the close's fill
    made = {k: v - before.get(k, 0) for k, v in s.kite.calls.items() if v - before.get(k, 0)}
    assert sum(made.values()) == turns["n"]  # reads too: Kite allows about ten requests a second
    # one read of the GTTs to see the OCO still stands, the close order, the delete, one read of each list
    # to see what became of the OCO, which also finds the close's fill (the next step has nothing to read)
    assert made == {f"DELETE /gtt/triggers/{s.oco['id']}": 1, "GET /gtt/triggers": 2,
                    "GET /orders": 1, "POST /orders/regular": 1}


def test_drifted_protective_gtts_are_put_back_after_one_read_of_the_last_prices(api_factory: Any,
                                                                                 tmp_path: Path) -> None:
    with _protected(api_factory, tmp_path, 2) as s:
        ocos = [g for g in s.kite.gtts.values() if g["type"] == "two-leg"]
        wanted = {g["id"]: list(g["condition"]["trigger_values"]) for g in ocos}
        for g in ocos:  # the stops were moved at Kite (Kite's web app): the broker no longer holds the model's
            g["condition"]["trigger_values"][0] -= 10
        before = s.kite.count("GET /quote/ltp")
        s.agent.step()
        assert s.kite.count("GET /quote/ltp") - before == 1  # one quote read for both (Kite: ~1 a second)
        assert sorted(m["id"] for m in s.kite.modifications) == sorted(wanted)
        assert {g["id"]: g["condition"]["trigger_values"] for g in ocos} == wanted
        before = s.kite.count("GET /quote/ltp")
        s.agent.step()  # in step: nothing to read, nothing to modify
        assert s.kite.count("GET /quote/ltp") == before and len(s.kite.modifications) == 2
