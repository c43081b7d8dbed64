"""Bad input is a clear 4xx on SQLite and on Postgres: never a 500, never an event that a projection
cannot apply."""

from __future__ import annotations

from typing import Any

import pytest

TOKEN = "bad-input-metrics-token"  # /api/health detail for the operator
HUGE = 99999999999999999999  # > 2**63


@pytest.fixture
def client(api_factory: Any, database_url: str) -> Any:
    c = api_factory(database_url, metrics_token=TOKEN)
    c.login()
    return c


def _healthy(c: Any) -> None:
    h = c.get("/api/health", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert h["status"] == "ok" and h["projection_lag"] == 0, h


@pytest.mark.parametrize("url", [
    "/api/strategies?q=a%00b",
    "/api/strategies?base_model=x%00",
    "/api/market/bars/AB%00C",
    "/api/auth/verify-link?email=a%00%40example.com&token=b",
])
def test_nul_in_url_is_400(client: Any, url: str) -> None:
    r = client.get(url)
    assert r.status_code == 400 and "NUL" in r.json()["detail"]


@pytest.mark.parametrize("body", [
    {"name": "a\x00b", "base_model": "sma_crossover"},
    {"name": "ok", "description": "d\x00", "base_model": "sma_crossover"},
    {"name": "ok", "base_model": "sma_crossover", "params": {"bogus\x00": 1}},
])
def test_nul_in_json_is_422_and_nothing_poisons_the_projections(client: Any, body: dict[str, Any]) -> None:
    r = client.post("/api/strategies", json=body)
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "json_invalid"
    tpl = client.get("/api/strategies", params={"is_template": True}).json()[0]["id"]
    assert client.post(f"/api/strategies/{tpl}/fork", json={"name": "x\x00"}).status_code == 422
    _healthy(client)
    assert client.get("/api/strategies", params={"is_template": False}).headers["X-Total-Count"] == "0"


@pytest.mark.parametrize("raw", [
    b'{"name": "x", "base_model": "sma_crossover", "params": {"fast": NaN}}',
    b'{"name": "x", "base_model": "sma_crossover", "params": {"fast": Infinity}}',
    b'{"name": "x", "base_model": "sma_crossover", "entry_rules": {"all": [{"left": {"ind": "close"}, "op": ">",'
    b' "right": 1e309}]}}',
])
def test_non_finite_numbers_are_422(client: Any, raw: bytes) -> None:
    r = client.post("/api/strategies", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422
    _healthy(client)


@pytest.mark.parametrize("method,url", [
    ("get", f"/api/strategies/{HUGE}"),
    ("get", "/api/strategies/0"),
    ("post", f"/api/strategies/{HUGE}/fork"),
    ("delete", f"/api/strategies/{HUGE}"),
    ("get", f"/api/strategies?offset={HUGE}"),
    ("get", f"/api/backtest/runs/{HUGE}"),
    ("get", f"/api/backtest/runs?offset={HUGE}"),
])
def test_out_of_range_ids_are_422(client: Any, method: str, url: str) -> None:
    assert getattr(client, method)(url).status_code == 422


def test_out_of_range_strategy_id_in_a_backtest_is_422(client: Any) -> None:
    r = client.post("/api/backtest/run", json={
        "strategy_id": HUGE, "universe": "nifty_50", "start_date": "2020-01-01", "end_date": "2020-02-01",
        "starting_capital": 100000})
    assert r.status_code == 422


def test_link_with_a_malformed_email_is_422(client: Any) -> None:
    assert client.get("/api/auth/verify-link", params={"email": "nope", "token": "x"}).status_code == 422
