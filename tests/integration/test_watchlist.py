"""The watchlist is kept with the account: another device signed in as the same trader sees the list,
another trader never does; what is not a symbol is a 422 naming its place, never echoing it."""

from __future__ import annotations

from typing import Any

from tests.conftest import unique_email


def test_the_watchlist_follows_the_account_and_is_nobody_elses(api_factory: Any, database_url: str) -> None:
    phone, desktop, other = (api_factory(database_url) for _ in range(3))
    me = unique_email("watcher")
    phone.login(me)
    desktop.login(me)
    other.login()

    starter = desktop.get("/api/watchlist").json()
    assert starter["saved"] is False and starter["symbols"] == ["NSE:RELIANCE", "NSE:INFY", "NSE:HDFCBANK"]

    r = phone.put("/api/watchlist", json={"symbols": ["tcs", "BSE:M&M", "NSE:BAJAJ-AUTO", "NSE:TCS"]})
    assert r.status_code == 200, r.text
    kept = r.json()
    assert kept["symbols"] == ["NSE:TCS", "BSE:M&M", "NSE:BAJAJ-AUTO"]  # upper-cased, NSE by default, once
    assert kept["saved"] is True and kept["updated_at"]

    on_desktop = desktop.get("/api/watchlist").json()  # the read model shows what the command kept
    assert on_desktop["symbols"] == kept["symbols"] and on_desktop["updated_at"] == kept["updated_at"]
    assert other.get("/api/watchlist").json()["saved"] is False  # another trader: their own (starter) list

    again = phone.put("/api/watchlist", json={"symbols": ["NSE:TCS", "BSE:M&M", "NSE:BAJAJ-AUTO"]}).json()
    assert again["updated_at"] == kept["updated_at"]  # the same list: nothing recorded

    assert phone.put("/api/watchlist", json={"symbols": []}).json()["symbols"] == []
    assert desktop.get("/api/watchlist").json() | {"updated_at": None} == {
        "symbols": [], "saved": True, "updated_at": None}


def test_what_is_not_a_symbol_is_refused_by_its_place(api: Any) -> None:
    api.login()
    hostile = "<script>alert(1)</script>"
    r = api.put("/api/watchlist", json={"symbols": ["NSE:INFY", hostile]})
    assert r.status_code == 422
    assert "symbols[2]" in r.text and hostile not in r.text and "script" not in r.text
    assert api.put("/api/watchlist", json={"symbols": ["NASDAQ:AAPL"]}).status_code == 422
    assert api.put("/api/watchlist", json={"symbols": [f"NSE:S{i}" for i in range(51)]}).status_code == 422
    assert api.put("/api/watchlist", json={"symbols": ["NSE:" + "A" * 60]}).status_code == 422
    assert api.put("/api/watchlist", json={"list": []}).status_code == 422
    assert api.get("/api/watchlist").json()["saved"] is False  # nothing half written


def test_a_cross_site_simple_request_cannot_change_it(api: Any) -> None:
    api.login()
    del api.headers["X-Requested-With"]  # what another site's page can send: a simple content type, no header
    r = api.put("/api/watchlist", content='{"symbols": ["NSE:INFY"]}', headers={"Content-Type": "text/plain"})
    assert r.status_code == 403
    api.headers["X-Requested-With"] = "tradertape"
    assert api.get("/api/watchlist").json()["saved"] is False
