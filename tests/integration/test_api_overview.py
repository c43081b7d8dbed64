"""GET /api/overview/...: Home and a portfolio's dashboard in one answer each (the web app's first screens).
Each part is what its own endpoint answers; another user's portfolio is a 404 and never part of your Home."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

from api.routers.overview import HomeOverview, PortfolioOverview
from domain.market_hours import IST
from tests.conftest import unique_email
from tests.integration.test_api_model import advance, deploy, scan_with_signals, template_id, wait_projected


def ist_midnight() -> str:
    return datetime.combine(datetime.now(UTC).astimezone(IST).date(), time.min, IST).isoformat()


def test_home_and_dashboard_in_one_answer_each_equal_their_parts(market: Any, api_factory: Any) -> None:
    strategy = market.post(f"/api/strategies/{template_id(market)}/fork", json={"name": "Dips"}).json()
    pf = deploy(market, strategy["id"])
    signals = scan_with_signals(market, pf["id"], minimum=2)
    assert market.post(f"/api/model/signals/{signals[0]['id']}/approve").status_code == 200
    assert market.post("/api/model/cart/place", json={"portfolio_id": pf["id"]}).status_code == 200
    advance(market, 1)
    wait_projected(market)

    home = market.get("/api/overview/home", params={"pending_limit": 1})
    assert home.status_code == 200, home.text
    h = home.json()
    HomeOverview.model_validate(h)  # the documented schema (the route writes its JSON itself)
    assert h["portfolios"] == market.get("/api/model/portfolios").json()
    pending = market.get("/api/model/signals", params={"status": "pending_approval", "limit": 1})
    assert h["pending"] == pending.json() and len(h["pending"]) == 1
    assert h["pending_total"] == int(pending.headers["X-Total-Count"]) >= 1
    assert h["risk"] == market.get("/api/risk/state").json()
    assert h["broker"] == market.get("/api/auth/status").json()
    assert h["agent"] is None and market.get("/api/auth/agent-key").status_code == 404
    assert h["activity"] == market.get("/api/model/activity", params={"since": ist_midnight(), "limit": 20}).json()
    assert market.post("/api/auth/agent-key").status_code == 201
    assert market.get("/api/overview/home").json()["agent"] == market.get("/api/auth/agent-key").json()

    board = market.get(f"/api/overview/portfolios/{pf['id']}", params={"signals_limit": 3})
    assert board.status_code == 200, board.text
    b = board.json()
    PortfolioOverview.model_validate(b)
    assert b["dashboard"] == market.get("/api/model/dashboard", params={"portfolio_id": pf["id"]}).json()
    assert b["dashboard"]["positions"], "the filled entry is an open position"
    assert b["signals"] == market.get("/api/model/signals", params={"portfolio_id": pf["id"], "limit": 3}).json()

    other = api_factory()
    other.login(unique_email("overview-other"))
    assert other.get(f"/api/overview/portfolios/{pf['id']}").status_code == 404
    theirs = other.get("/api/overview/home").json()
    assert theirs["portfolios"] == [] and theirs["pending"] == [] and theirs["pending_total"] == 0
    assert theirs["activity"] == [] and theirs["risk"]["open_positions"] == 0


def test_overview_refuses_bad_input_with_a_clear_4xx(market: Any, api_factory: Any) -> None:
    for params, field in (({"pending_limit": 0}, "pending_limit"), ({"activity_limit": 201}, "activity_limit"),
                          ({"pending_limit": "lots"}, "pending_limit")):
        r = market.get("/api/overview/home", params=params)
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", field]
    assert market.get("/api/overview/portfolios/abc").status_code == 422
    assert market.get("/api/overview/portfolios/999999").status_code == 404
    assert api_factory().get("/api/overview/home").status_code == 401
