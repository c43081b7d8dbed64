"""Model portfolios over HTTP: deploy, scan, approve, place, the simulated market, positions, dashboard,
the lifecycle, and every refusal a user can run into."""

from __future__ import annotations

from typing import Any

import pytest

from infra.bars.store import BarStore
from infra.bars.synthetic import extend
from infra.bars.universes import load_universe
from tests.conftest import unique_email

UNIVERSE = "nifty_50"




def template_id(client: Any, base_model: str = "v3_dip_buyer") -> int:
    templates = client.get("/api/strategies", params={"is_template": True}).json()
    return int(next(t["id"] for t in templates if t["base_model"] == base_model))


def deploy(client: Any, strategy_id: int, **changes: Any) -> dict[str, Any]:
    body = {"strategy_id": strategy_id, "name": "Dip paper", "mode": "paper", "capital": 1_000_000,
            "universe": UNIVERSE, "position_size_pct": 10, "max_positions": 5, "max_per_sector": 2,
            "auto_approve": False}
    body.update(changes)
    r = client.post("/api/model/portfolios/deploy", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def advance(client: Any, days: int) -> list[str]:
    """What `tradertape sim advance` does: append synthetic days, run the market clock for each."""
    store = BarStore(client.platform.settings.data_dir)
    clock = client.app.state.market_clock
    added = []
    for _ in range(days):
        day = extend(store, load_universe(UNIVERSE), 1)[0].isoformat()
        clock.run_due(day)
        added.append(day)
    return added


def wait_projected(client: Any) -> None:
    """Let the projector apply what the market clock (not an HTTP command) recorded."""
    client.app.state.read_your_writes.wait([], client.platform.store.max_position())


def scan_with_signals(client: Any, portfolio_id: int, minimum: int = 2) -> list[dict[str, Any]]:
    """Scan; while too few entry signals wait for approval, let a market day pass and scan again."""
    for _ in range(60):
        r = client.post("/api/model/scan", json={"portfolio_id": portfolio_id})
        assert r.status_code == 200, r.text
        assert all(s["portfolio_id"] == portfolio_id for s in r.json()["signals"])
        pending = client.get("/api/model/signals", params={"portfolio_id": portfolio_id,
                                                           "status": "pending_approval"}).json()
        found = [s for s in pending if s["kind"] == "entry"]
        if len(found) >= minimum:
            return found
        advance(client, 1)
        wait_projected(client)  # the day's expiries (the market clock's events) before the list is read again
    raise AssertionError("no day produced enough signals")


def test_deploy_scan_approve_place_and_watch_the_paper_market(market: Any) -> None:
    strategy = market.post(f"/api/strategies/{template_id(market)}/fork", json={"name": "My dip"}).json()
    pf = deploy(market, strategy["id"])
    assert pf["status"] == "active" and pf["mode"] == "paper" and pf["cash"] == 1_000_000
    r = market.get("/api/model/signals", params={"limit": 501})
    assert r.status_code == 422  # lists cap at 500; signals default to 100
    listed = market.get("/api/model/portfolios")
    assert [p["id"] for p in listed.json()] == [pf["id"]] and listed.headers["X-Total-Count"] == "1"

    signals = scan_with_signals(market, pf["id"])
    first = signals[0]
    assert first["status"] == "pending_approval" and first["side"] == "buy" and first["quantity"] > 0
    assert first["reason"] and "rsi" in first["reason"]  # which rules fired, with values
    assert first["expires_at"] > first["created_at"] or first["expires_at"]
    assert 0 <= first["conviction"] <= 100 and first["stop_loss"] < first["reference_price"] < first["target"]

    chosen = signals[:2]
    for s in chosen:
        r = market.post(f"/api/model/signals/{s['id']}/approve")
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "in_cart"
    again = market.post(f"/api/model/signals/{chosen[0]['id']}/approve")
    assert again.status_code == 400 and "in_cart" in again.json()["detail"]
    dash = market.get("/api/model/dashboard", params={"portfolio_id": pf["id"]}).json()
    assert dash["signals"]["in_cart"] == 2

    placed = market.post("/api/model/cart/place", json={"portfolio_id": pf["id"]})
    assert placed.status_code == 200, placed.text
    out = placed.json()
    assert sorted(s["id"] for s in out["placed"]) == sorted(s["id"] for s in chosen) and out["refused"] == []
    assert all(s["status"] == "placed" and s["gtt_id"] for s in out["placed"])
    bad = market.post(f"/api/model/signals/{chosen[0]['id']}/reject")
    assert bad.status_code == 400 and "placed" in bad.json()["detail"]

    advance(market, 1)
    wait_projected(market)
    states = {s["id"]: s for s in market.get("/api/model/signals", params={"portfolio_id": pf["id"]}).json()}
    filled = [states[s["id"]] for s in chosen if states[s["id"]]["status"] == "executed"]
    assert filled, [states[s["id"]] for s in chosen]
    assert all(s["fill_price"] > 0 and s["filled_quantity"] == s["quantity"] for s in filled)
    positions = market.get("/api/model/positions", params={"portfolio_id": pf["id"], "status": "open"}).json()
    assert {p["symbol"] for p in positions} == {s["symbol"] for s in filled}
    row = market.get("/api/model/portfolios").json()[0]  # the list carries the counts a dashboard shows
    assert (row["open_positions"], row["in_cart_signals"]) == (len(positions), 0)
    assert row["pending_signals"] == len(market.get("/api/model/signals", params={
        "portfolio_id": pf["id"], "status": "pending_approval"}).json())

    advance(market, 20)
    wait_projected(market)
    closed = market.get("/api/model/positions", params={"portfolio_id": pf["id"], "status": "closed"}).json()
    assert closed, "a v3_dip_buyer position exits within its max hold of 10 days"
    for p in closed:
        assert p["exit_reason"] in ("target", "stop_loss", "trailing_stop", "max_hold", "signal")
        expected = round((p["exit_price"] - p["avg_price"]) * p["quantity"] - p["charges"], 2)
        assert abs(p["realized_pnl"] - expected) <= 0.01

    dash = market.get("/api/model/dashboard", params={"portfolio_id": pf["id"]}).json()
    assert abs(dash["equity"] - (dash["cash"] + dash["invested"])) <= 0.02
    assert dash["total_pnl"] == round(dash["equity"] - 1_000_000, 2)
    assert len(dash["equity_curve"]) >= 21 and dash["equity_curve"][-1]["equity"] == dash["equity"]
    types = [a["type"] for a in dash["activity"]]
    assert "PositionClosed" in types and "OrderPlaced" in types
    assert dash["activity"][0]["at"] >= dash["activity"][-1]["at"]  # newest first
    assert dash["risk"]["open_positions"] == len(dash["positions"])

    # every portfolio's activity merged (one portfolio here: the dashboard's, each entry naming it)
    feed = market.get("/api/model/activity", params={"limit": 50}).json()
    assert [(a["type"], a["at"]) for a in feed] == [(a["type"], a["at"]) for a in dash["activity"]]
    assert {a["portfolio_id"] for a in feed} == {pf["id"]}
    newest = feed[0]["at"]
    since = market.get("/api/model/activity", params={"since": newest}).json()
    assert since and all(a["at"] >= newest for a in since) and len(since) < len(feed)
    bad = market.get("/api/model/activity", params={"since": "yesterday<script>"})
    assert bad.status_code == 422 and "<script>" not in bad.text


def test_refusals_and_lifecycle(market: Any, api_factory: Any) -> None:
    strategy = market.post(f"/api/strategies/{template_id(market)}/fork", json={"name": "Mine"}).json()
    pf = deploy(market, strategy["id"])
    signals = scan_with_signals(market, pf["id"], minimum=1)

    other = api_factory()
    other.login(unique_email("other"))
    assert other.post(f"/api/model/signals/{signals[0]['id']}/approve").status_code == 404
    assert other.get("/api/model/dashboard", params={"portfolio_id": pf["id"]}).status_code == 404
    assert other.post(f"/api/model/portfolios/{pf['id']}/pause").status_code == 404
    assert other.get("/api/model/signals").json() == []
    assert other.get("/api/model/activity").json() == []  # another user's activity is never merged in
    assert market.post("/api/model/signals/999999/approve").status_code == 404
    assert market.post("/api/model/portfolios/999999/retire").status_code == 404

    # a strategy an active portfolio uses cannot be deleted
    r = market.delete(f"/api/strategies/{strategy['id']}")
    assert r.status_code == 409 and "portfolio" in r.json()["detail"]

    # reject, then the illegal transitions name the current status
    r = market.post(f"/api/model/signals/{signals[0]['id']}/reject", json={"reason": "not today"})
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    r = market.post(f"/api/model/signals/{signals[0]['id']}/approve")
    assert r.status_code == 400 and "rejected" in r.json()["detail"]

    # pause stops approvals; resume; live reset is 400; retire with positions is 409
    assert market.post(f"/api/model/portfolios/{pf['id']}/pause").json()["status"] == "paused"
    assert market.post(f"/api/model/portfolios/{pf['id']}/pause").status_code == 400
    assert market.post(f"/api/model/portfolios/{pf['id']}/resume").json()["status"] == "active"
    live = deploy(market, strategy["id"], mode="live", name="Live one")
    r = market.post(f"/api/model/portfolios/{live['id']}/reset")
    assert r.status_code == 400 and "live" in r.json()["detail"]

    # market entries (sma_crossover fills at the next open) so a position opens within days
    auto = deploy(market, template_id(market, "sma_crossover"), name="Auto", auto_approve=True)
    for _ in range(30):
        market.post("/api/model/scan", json={"portfolio_id": auto["id"]})
        advance(market, 1)
        wait_projected(market)
        if market.get("/api/model/positions", params={"portfolio_id": auto["id"], "status": "open"}).json():
            break
    open_now = market.get("/api/model/positions", params={"portfolio_id": auto["id"], "status": "open"}).json()
    assert open_now, str(market.get("/api/model/signals", params={"portfolio_id": auto["id"]}).json())
    r = market.post(f"/api/model/portfolios/{auto['id']}/retire")
    assert r.status_code == 409 and "open position" in r.json()["detail"]
    before = market.get("/api/model/dashboard", params={"portfolio_id": auto["id"]}).json()["portfolio"]["status"]
    assert before == "active"  # nothing changed

    # manual close at the latest price, then retire works
    for p in open_now:
        r = market.post(f"/api/model/positions/{p['id']}/close")
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "closed" and r.json()["exit_reason"] == "manual"
    assert market.post(f"/api/model/positions/{open_now[0]['id']}/close").status_code == 400
    assert market.post(f"/api/model/portfolios/{auto['id']}/retire").json()["status"] == "retired"

    # reset a paper portfolio: back to its capital, no open positions, history kept
    r = market.post(f"/api/model/portfolios/{pf['id']}/reset")
    assert r.status_code == 200 and r.json()["cash"] == 1_000_000
    assert market.get("/api/model/positions", params={"portfolio_id": pf["id"], "status": "open"}).json() == []


@pytest.mark.parametrize("body", [
    {"strategy_id": 1, "name": "x", "capital": 0, "universe": UNIVERSE},
    {"strategy_id": 1, "name": "x", "capital": 1e-9, "universe": UNIVERSE},
    {"strategy_id": 1, "name": "x", "capital": 999.5, "universe": UNIVERSE},
    {"strategy_id": 1, "name": "x", "capital": 1000, "universe": UNIVERSE, "position_size_pct": 150},
    {"strategy_id": 1, "name": "x", "capital": 1000, "universe": UNIVERSE, "max_positions": 0},
    {"strategy_id": 1, "name": "x", "capital": 1000, "universe": UNIVERSE, "mode": "real"},
    {"strategy_id": 1, "name": "x", "capital": 1000, "universe": UNIVERSE, "surprise": 1},
])
def test_deploy_bad_input_is_422(market: Any, body: dict[str, Any]) -> None:
    r = market.post("/api/model/portfolios/deploy", json=body)
    assert r.status_code == 422 and r.json()["detail"]


def test_deploy_unknown_strategy_or_universe(market: Any) -> None:
    r = market.post("/api/model/portfolios/deploy",
                    json={"strategy_id": 999999, "name": "x", "capital": 1000, "universe": UNIVERSE})
    assert r.status_code == 404
    for universe in ("nifty_9", "../../etc/passwd"):  # named by what is wrong, never by the text sent
        r = market.post("/api/model/portfolios/deploy",
                        json={"strategy_id": template_id(market), "name": "x", "capital": 1000, "universe": universe})
        assert r.status_code == 400 and r.json()["detail"] == "Unknown universe; choose one of: nifty_50, nifty_100"
    assert market.get("/api/model/portfolios").json() == []


def test_a_remembered_signal_home_is_only_a_hint(market: Any, api_factory: Any) -> None:
    strategy = market.post(f"/api/strategies/{template_id(market)}/fork", json={"name": "Homes"}).json()
    pf = deploy(market, strategy["id"])
    second = deploy(market, strategy["id"], name="Second")
    signals = scan_with_signals(market, pf["id"], minimum=2)
    homes = market.app.state.signal_homes
    assert homes.get(signals[0]["id"]) == (pf["id"], signals[0]["account_id"])  # learnt from the scan

    other = api_factory()
    other.login(unique_email("homes"))
    assert other.post(f"/api/model/signals/{signals[0]['id']}/approve").status_code == 404  # remembered
    homes.forget(signals[1]["id"])
    assert other.post(f"/api/model/signals/{signals[1]['id']}/reject").status_code == 404  # asked the read model
    assert market.get("/api/model/signals", params={"portfolio_id": pf["id"], "status": "pending_approval"}
                      ).headers["X-Total-Count"] == str(len(signals))  # nothing changed

    homes.learn([{**signals[0], "portfolio_id": second["id"]}])  # remembered wrongly
    r = market.post(f"/api/model/signals/{signals[0]['id']}/approve")
    assert r.status_code == 200 and r.json()["status"] == "in_cart" and r.json()["portfolio_id"] == pf["id"]
    assert homes.get(signals[0]["id"]) == (pf["id"], signals[0]["account_id"])

    assert other.post("/api/model/cart/place", json={"portfolio_id": pf["id"]}).status_code == 404
    placed = market.post("/api/model/cart/place", json={"portfolio_id": pf["id"]}).json()
    assert [p["id"] for p in placed["placed"]] == [signals[0]["id"]] and placed["refused"] == []


def test_a_strategy_in_use_is_refused_deletion_saying_how_once(market: Any) -> None:
    fork = market.post(f"/api/strategies/{template_id(market)}/fork")
    assert fork.status_code == 201, fork.text
    sid = fork.json()["id"]
    pf = deploy(market, sid)
    r = market.delete(f"/api/strategies/{sid}")
    assert r.status_code == 409
    assert r.json()["detail"] == (f"Strategy {sid} is used by an active portfolio: retire it first (Portfolios, "
                                  "Retire), then delete the strategy")
    assert market.post(f"/api/model/portfolios/{pf['id']}/retire").status_code == 200
    assert market.delete(f"/api/strategies/{sid}").status_code == 204
