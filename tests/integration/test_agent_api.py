"""The Agent API over HTTP: pending signals of live portfolios, idempotent results that open and close
positions through the Portfolio's own code, ownership, key-only access, snapshots and reconciliation."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.conftest import unique_email
from tests.support.live import Http, live_portfolio_with_placed_signals, make_bars


@pytest.fixture
def live(api_factory: Any, database_url: str) -> Any:
    api = api_factory(database_url)
    make_bars(api.platform.settings.data_dir)
    api.login()
    key = api.post("/api/auth/agent-key").json()["key"]
    api.agent = {"Authorization": f"Bearer {key}"}
    return api


def _result(api: Any, **body: Any) -> Any:
    return api.post("/api/agent/signal-result", headers=api.agent, json=body)


def test_agent_reports_place_fill_protect_and_exit_idempotently(live: Any) -> None:
    api = live
    pf, placed = live_portfolio_with_placed_signals(Http(api), slots=3)
    pending = api.get("/api/agent/pending-signals", headers=api.agent)
    assert pending.status_code == 200 and [s["id"] for s in pending.json()] == [p["id"] for p in placed]
    assert all(s["kind"] == "entry" and s["side"] == "buy" and s["limit_price"] for s in pending.json())
    # cookies are not enough for agent endpoints
    assert api.get("/api/agent/pending-signals").status_code == 403
    first, second, third = placed
    r = _result(api, signal_id=first["id"], status="placed", gtt_id="9001")
    assert r.status_code == 200 and r.json()["recorded"] is True and r.json()["signal"]["gtt_id"] == "9001"
    r = _result(api, signal_id=first["id"], status="placed", gtt_id="9001")
    assert r.status_code == 200 and r.json()["recorded"] is False  # the same result twice records once
    assert _result(api, signal_id=first["id"], status="placed", gtt_id="9002").status_code == 409
    working = api.get("/api/agent/pending-signals", headers=api.agent, params={"state": "working"}).json()
    assert [s["id"] for s in working] == [first["id"]]
    assert first["id"] not in [s["id"] for s in api.get("/api/agent/pending-signals", headers=api.agent).json()]
    # a fill larger than the order, or at a price nothing like the signal's, is refused and records nothing
    price = round(first["limit_price"] - 0.5, 2)
    fill = {"signal_id": first["id"], "status": "executed", "fill_price": price, "filled_quantity": 7,
            "gtt_id": "9001"}
    for bad in ({"filled_quantity": first["quantity"] + 1}, {"fill_price": 1e9}, {"fill_price": price / 3}):
        r = _result(api, **{**fill, **bad})
        assert r.status_code == 400, (bad, r.text)
        assert "filled_quantity is more than" in r.json()["detail"] or "implausible" in r.json()["detail"]
    # the fill opens the position and queues its protective stop/target exit
    r = _result(api, **fill)
    assert r.status_code == 200 and r.json()["recorded"] is True, r.text
    out = r.json()
    assert out["signal"]["status"] == "executed" and out["signal"]["fill_price"] == price
    again = _result(api, **fill)
    assert again.status_code == 200 and again.json()["recorded"] is False
    assert _result(api, **{**fill, "fill_price": price - 1}).status_code == 409
    assert _result(api, signal_id=first["id"], status="failed", error="late").status_code == 409
    positions = api.get("/api/model/positions", params={"portfolio_id": pf["id"], "status": "open"}).json()
    assert len(positions) == 1 and positions[0]["quantity"] == 7 and positions[0]["avg_price"] == price
    assert positions[0]["stop_loss"] == pytest.approx(price * 0.95, abs=0.1)  # on the 0.05 tick grid
    exits = [s for s in api.get("/api/agent/pending-signals", headers=api.agent).json() if s["kind"] == "exit"]
    assert len(exits) == 1 and exits[0]["id"] == out["exit_signal_id"]
    assert exits[0]["side"] == "sell" and exits[0]["position"]["quantity"] == 7
    assert exits[0]["position"]["target"] == positions[0]["target"]
    # the OCO is placed, then its target leg fills: the position closes at the target
    assert _result(api, signal_id=exits[0]["id"], status="placed", gtt_id="9100").json()["recorded"] is True
    target = positions[0]["target"]
    r = _result(api, signal_id=exits[0]["id"], status="executed", fill_price=target, filled_quantity=7)
    assert r.status_code == 200 and r.json()["recorded"] is True, r.text
    assert _result(api, signal_id=exits[0]["id"], status="executed", fill_price=target).json()["recorded"] is False
    closed = api.get("/api/model/positions", params={"portfolio_id": pf["id"], "status": "closed"}).json()
    assert len(closed) == 1 and closed[0]["exit_reason"] == "target" and closed[0]["exit_price"] == target
    # a broker refusal fails the entry and frees its slot
    r = _result(api, signal_id=second["id"], status="failed", error="Kite: Insufficient funds")
    assert r.status_code == 200 and r.json()["signal"]["status"] == "failed"
    assert r.json()["signal"]["failure_reason"] == "Kite: Insufficient funds"
    assert _result(api, signal_id=second["id"], status="failed", error="again").json()["recorded"] is False
    # bad input
    assert _result(api, signal_id=third["id"], status="executed").status_code == 422  # no fill price
    assert _result(api, signal_id=third["id"], status="done").status_code == 422
    assert _result(api, signal_id=third["id"], status="placed").status_code == 422  # no ids
    activity = api.get("/api/model/dashboard", params={"portfolio_id": pf["id"]}).json()["activity"]
    assert any(a["type"] == "BrokerOrderRecorded" for a in activity)


def test_agent_keys_are_scoped_and_revocation_is_immediate(live: Any, api_factory: Any) -> None:
    api = live
    _, placed = live_portfolio_with_placed_signals(Http(api), slots=2)
    other = api_factory()
    other.login(unique_email("other"))
    other_key = {"Authorization": f"Bearer {other.post('/api/auth/agent-key').json()['key']}"}
    # another account's signal: 404 (existence does not leak)
    r = other.post("/api/agent/signal-result", headers=other_key,
                   json={"signal_id": placed[0]["id"], "status": "placed", "gtt_id": "1"})
    assert r.status_code == 404
    assert other.get("/api/agent/pending-signals", headers=other_key).json() == []
    # a paper portfolio's signal is not the agent's business
    assert api.get("/api/agent/pending-signals", headers={"Authorization": "Bearer nope"}).status_code == 401
    # revoked: 401 at once
    assert api.delete("/api/auth/agent-key").status_code == 204
    started = time.monotonic()
    r = api.get("/api/agent/pending-signals", headers=api.agent)
    assert r.status_code == 401 and time.monotonic() - started < 1.0


def test_snapshots_are_events_and_reconciliation_flags_drift(live: Any) -> None:
    api = live
    pf, placed = live_portfolio_with_placed_signals(Http(api), slots=2)
    a, b = placed
    for sig, qty in ((a, 5), (b, 3)):
        assert _result(api, signal_id=sig["id"], status="placed", gtt_id=f"g{sig['id']}").status_code == 200
        r = _result(api, signal_id=sig["id"], status="executed", fill_price=sig["limit_price"], filled_quantity=qty)
        assert r.status_code == 200, r.text
    dash = api.get("/api/model/dashboard", params={"portfolio_id": pf["id"]}).json()
    assert dash["reconciliation"]["synced_at"] is None  # nothing pushed yet
    holdings = [
        {"tradingsymbol": a["symbol"], "exchange": "NSE", "quantity": 5, "t1_quantity": 0, "average_price": 100.0,
         "product": "CNC", "last_price": 101.0},
        {"tradingsymbol": "ZZEXTRA", "exchange": "NSE", "quantity": 2, "average_price": 10, "product": "CNC"},
    ]
    r = api.post("/api/agent/sync-holdings", headers=api.agent, json={"status": "success", "data": holdings})
    assert r.status_code == 200 and r.json() == {"recorded": True, "holdings": 2}
    assert api.post("/api/agent/sync-holdings", headers=api.agent, json=holdings).json()["recorded"] is False
    positions = {"net": [{"tradingsymbol": b["symbol"], "exchange": "NSE", "product": "CNC", "quantity": 1}],
                 "day": []}
    assert api.post("/api/agent/sync-positions", headers=api.agent, json=positions).json()["recorded"] is True
    dash = api.get("/api/model/dashboard", params={"portfolio_id": pf["id"]}).json()
    drift = {d["symbol"]: d for d in dash["reconciliation"]["drift"]}
    assert set(drift) == {b["symbol"]} and drift[b["symbol"]]["kind"] == "quantity"
    assert drift[b["symbol"]]["model_quantity"] == 3 and drift[b["symbol"]]["broker_quantity"] == 1
    account = api.get("/api/portfolio/reconciliation", headers=api.agent).json()
    kinds = {d["symbol"]: d["kind"] for d in account["drift"]}
    assert kinds == {b["symbol"]: "quantity", "ZZEXTRA": "extra"}
    # a snapshot where a held symbol is gone: missing
    api.post("/api/agent/sync-holdings", headers=api.agent, json=holdings[1:])
    drift = api.get("/api/portfolio/reconciliation", headers=api.agent).json()["drift"]
    kinds = {d["symbol"]: d["kind"] for d in drift}
    assert kinds[a["symbol"]] == "missing"
    events = api.platform.store.read(0, 10_000)
    assert sum(e.type == "HoldingsSynced" for e in events) == 2
    assert sum(e.type == "PositionsSynced" for e in events) == 1
    # malformed snapshots
    assert api.post("/api/agent/sync-holdings", headers=api.agent, json={"x": 1}).status_code == 422
    assert api.post("/api/agent/sync-holdings", headers=api.agent, json=[{"quantity": 1}]).status_code == 422
    assert api.post("/api/agent/sync-positions", headers=api.agent, json=[1]).status_code == 422
    for bad in ({"quantity": True}, {"quantity": -5}, {"quantity": "5"}, {"t1_quantity": -1}):
        row = {"tradingsymbol": "INFY", "exchange": "NSE", "quantity": 5, **bad}
        r = api.post("/api/agent/sync-holdings", headers=api.agent, json=[row])
        assert r.status_code == 422, (bad, r.text)  # a holding is a whole number of shares, never negative
    short = {"net": [{"tradingsymbol": "INFY", "exchange": "NSE", "product": "MIS", "quantity": -5}], "day": []}
    assert api.post("/api/agent/sync-positions", headers=api.agent, json=short).status_code == 200  # may be short
    late = {"unresolved": [{"signal_id": a["id"], "gtt_id": "G9", "detail": "y", "since": "yesterday"}]}
    r = api.post("/api/agent/sync-gtts", headers=api.agent, json=late)
    assert r.status_code == 422 and "ISO 8601" in r.text
