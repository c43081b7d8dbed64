"""Market data over HTTP: universes, stored bars, the trading calendar."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from infra.bars.store import BarStore
from infra.bars.synthetic import generate
from infra.bars.universes import load_universe


@pytest.fixture
def market(api: Any) -> Any:
    generate(BarStore(api.platform.settings.data_dir), load_universe("nifty_50"), date(2019, 1, 1),
             date(2021, 12, 31))
    api.login()
    return api


def test_universes_list_nifty_50_with_members_and_sectors(market: Any) -> None:
    r = market.get("/api/universes")
    assert r.status_code == 200
    by_name = {u["name"]: u for u in r.json()}
    assert {"nifty_50", "nifty_100"} <= set(by_name)
    n50 = by_name["nifty_50"]
    assert n50["index_symbol"] == "NIFTY50" and len(n50["members"]) == 50
    assert all(m["symbol"] and m["sector"] and set(m) >= {"company", "isin"} for m in n50["members"])
    assert len({m["sector"] for m in n50["members"]}) > 5


def test_bars_are_within_from_and_to(market: Any) -> None:
    r = market.get("/api/market/bars/RELIANCE", params={"from": "2020-03-01", "to": "2020-03-31"})
    assert r.status_code == 200
    rows = r.json()
    assert 15 <= len(rows) <= 23
    assert all("2020-03-01" <= row["date"] <= "2020-03-31" for row in rows)
    assert set(rows[0]) == {"date", "open", "high", "low", "close", "volume"}
    assert all(row["low"] <= row["close"] <= row["high"] for row in rows)
    assert market.get("/api/market/bars/nse:reliance", params={"from": "2020-03-02", "to": "2020-03-02"}).json() \
        == [rows[0]]


def test_bars_errors_are_4xx(market: Any) -> None:
    assert market.get("/api/market/bars/NOSUCHCO").status_code == 404
    assert market.get("/api/market/bars/RELIANCE", params={"from": "2020-13-01"}).status_code == 422
    r = market.get("/api/market/bars/RELIANCE", params={"from": "2020-03-31", "to": "2020-03-01"})
    assert r.status_code == 400 and "after" in r.json()["detail"]


def test_bars_of_an_unknown_symbol_name_it_only_when_it_is_a_symbol(market: Any) -> None:
    r = market.get("/api/market/bars/nse:nosuchco")
    assert r.status_code == 404 and r.json()["detail"] == "No bars stored for NOSUCHCO"
    for sent in ("..%5C..%5Cetc%5Cpasswd", "EVIL%E2%80%AEFDP", "A" * 5000, "WIPRO%3BDROP", "NSE%3AWIPRO%3AX"):
        r = market.get(f"/api/market/bars/{sent}")
        text = r.content.decode()
        assert "passwd" not in text.lower() and "EVIL" not in text and "\u202e" not in text and "AAAA" not in text
        assert "DROP" not in text and "WIPRO" not in text
        if "%E2%80%AE" in sent and r.status_code == 422:  # (a bidi override may be refused as text first)
            continue
        assert r.status_code == 404, r.text
        assert r.json()["detail"] == ("No bars stored: not a valid symbol (an NSE trading symbol such as INFY or an "
                                      "index such as NIFTY50)")


def test_calendar_excludes_weekends_and_holidays(market: Any) -> None:
    r = market.get("/api/market/calendar", params={"from": "2021-01-01", "to": "2021-01-31"})
    assert r.status_code == 200
    days = [date.fromisoformat(d) for d in r.json()]
    assert days and all(d.weekday() < 5 for d in days)
    assert date(2021, 1, 26) not in days  # Republic Day
    assert days == sorted(days) and days[0] == date(2021, 1, 1)
    bad = market.get("/api/market/calendar", params={"from": "2021-02-01", "to": "2021-01-01"})
    assert bad.status_code == 400


def test_market_needs_authentication(api: Any) -> None:
    assert api.get("/api/universes").status_code == 401
