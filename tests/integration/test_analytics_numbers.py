"""Numbers a user checks after an upload (issue 16 items 2-5): marks adjusted for splits, marks from real
prices only, oversells reported, and one analytics scope."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra.bars.importers import import_csv
from infra.bars.store import BarStore
from infra.bars.synthetic import generate
from infra.bars.universes import custom_universe, load_universe
from tests.support.brokerfiles import trade, tradebook_csv


@pytest.fixture
def client(api_factory: Any) -> Any:
    c = api_factory()
    c.login()
    return c


def upload(client: Any, rows: list[list[Any]]) -> dict[str, Any]:
    r = client.post("/api/uploads/tradebook", files=[("files[]", ("tb.csv", tradebook_csv(rows)))])
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_a_last_trade_mark_is_adjusted_by_a_split_after_the_trade(client: Any) -> None:
    # buy 10 @ 1,000, then a 2:1 split: 20 shares at avg 500, marked at 500 (not the pre-split 1,000)
    upload(client, [trade("ACME", "2024-01-10", "buy", 10, 1000.0, "1")])
    r = client.post("/api/analytics/corporate-actions", json={"symbol": "ACME", "ex_date": "2024-03-01",
                                                              "kind": "split", "ratio_new": 2, "ratio_old": 1})
    assert r.status_code == 201, r.text
    [h] = client.get("/api/analytics/holdings").json()
    assert (h["quantity"], h["avg_cost"], h["last_price"], h["mark_source"]) == (20, 500.0, 500.0, "last_trade")
    assert h["unrealized_pnl"] == 0.0  # no fake +10,000
    # a 1:1 bonus after the trade halves the mark too; a trade after the ex-date is already post-split
    upload(client, [trade("BONI", "2024-01-10", "buy", 4, 800.0, "2")])
    client.post("/api/analytics/corporate-actions", json={"symbol": "BONI", "ex_date": "2024-02-01",
                                                          "kind": "bonus", "ratio_new": 1, "ratio_old": 1})
    held = {x["symbol"]: x for x in client.get("/api/analytics/holdings").json()}
    assert (held["BONI"]["quantity"], held["BONI"]["last_price"], held["BONI"]["current_value"]) == (8, 400.0, 3200.0)
    upload(client, [trade("ACME", "2024-04-01", "buy", 2, 520.0, "3")])
    held = {x["symbol"]: x for x in client.get("/api/analytics/holdings").json()}
    assert held["ACME"]["last_price"] == 520.0


def test_corporate_actions_outside_sense_are_refused_and_change_nothing(client: Any) -> None:
    """A ratio of 1e-300 turned a holding into 5e-306 shares and every value into null; an ex-date in 9999 or
    a symbol with a bidi override were recorded too. Each is now a 4xx, and the holdings stay as they were."""
    from datetime import datetime, timedelta

    from domain.market_hours import IST

    upload(client, [trade("ITC", "2024-01-10", "buy", 100, 400.0, "1")])
    held = client.get("/api/analytics/holdings").json()
    summary = client.get("/api/analytics/summary").json()
    assert [(h["symbol"], h["quantity"]) for h in held] == [("ITC", 100)] and summary["invested"] == 40000.0
    tomorrow = (datetime.now(IST).date() + timedelta(days=1)).isoformat()
    good = {"symbol": "ITC", "ex_date": "2024-06-03", "kind": "split", "ratio_new": 2, "ratio_old": 1}
    refused: list[dict[str, Any]] = [
        {"ratio_new": 1e-300, "ratio_old": 1000000},  # the report's case
        {"ratio_new": 1, "ratio_old": 1000000},
        {"ratio_new": 1001, "ratio_old": 1},
        {"ratio_new": 1, "ratio_old": 1001},
        {"ratio_new": 1.5, "ratio_old": 1},  # NSE ratios are whole numbers (a 3:2 bonus is 3 and 2)
        {"ratio_new": 2, "ratio_old": 0.5},
        {"ratio_new": 0, "ratio_old": 1},
        {"ex_date": "9999-12-31"},
        {"ex_date": tomorrow},
        {"ex_date": "1989-12-31"},
        {"symbol": "IT\u202eC"},  # a bidi override: displays as something else
        {"symbol": "ITC\u200b"},
        {"symbol": "ITC;DROP"},
        {"symbol": "NSE:ITC"},
        {"symbol": "   "},
        {"symbol": "A" * 31},
        {"kind": "merger"},
    ]
    for change in refused:
        r = client.post("/api/analytics/corporate-actions", json={**good, **change})
        assert r.status_code in (400, 422), (change, r.status_code, r.text)
        assert client.get("/api/analytics/holdings").json() == held, change
        assert client.get("/api/analytics/summary").json() == summary, change
    r = client.post("/api/analytics/corporate-actions", json={**good, "ratio_new": 1e-300, "ratio_old": 1000000})
    assert r.status_code == 422 and [e["loc"] for e in r.json()["detail"]] == [["body", "ratio_new"],
                                                                               ["body", "ratio_old"]], r.text
    r = client.post("/api/analytics/corporate-actions", json={**good, "ratio_new": 1.5})
    assert r.status_code == 400 and "whole number from 1 to 1000" in r.json()["detail"], r.text
    r = client.post("/api/analytics/corporate-actions", json={**good, "ex_date": "9999-12-31"})
    assert r.status_code == 400 and "after today" in r.json()["detail"], r.text
    r = client.post("/api/analytics/corporate-actions", json={**good, "symbol": "ITC;DROP"})
    assert r.status_code == 400 and "NSE trading symbol" in r.json()["detail"] and ";" not in r.json()["detail"]


def test_splits_bonuses_and_consolidations_within_range_still_apply(client: Any) -> None:
    """A 1:10 split (10 new for 1), a 1:1 bonus, a 10:1 consolidation (1 new for 10), at the ends of the
    range (1000:1, and an ex-date of today, IST), and a lower-case symbol with spaces around it."""
    from datetime import datetime

    from domain.market_hours import IST

    upload(client, [trade("SPL", "2024-01-10", "buy", 10, 1000.0, "1"),
                    trade("BON", "2024-01-10", "buy", 4, 800.0, "2"),
                    trade("CON", "2024-01-10", "buy", 100, 5.0, "3"),
                    trade("BIG", "2024-01-10", "buy", 1, 5000.0, "4"),
                    trade("NOW", "2024-01-10", "buy", 3, 90.0, "5")])
    today = datetime.now(IST).date().isoformat()
    for body in ({"symbol": "SPL", "ex_date": "2024-03-01", "kind": "split", "ratio_new": 10, "ratio_old": 1},
                 {"symbol": "BON", "ex_date": "2024-02-01", "kind": "bonus", "ratio_new": 1, "ratio_old": 1},
                 {"symbol": "CON", "ex_date": "2024-02-01", "kind": "split", "ratio_new": 1, "ratio_old": 10},
                 {"symbol": "BIG", "ex_date": "1990-01-01", "kind": "split", "ratio_new": 1000, "ratio_old": 1},
                 {"symbol": " now ", "ex_date": today, "kind": "bonus", "ratio_new": 2, "ratio_old": 1}):
        r = client.post("/api/analytics/corporate-actions", json=body)
        assert r.status_code == 201 and r.json()["recorded"] is True, (body, r.text)
    held = {h["symbol"]: h for h in client.get("/api/analytics/holdings").json()}
    assert {s: (h["quantity"], h["avg_cost"]) for s, h in held.items()} == {
        "SPL": (100, 100.0), "BON": (8, 400.0), "CON": (10, 50.0), "BIG": (1, 5000.0), "NOW": (9, 30.0)}
    # BIG's 1990 split came before its 2024 trade: nothing to adjust
    assert client.get("/api/analytics/summary").json()["invested"] == 10000.0 + 3200.0 + 500.0 + 5000.0 + 270.0


def test_real_holdings_are_never_marked_at_synthetic_demo_prices(client: Any) -> None:
    data_dir = Path(client.platform.settings.data_dir)
    store = BarStore(data_dir)
    generate(store, custom_universe(["TCS", "INFY"], load_universe("nifty_50")), "2024-01-01", "2024-03-29", seed=3)
    demo_tcs = store.last_bars(["TCS"])["TCS"]["close"]
    upload(client, [trade("TCS", "2024-01-10", "buy", 2, 3800.0, "1")])
    [h] = client.get("/api/analytics/holdings").json()
    assert abs(demo_tcs - 3800.0) > 1.0  # the demo price is something else
    assert (h["last_price"], h["mark_source"], h["marked"]) == (3800.0, "last_trade", True)
    s = client.get("/api/analytics/summary").json()
    assert s["current_value"] == 7600.0
    # real bars imported for TCS now value it, and say so
    csv = data_dir / "tcs.csv"
    csv.write_text("symbol,date,open,high,low,close,volume\nTCS,2024-04-01,3900,3950,3890,3925.5,1000\n")
    report = import_csv(store, [csv])
    assert not report.rejected, report.rejected
    [h] = client.get("/api/analytics/holdings").json()
    assert (h["last_price"], h["mark_source"], h["mark_date"]) == (3925.5, "imported_bars", "2024-04-01")


def test_demo_days_stored_after_an_imported_bar_never_value_a_holding(client: Any) -> None:
    """The demo history runs to today (and `sim advance` goes past it): a real bar imported for an earlier day
    values the holding at that day's close, not at a later synthetic one labelled as imported."""
    data_dir = Path(client.platform.settings.data_dir)
    store = BarStore(data_dir)
    generate(store, custom_universe(["TCS", "INFY"], load_universe("nifty_50")), "2024-01-01", "2024-06-28", seed=3)
    demo_last = store.last_bars(["TCS"])["TCS"]
    upload(client, [trade("TCS", "2024-01-10", "buy", 2, 3800.0, "1")])
    csv = data_dir / "tcs.csv"
    csv.write_text("symbol,date,open,high,low,close,volume\nTCS,2024-03-28,3900,3950,3890,3925.5,1000\n"
                   "TCS,2024-04-01,3930,3990,3920,3977.25,1200\n")
    assert not import_csv(store, [csv]).rejected
    assert abs(demo_last["close"] - 3977.25) > 1.0 and str(demo_last["date"]) == "2024-06-28"
    [h] = client.get("/api/analytics/holdings").json()
    assert (h["last_price"], h["mark_source"], h["mark_date"]) == (3977.25, "imported_bars", "2024-04-01")
    assert client.get("/api/analytics/summary").json()["current_value"] == 7954.5
    # importing a later real bar moves the mark on
    csv.write_text("symbol,date,open,high,low,close,volume\nTCS,2024-05-02,3990,4010,3980,4001.0,900\n")
    assert not import_csv(store, [csv]).rejected
    [h] = client.get("/api/analytics/holdings").json()
    assert (h["last_price"], h["mark_date"]) == (4001.0, "2024-05-02")


def test_oversells_are_reported_in_the_import_and_in_analytics(client: Any) -> None:
    report = upload(client, [trade("OVR", "2024-01-10", "buy", 100, 10.0, "1"),
                             trade("OVR", "2024-01-11", "sell", 40, 11.0, "2"),
                             trade("OVR", "2024-01-12", "sell", 500, 12.0, "3")])
    assert report["imported"] == 3
    u = report["unmatched_sells"]
    assert (u["count"], u["quantity"]) == (1, 440.0)
    assert u["sells"] == [{"symbol": "OVR", "trade_date": "2024-01-12", "trade_id": "3", "quantity": 440.0}]
    s = client.get("/api/analytics/summary").json()
    assert (s["unmatched_sells"]["count"], s["unmatched_sells"]["quantity"]) == (1, 440.0)
    assert s["unmatched_sells"]["sells"][0] == {"symbol": "OVR", "trade_id": "3", "sell_date": "2024-01-12",
                                                "quantity": 440.0}
    # P&L counts the 100 shares matched, and says nothing was dropped silently
    [row] = client.get("/api/analytics/pnl", params={"group_by": "symbol"}).json()
    assert row["quantity"] == 100.0


def test_one_scope_rule_for_every_analytics_read(client: Any) -> None:
    """Every analytics read takes `source` with the same default (the broker account); the summary and
    the P&L groupings agree on it."""
    upload(client, [trade("SCP", "2024-01-10", "buy", 10, 100.0, "1"),
                    trade("SCP", "2024-02-10", "sell", 10, 110.0, "2")])
    s = client.get("/api/analytics/summary").json()
    by_symbol = client.get("/api/analytics/pnl", params={"group_by": "symbol"}).json()
    by_strategy = client.get("/api/analytics/pnl", params={"group_by": "strategy"}).json()
    assert s["source"] == "imported"
    assert s["realized_pnl"] == sum(r["realized_pnl"] for r in by_symbol) == sum(r["realized_pnl"] for r in by_strategy)
    assert client.get("/api/analytics/summary", params={"source": "broker"}).json()["realized_pnl"] == 100.0
    assert client.get("/api/analytics/summary", params={"source": "paper"}).json()["realized_pnl"] == 0.0
    assert client.get("/api/analytics/pnl", params={"group_by": "symbol", "source": "paper"}).json() == []
    assert client.get("/api/analytics/trades", params={"source": "all"}).headers["X-Total-Count"] == "2"
