"""Tradebook, ledger and CAS uploads over HTTP, and the analytics a user reads afterwards, pinned to golden
numbers worked out by hand below (on SQLite and on Postgres)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from api.analytics_access import app_analytics_store
from tests.support.brokerfiles import cams_pdf, ledger_xlsx, nsdl_pdf, trade, tradebook_csv, tradebook_xlsx

# INFY: two buys, a sell executed as two fills of one order (split rows), a later partial sell.
#   B1 2024-01-10 buy 10 @ 1500.00; B2 2024-02-12 buy 5 @ 1600.00
#   S1 2024-03-15 sell 7 + 5 @ 1700.00 -> 10 from B1 (+2000.00) and 2 from B2 (+200.00) = +2200.00
#   S2 2024-05-20 sell 2 @ 1550.50    -> 2 from B2: 2 x -49.50 = -99.00;  open: 1 @ 1600.00
# TCS: an old lot, then a same-day buy and sell (intraday: matched with each other, not the old lot)
#   2023-01-05 buy 2 @ 3300.00; 2024-04-02 buy 3 @ 3800.00 and sell 3 @ 3850.25 -> +150.75 intraday
#   left open, 2 @ 3300.00
# RELIANCE: bought 10 @ 2500.00 on 2024-01-05, split 2:1 ex 2024-02-01 (20 @ 1250.00), sold 20 @ 1300.00 on
#   2024-02-10 -> +1000.00
INFY = [
    trade("INFY", "2024-01-10", "buy", 10, 1500.00, "1001"),
    trade("INFY", "2024-02-12", "buy", 5, 1600.00, "1002"),
    trade("INFY", "2024-03-15", "sell", 7, 1700.00, "1003", time="11:00:00", order_id="9003"),
    trade("INFY", "2024-03-15", "sell", 5, 1700.00, "1004", time="11:00:01", order_id="9003"),
    trade("INFY", "2024-05-20", "sell", 2, 1550.50, "1005"),
]
TCS = [
    trade("TCS", "2023-01-05", "buy", 2, 3300.00, "2001"),
    trade("TCS", "2024-04-02", "buy", 3, 3800.00, "2002", time="09:30:00"),
    trade("TCS", "2024-04-02", "sell", 3, 3850.25, "2003", time="14:00:00"),
]
RELIANCE = [
    trade("RELIANCE", "2024-01-05", "buy", 10, 2500.00, "3001"),
    trade("RELIANCE", "2024-02-10", "sell", 20, 1300.00, "3002"),
]


def upload(client: Any, files: list[tuple[str, bytes]], path: str = "tradebook", field: str = "files[]",
           **data: str) -> Any:
    return client.post(f"/api/uploads/{path}", files=[(field, (name, body)) for name, body in files], data=data)


@pytest.fixture
def client(api_factory: Any, database_url: str) -> Any:
    c = api_factory(database_url)
    c.login()
    return c


def test_an_import_builds_the_analytics_snapshot_before_anyone_asks(client: Any) -> None:
    """The snapshot (FIFO over every trade) is built right after the import's response, not by the
    first analytics read; a re-upload that imports nothing leaves it as it is."""
    store = app_analytics_store(client.app)
    account = client.get("/api/auth/me").json()["id"]
    assert store._current(account) is None
    assert upload(client, [("tb.csv", tradebook_csv(INFY))]).json()["imported"] == len(INFY)
    built = store._current(account)
    assert built is not None  # no analytics read happened: the upload's background task built it
    assert upload(client, [("tb.csv", tradebook_csv(INFY))]).json()["imported"] == 0
    assert store._current(account) == built
    assert client.get("/api/analytics/summary").json()["realized_pnl"] == 2101.0  # INFY, as in the golden test below


def test_snapshots_of_an_older_format_are_rebuilt_not_read(client: Any, monkeypatch: Any) -> None:
    """After an upgrade that changes what a snapshot holds (a new table, charges computed differently),
    the snapshots built before are not served: the first read builds the account's anew."""
    from infra.analytics import store as analytics_store

    store = app_analytics_store(client.app)
    account = client.get("/api/auth/me").json()["id"]
    upload(client, [("tb.csv", tradebook_csv(INFY))])
    old = store._current(account)
    assert old is not None
    monkeypatch.setattr(analytics_store, "SNAPSHOT_FORMAT", analytics_store.SNAPSHOT_FORMAT + 1)
    assert store._current(account) is None
    assert client.get("/api/analytics/summary").json()["realized_pnl"] == 2101.0
    new = store._current(account)
    assert new is not None and new[1] != old[1]
    assert not old[1].exists() and not old[1].parent.exists()  # the older format's folder is gone
    legacy = store.root / str(account) / "12"  # format 1 lay right under the root
    legacy.mkdir(parents=True)
    assert upload(client, [("tb2.csv", tradebook_csv(TCS[:1]))]).json()["imported"] == 1
    client.get("/api/analytics/summary")
    assert not legacy.parent.exists() and store._current(account) is not None


def test_tradebook_golden_pnl_holdings_and_reupload_changes_nothing(client: Any) -> None:
    ugly = tradebook_xlsx(INFY + TCS[:1], preamble=14, footer=[[], ["Total", None, None, None, None, None, None]])
    plain = tradebook_csv(TCS + RELIANCE + INFY[:1])  # INFY 1001 is in both files: one duplicate
    r = client.post("/api/analytics/corporate-actions",
                    json={"symbol": "RELIANCE", "ex_date": "2024-02-01", "kind": "split", "ratio_new": 2,
                          "ratio_old": 1})
    assert r.status_code == 201, r.text
    r = upload(client, [("tradebook-AB1234-EQ.xlsx", ugly), ("tradebook-AB1234-EQ.csv", plain)])
    assert r.status_code == 200, r.text
    report = r.json()
    assert (report["rows_read"], report["imported"], report["duplicates"], report["rejected"]) == (12, 10, 2, [])
    assert report["per_file"] == {"tradebook-AB1234-EQ.xlsx": 6, "tradebook-AB1234-EQ.csv": 4}

    by_month = client.get("/api/analytics/pnl", params={"group_by": "month"}).json()
    assert [(g["month"], g["realized_pnl"], g["trades"]) for g in by_month] == [
        ("2024-02", 1000.00, 1), ("2024-03", 2200.00, 2), ("2024-04", 150.75, 1), ("2024-05", -99.00, 1)]
    by_symbol = {g["symbol"]: g["realized_pnl"] for g in client.get("/api/analytics/pnl",
                                                                      params={"group_by": "symbol"}).json()}
    assert by_symbol == {"INFY": 2101.00, "RELIANCE": 1000.00, "TCS": 150.75}
    assert [g["realized_pnl"] for g in client.get("/api/analytics/pnl", params={
        "group_by": "year", "from": "2024-03-01", "to": "2024-04-30"}).json()] == [2350.75]

    held = {h["symbol"]: h for h in client.get("/api/analytics/holdings").json()}
    assert set(held) == {"INFY", "TCS"}
    assert (held["INFY"]["quantity"], held["INFY"]["avg_cost"], held["INFY"]["invested"]) == (1, 1600.0, 1600.0)
    assert (held["TCS"]["quantity"], held["TCS"]["invested"]) == (2, 6600.0)
    assert [lot["buy_date"] for lot in held["TCS"]["lots"]] == ["2023-01-05"]  # the intraday sell left it alone
    # marks: the last traded price (no market data here)
    assert (held["INFY"]["last_price"], held["INFY"]["current_value"], held["INFY"]["unrealized_pnl"]) == (
        1550.5, 1550.5, -49.5)

    journal = client.get("/api/analytics/trades", params={"symbol": "INFY", "limit": 10})
    assert journal.headers["X-Total-Count"] == "5"
    rows = {t["trade_id"]: t for t in journal.json()}
    # charges (NSE 0.00325 % from 2023-04-01 to 2024-09-30; each component half-up to the paisa):
    # B1 (2024-01-10, 15,000): STT 15 + NSE 0.4875 -> 0.49 + SEBI 0.015 -> 0.02 + stamp 2.25
    # + GST 18 % x 0.51 = 0.0918 -> 0.09 = 17.85
    assert rows["1001"]["charges"] == 17.85
    # the two fills of one sell order pay the DP charge (15.93 before Oct 2024) once:
    # 7 x 1700: 11.90 + 0.39 + 0.01 + GST 0.07 + DP 15.93 = 28.30; 5 x 1700: 8.50 + 0.28 + 0.01 + 0.05 = 8.84
    assert (rows["1003"]["charges"], rows["1004"]["charges"]) == (28.30, 8.84)
    assert rows["1005"]["realized_pnl"] == -99.0
    # TCS bought and sold the same day (2024-04-02) is charged as intraday, as Zerodha does:
    # buy 3 x 3800 = 11,400: brokerage min(0.03 %, 20) 3.42 + NSE 0.3705 -> 0.37 + SEBI 0.01
    #   + stamp 0.003 % 0.342 -> 0.34 + GST 18 % x 3.80 = 0.684 -> 0.68 = 4.82 (delivery rates: ~13.8)
    # sell 3 x 3850.25 = 11,550.75: brokerage 3.465225 -> 3.47 + STT 0.025 % 2.8876875 -> 2.89
    #   + NSE 0.375... -> 0.38 + SEBI 0.01 + GST 18 % x 3.86 = 0.6948 -> 0.69 = 7.44 (no DP charge)
    tcs = {t["trade_id"]: t for t in client.get("/api/analytics/trades", params={"symbol": "TCS"}).json()}
    assert (tcs["2002"]["charges"], tcs["2003"]["charges"]) == (4.82, 7.44)

    summary = client.get("/api/analytics/summary").json()
    assert summary["realized_pnl"] == 3251.75
    assert (summary["invested"], summary["current_value"], summary["unrealized_pnl"]) == (8200.0, 9251.0, 1051.0)
    assert summary["closed_trades"] == 5 and summary["win_rate"] == 80.0

    again = upload(client, [("tradebook-AB1234-EQ.xlsx", ugly), ("tradebook-AB1234-EQ.csv", plain)]).json()
    assert (again["imported"], again["duplicates"]) == (0, 12)
    assert client.get("/api/analytics/summary").json() == summary
    assert client.get("/api/analytics/pnl", params={"group_by": "month"}).json() == by_month


def test_ledger_cash_flows_give_xirr(client: Any) -> None:
    """100,000 added on 2023-05-21; a year later (2024-05-20, the latest mark) the account holds INFY worth
    1,550.50 and 109,449.50 cash: 111,000 -> XIRR exactly 11.00 %."""
    upload(client, [("tb.xlsx", tradebook_xlsx(INFY))])
    ledger = ledger_xlsx([
        ["Opening Balance", None, None, None, None, None, 0],
        ["Funds added using UPI", "2023-05-21", "NSE-EQ - Z", "Bank Receipts", 0, 100000, 100000],
        ["DP Charges for Sale of INFY on 15/03/2024", "2024-03-16", "NSE-EQ - Z", "Journal Entry", 15.93, 0,
         99984.07],
        ["Net settlement for Equity with settlement number: 2024055", "2024-03-18", "NSE-EQ - Z", "Book Voucher",
         0, 9465.43, 109449.50],
        ["Closing Balance", None, None, None, None, None, 109449.50],
    ])
    r = upload(client, [("ledger.xlsx", ledger)], path="ledger", field="file")
    assert r.status_code == 200, r.text
    rep = r.json()
    assert (rep["imported"], rep["duplicates"], rep["closing_balance"]) == (3, 0, 109449.5)
    assert rep["categories"] == {"funds_added": 1, "dp_charges": 1, "settlement": 1}
    s = client.get("/api/analytics/summary").json()
    assert s["xirr"] == 11.0 and s["xirr_as_of"] == "2024-05-20"
    assert s["ledger_charges"] == 15.93
    assert upload(client, [("ledger.xlsx", ledger)], path="ledger", field="file").json()["imported"] == 0


def test_cas_mutual_funds_and_demat_holdings(client: Any) -> None:
    cams = cams_pdf([{"folio": "12345678 / 90", "amc": "ICICI Prudential Mutual Fund", "schemes": [{
        "isin": "INF109K01Z48", "name": "ICICI Prudential Bluechip Fund - Direct Plan - Growth",
        "txns": [["01-Apr-2024", "SIP Purchase - Instalment 1/12", "4,999.75", "49.998", "100.0000", "49.998"],
                 ["01-Apr-2024", "*** Stamp Duty ***", "0.25", "", "", ""],
                 ["02-May-2024", "Redemption", "(1,000.00)", "(9.000)", "111.1111", "40.998"]],
        "valuation": ("40.998", "31-Mar-2025", "120.0000", "4,099.80", "31-Mar-2025", "4,919.76")}]}],
        password="Pan1234")
    wrong = upload(client, [("cas.pdf", cams)], path="cas", field="file", password="nope")
    assert wrong.status_code == 400 and "wrong password" in wrong.json()["detail"]
    r = upload(client, [("cas.pdf", cams)], path="cas", field="file", password="Pan1234")
    assert r.status_code == 200, r.text
    rep = r.json()
    assert (rep["file_type"], rep["imported"], rep["valuations"]) == ("CAMS", 3, 1)
    again = upload(client, [("cas.pdf", cams)], path="cas", field="file", password="Pan1234").json()
    assert (again["imported"], again["duplicates"], again["statement_imported"]) == (0, 3, False)
    nsdl = nsdl_pdf([["INE009A01021", "INFY - INFOSYS LIMITED", "6", "1,650.00", "9,900.00"]])
    assert upload(client, [("nsdl.pdf", nsdl)], path="cas", field="file").json()["holdings"] == 1
    upload(client, [("tb.xlsx", tradebook_xlsx(INFY))])

    held = client.get("/api/analytics/holdings").json()
    fund = next(h for h in held if h["asset_class"] == "mutual_fund")
    assert (fund["quantity"], fund["invested"], fund["current_value"], fund["unrealized_pnl"]) == (
        40.998, 4099.8, 4919.76, 819.96)
    assert (fund["mark_source"], fund["marked"]) == ("cas_valuation", True)  # every row has the same shape
    infy = next(h for h in held if h["symbol"] == "INFY")
    # the demat statement (2025-03-31) is a newer mark than the last trade (2024-05-20)
    assert (infy["last_price"], infy["mark_source"], infy["current_value"]) == (1650.0, "demat_statement", 1650.0)
    s = client.get("/api/analytics/summary").json()
    assert s["mutual_funds"] == {"invested": 4099.8, "current_value": 4919.76, "unrealized_pnl": 819.96,
                                 "holdings": 1, "unmarked": []}
    assert (s["invested"], s["current_value"]) == (5699.8, 6569.76)


def test_cas_with_a_date_that_does_not_exist_is_unreadable_not_a_resource_limit(client: Any) -> None:
    infy = ["INE009A01021", "INFY - INFOSYS LIMITED", "6", "1,650.00", "9,900.00"]
    for as_on in ("31-Feb-2024", "31-Xyz-2024"):
        r = upload(client, [("nsdl.pdf", nsdl_pdf([infy], as_on=as_on))], path="cas", field="file")
        assert r.status_code == 400, r.text
        detail = r.json()["detail"]
        assert detail == ("nsdl.pdf: page 1: the statement period holds a date that does not exist; "
                          "nothing was imported")
    cams = cams_pdf([{"folio": "1 / 2", "amc": "ICICI Prudential Mutual Fund", "schemes": [{
        "isin": "INF109K01Z48", "name": "ICICI Prudential Bluechip Fund",
        "txns": [["30-Feb-2024", "Purchase", "1,000.00", "10.000", "100.0000", "10.000"]],
        "valuation": ("10.000", "31-Mar-2025", "120.0000", "1,000.00", "31-Mar-2025", "1,200.00")}]}])
    r = upload(client, [("cas.pdf", cams)], path="cas", field="file")
    assert r.status_code == 400, r.text
    assert "a transaction holds a date that does not exist" in r.json()["detail"]
    assert "30-Feb" not in r.json()["detail"]
    assert client.get("/api/uploads/batches").json() == []


@pytest.mark.parametrize(("rows", "reason"), [
    ([["INE009A01021", "INFY - INFOSYS LIMITED", "10", "1,650.00", "16,500.00"],
      ["INE009A01021", "INFY - INFOSYS LIMITED", "-99999999999999999999", "1,650.00", "0.00"]],
     "page 1, holding 2 (ISIN INE009A01021): the quantity is negative"),
    ([["INE467B01029", "TCS - TATA CONSULTANCY SERVICES", "(5)", "3,900.00", "19,500.00"]],
     "page 1, holding 1 (ISIN INE467B01029): the quantity is negative"),
    ([["INE009A01021", "INFY - INFOSYS LIMITED", "9" * 400, "1,650.00", "9,900.00"]],
     "page 1, holding 1 (ISIN INE009A01021): the quantity is not a finite number"),
    ([["INE009A01021", "INFY - INFOSYS LIMITED", "5,000,000,000,000", "1,650.00", "9,900.00"]],
     "page 1, holding 1 (ISIN INE009A01021): the quantity is beyond any plausible holding"),
    ([["INE009A01021", "INFY - INFOSYS LIMITED", "6", "(1,650.00)", "9,900.00"]],
     "page 1, holding 1 (ISIN INE009A01021): the price is negative"),
    ([["INE009A01021", "INFY - INFOSYS LIMITED", "6", "1,650.00", "9,900.00"],
      ["INE009A01021", "INFY - INFOSYS LIMITED", "10", "1,650.00", "16,500.00"]],
     "page 1, holding 2 (ISIN INE009A01021): the ISIN is listed twice in one demat account with different "
     "quantities (also page 1, holding 1)"),
    ([["NSDL Demat Account"], ["DP Id: IN300126 Client Id: 11111111"],
      ["INE009A01021", "INFY - INFOSYS LIMITED", "6", "1,650.00", "9,900.00"],
      ["INE009A01021", "INFY - INFOSYS LIMITED", "10", "1,650.00", "16,500.00"]],
     "page 1, holding 2 (ISIN INE009A01021): the ISIN is listed twice in one demat account"),
], ids=["duplicate-and-negative", "parentheses", "infinite", "implausible", "negative-price", "conflict",
        "conflict-in-an-account"])
def test_cas_demat_holdings_that_cannot_be_true_refuse_the_statement(client: Any, rows: list[list[str]],
                                                                      reason: str) -> None:
    r = upload(client, [("nsdl.pdf", nsdl_pdf(rows))], path="cas", field="file")
    assert r.status_code == 400, r.text
    detail = r.json()["detail"]
    assert detail.startswith(f"nsdl.pdf: {reason}") and detail.endswith("nothing was imported"), detail
    assert "999" not in detail and "(5)" not in detail and "INFOSYS" not in detail  # never the file's text
    assert client.get("/api/uploads/batches").json() == []


def test_cas_same_isin_in_two_demat_accounts_is_two_holdings(client: Any) -> None:
    """One CAS lists every demat account of the PAN: an ISIN held in two accounts is two holdings, and a row
    repeated in one account (the same quantity) is one."""
    infy = ["INE009A01021", "INFY - INFOSYS LIMITED", "6", "1,650.00", "9,900.00"]
    pdf = nsdl_pdf([["NSDL Demat Account"], ["DP Id: IN300126 Client Id: 11111111"], infy, infy,
                    ["CDSL Demat Account"], ["DP Id: 12081600 Client Id: 22222222"],
                    ["INE009A01021", "INFY - INFOSYS LIMITED", "10", "1,650.00", "16,500.00"]])
    r = upload(client, [("nsdl.pdf", pdf)], path="cas", field="file")
    assert r.status_code == 200, r.text
    assert (r.json()["holdings"], r.json()["statement_imported"]) == (2, True)


@pytest.mark.parametrize(("valuation", "reason"), [
    (("(40.998)", "31-Mar-2025", "120.0000", "4,099.80", "31-Mar-2025", "4,919.76"),
     "the closing unit balance is negative"),
    (("40.998", "31-Mar-2025", "9" * 400, "4,099.80", "31-Mar-2025", "4,919.76"), "the NAV is not a finite number"),
    (("40.998", "31-Mar-2025", "120.0000", "4,099.80", "31-Mar-2025", "(4,919.76)"),
     "the market value is negative"),
], ids=["units", "nav", "value"])
def test_cas_mutual_fund_valuations_that_cannot_be_true_refuse_the_statement(
        client: Any, valuation: tuple[str, ...], reason: str) -> None:
    cams = cams_pdf([{"folio": "12345678 / 90", "amc": "ICICI Prudential Mutual Fund", "schemes": [{
        "isin": "INF109K01Z48", "name": "ICICI Prudential Bluechip Fund - Direct Plan - Growth",
        "txns": [["01-Apr-2024", "SIP Purchase - Instalment 1/12", "4,999.75", "49.998", "100.0000", "49.998"]],
        "valuation": valuation}]}])
    r = upload(client, [("cas.pdf", cams)], path="cas", field="file")
    assert r.status_code == 400, r.text
    detail = r.json()["detail"]
    assert detail == f"cas.pdf: page 1: the valuation of INF109K01Z48: {reason}; nothing was imported"
    assert client.get("/api/uploads/batches").json() == []


def test_malformed_row_imports_nothing_and_names_the_row(client: Any) -> None:
    bad = [*INFY[:2], trade("INFY", "2024-13-45", "buy", 1, 10, "1009")]
    r = upload(client, [("good.xlsx", tradebook_xlsx(TCS)), ("bad.xlsx", tradebook_xlsx(bad, preamble=3))])
    assert r.status_code == 400
    assert "bad.xlsx row 7" in r.json()["detail"] and "not a date" in r.json()["detail"]
    neg = [trade("INFY", "2024-01-10", "buy", -5, 1500, "1")]
    assert "row 10: quantity" in upload(client, [("n.xlsx", tradebook_xlsx(neg))]).json()["detail"]
    assert client.get("/api/analytics/trades").json() == []
    assert client.get("/api/uploads/batches").json() == []
    fo = [*TCS, trade("NIFTY24APRFUT", "2024-04-02", "buy", 50, 22000, "7", segment="FO")]
    rep = upload(client, [("fo.csv", tradebook_csv(fo))]).json()
    assert rep["imported"] == 3
    assert rep["rejected"] == [{"file": "fo.csv", "row": 5, "reason": "segment FO: only equity trades are imported"}]


def test_row_errors_name_the_column_and_why_never_the_value(client: Any) -> None:
    """Errors never echo input: a bad cell is named by its file, row and column, with what is expected."""
    ok = trade("TCS", "2024-01-02", "buy", 10, 3500.0, "T1")
    cases = {  # column index in the file -> (bad value, the answer)
        8: ("-10", "quantity is not a positive number"),
        9: ("12abc", "price is not a number"),
        2: ("2024-13-45", "trade_date is not a date"),
        6: ("hodl", "trade_type is neither buy nor sell"),
        12: ("2024-01-02Tnoon", "order_execution_time is not a timestamp"),
    }
    for col, (bad, why) in cases.items():
        row = list(ok)
        row[col] = bad
        r = upload(client, [("tb.csv", tradebook_csv([ok, row]))])
        assert r.status_code == 400, r.text
        detail = r.json()["detail"]
        assert detail.startswith(f"tb.csv row 3: {why}") and detail.endswith("nothing was imported"), detail
        assert bad not in detail, detail
    assert client.get("/api/uploads/batches").json() == []


def test_a_trade_id_reused_for_a_different_trade_refuses_the_whole_upload(client: Any) -> None:
    """The same trade twice (overlapping exports, a re-upload, a CSV and an XLSX of it) is a duplicate; the same
    trade id on the same trade date with another symbol, side, quantity or price is refused, naming the file,
    the row and the trade id (not the other cells), and nothing is imported."""
    t1 = trade("TCS", "2024-01-02", "buy", 10, 3500.0, "T1")
    r = upload(client, [("a.csv", tradebook_csv([t1, t1]))])
    assert r.status_code == 200, r.text
    assert (r.json()["imported"], r.json()["duplicates"]) == (1, 1)

    def refused(files: list[tuple[str, bytes]]) -> str:
        r = upload(client, files)
        assert r.status_code == 400, r.text
        return str(r.json()["detail"])

    # within one file: the brief's case, TCS buy 10 @ 3500 and TCS buy 99 @ 3500, both T2
    t2 = trade("TCS", "2024-01-02", "buy", 10, 3500.0, "T2")
    detail = refused([("b.csv", tradebook_csv([t2, trade("TCS", "2024-01-02", "buy", 99, 3500.0, "T2")]))])
    assert detail.startswith("b.csv row 3: trade id T2 ") and "row 2 of b.csv" in detail, detail
    assert "quantity differs" in detail and "99" not in detail and "TCS" not in detail, detail
    # across the files of one upload: the side differs
    detail = refused([("c.csv", tradebook_csv([t2])),
                      ("d.csv", tradebook_csv([trade("TCS", "2024-01-02", "sell", 10, 3500.0, "T2")]))])
    assert detail.startswith("d.csv row 2: trade id T2 ") and "row 2 of c.csv" in detail and "side" in detail
    # against a trade imported before: the price, or the symbol and the quantity, differ
    detail = refused([("e.csv", tradebook_csv([t2, trade("TCS", "2024-01-02", "buy", 10, 3501.5, "T1")]))])
    assert detail.startswith("e.csv row 3: trade id T1 ") and "imported earlier" in detail, detail
    assert "price differs" in detail and "3501" not in detail, detail
    detail = refused([("f.xlsx", tradebook_xlsx([trade("INFY", "2024-01-02", "buy", 7, 3500.0, "T1")]))])
    assert "trade id T1" in detail and "symbol, quantity differ" in detail and "INFY" not in detail, detail
    # a trade id that is not plain text is not repeated either
    odd = "T\u202e9"
    detail = refused([("g.csv", tradebook_csv([trade("TCS", "2024-01-02", "buy", 1, 1.0, odd),
                                                trade("TCS", "2024-01-02", "buy", 2, 1.0, odd)]))])
    assert detail.startswith("g.csv row 3: its trade id ") and odd not in detail, detail

    journal = client.get("/api/analytics/trades").json()
    assert [(t["trade_id"], t["quantity"], t["price"]) for t in journal] == [("T1", 10, 3500.0)]
    assert len(client.get("/api/uploads/batches").json()) == 1  # the refused uploads recorded nothing
    # the same trade again, from an XLSX and from a CSV with another execution time: duplicates
    again = upload(client, [("h.xlsx", tradebook_xlsx([t1])),
                            ("i.csv", tradebook_csv([trade("TCS", "2024-01-02", "buy", 10, 3500.0, "T1",
                                                           time="10:00:01")]))]).json()
    assert (again["imported"], again["duplicates"]) == (0, 2)
    # trade ids are the exchange's per trading day: T1 on another day is another trade
    other_day = upload(client, [("j.csv", tradebook_csv([trade("TCS", "2024-01-03", "sell", 4, 3600.0, "T1")]))])
    assert other_day.status_code == 200 and other_day.json()["imported"] == 1, other_day.text


def test_other_users_see_nothing_of_mine(api_factory: Any, database_url: str) -> None:
    me, other = api_factory(database_url), api_factory(database_url)
    me.login()
    other.login()
    upload(me, [("tb.xlsx", tradebook_xlsx(INFY))])
    assert other.get("/api/analytics/trades").json() == []
    assert other.get("/api/analytics/summary").json()["realized_pnl"] == 0
    # the same trade ids in another account are that account's own trades, not duplicates
    assert upload(other, [("tb.xlsx", tradebook_xlsx(INFY))]).json()["imported"] == 5


def test_analytics_query_is_read_only_sql_over_the_tables(client: Any) -> None:
    from infra.analytics.cli import run_query
    from infra.analytics.store import AnalyticsStore

    upload(client, [("tb.xlsx", tradebook_xlsx(INFY + TCS))])
    store = AnalyticsStore(client.platform.db, client.platform.settings.analytics_dir / "accounts")
    cols, rows = run_query(store, "SELECT symbol, sum(gross_pnl) AS pnl FROM realized GROUP BY symbol ORDER BY 1")
    assert cols == ["symbol", "pnl"] and rows == [("INFY", 2101.0), ("TCS", 150.75)]
    for sql in ("COPY trades TO 'x.csv'", "SELECT 1; DROP VIEW trades", "CREATE TABLE t AS SELECT 1"):
        with pytest.raises(SystemExit):
            run_query(store, sql)


def test_racing_uploads_import_each_trade_once(client: Any) -> None:
    """Two uploads of overlapping tradebooks both look at the store before either saves (held at a barrier):
    the store takes one; the other is refused on the trade days both wrote, retried, and reports the
    shared trades as duplicates. Every trade is in the journal once."""
    import threading

    from commands import imports_messages as im
    from commands.ports import CommandMeta
    from infra.imports.console import parse_tradebook

    me = client.get("/api/auth/me").json()["id"]
    bus = client.platform.bus
    files = {"a.csv": parse_tradebook("a.csv", tradebook_csv(INFY + TCS[:1])),  # 6 trades
             "b.csv": parse_tradebook("b.csv", tradebook_csv(INFY[2:] + TCS))}  # 6 trades, 4 of them in a.csv
    index, barrier, held = bus.deps.records, threading.Barrier(2, timeout=20), set()

    class Racing:
        def existing(self, ids: Any) -> Any:
            found = index.existing(ids)
            if threading.get_ident() not in held:  # first attempt: wait until the other upload looked too
                held.add(threading.get_ident())
                barrier.wait()
            return found

    reports: dict[str, dict[str, Any]] = {}
    waiter = client.app.state.read_your_writes

    def run(name: str) -> None:
        f = files[name]
        cmd = im.ImportTradebook(me, (name,), f.rows_read, tuple(f.trades))
        result = bus.handle(cmd, CommandMeta(actor=f"user:{me}", account_id=me))
        assert waiter.wait(result.touched_accounts, result.position, 30)
        reports[name] = result.value

    bus.deps.records = Racing()
    try:
        threads = [threading.Thread(target=run, args=(n,)) for n in files]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        bus.deps.records = index
    assert sorted((r["imported"], r["duplicates"]) for r in reports.values()) == [(2, 4), (6, 0)]
    journal = client.get("/api/analytics/trades", params={"limit": 50})
    assert journal.headers["X-Total-Count"] == "8"
    assert sorted(t["trade_id"] for t in journal.json()) == sorted(t[10] for t in INFY + TCS)


def test_xlsx_with_typed_cells_dates_times_and_numeric_ids(client: Any) -> None:
    """Exports saved again by Excel carry real date and time cells and numeric trade ids."""
    from datetime import date, datetime

    rows = [["INFY", "INE009A01021", date(2024, 1, 10), "NSE", "EQ", "EQ", "buy", False, 10, 1500.0, 1001,
             1300000001, datetime(2024, 1, 10, 9, 15, 2)],
            ["INFY", "INE009A01021", date(2024, 3, 15), "NSE", "EQ", "EQ", "sell", False, 4, 1700.0, 1002,
             1300000002, datetime(2024, 3, 15, 11, 0, 0)]]
    rep = upload(client, [("typed.xlsx", tradebook_xlsx(rows))]).json()
    assert (rep["imported"], rep["duplicates"], rep["rejected"]) == (2, 0, [])
    journal = client.get("/api/analytics/trades").json()
    assert [(t["trade_id"], t["trade_date"], t["executed_at"], t["quantity"]) for t in journal] == [
        ("1002", "2024-03-15", "2024-03-15T11:00:00", 4), ("1001", "2024-01-10", "2024-01-10T09:15:02", 10)]
    assert client.get("/api/analytics/pnl", params={"group_by": "month"}).json()[0]["realized_pnl"] == 800.0


def test_a_file_of_rejected_rows_lists_the_first_thousand_and_counts_all(client: Any) -> None:
    fo = [trade("NIFTY24APRFUT", "2024-04-02", "buy", 50, 22000, str(i), segment="FO") for i in range(1200)]
    rep = upload(client, [("fo.csv", tradebook_csv([*fo, *INFY[:1]]))]).json()
    assert (rep["rows_read"], rep["imported"], rep["rejected_count"], len(rep["rejected"])) == (1201, 1, 1200, 1000)
    assert rep["rejected"][0] == {"file": "fo.csv", "row": 2, "reason": "segment FO: only equity trades are imported"}


def test_a_cas_upload_still_arriving_holds_no_parse_slot(api_factory: Any) -> None:
    """The parse slots (TRADERTAPE_CAS_PARSES_AT_ONCE) bound the parses, not the uploads: a statement whose
    body is still trickling in (a slow line, or someone holding it open on purpose) keeps nobody waiting."""
    alice, bob = api_factory(cas_parses_at_once=1), api_factory()
    alice.login(), bob.login()
    boundary = "slowcas"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cas.pdf\"\r\n"
            "Content-Type: application/pdf\r\n\r\n%PDF-1.4 ").encode()
    tail = f"not really\r\n--{boundary}--\r\n".encode()

    async def scenario() -> tuple[int, int]:
        arrived, finish = asyncio.Event(), asyncio.Event()

        async def trickle() -> AsyncIterator[bytes]:
            yield head
            arrived.set()
            await finish.wait()
            yield tail

        def client(c: Any) -> httpx.AsyncClient:
            return httpx.AsyncClient(transport=httpx.ASGITransport(app=c.app), base_url="http://testserver",
                                     cookies=dict(c.cookies), headers={"X-Requested-With": "tradertape"})

        async with client(alice) as a, client(bob) as b:
            slow = asyncio.create_task(a.post("/api/uploads/cas", content=trickle(), headers={
                "content-type": f"multipart/form-data; boundary={boundary}"}))
            await arrived.wait()
            await asyncio.sleep(0.2)  # alice's request is in the endpoint, reading her body
            quick = await b.post("/api/uploads/cas", files=[("file", ("cas.pdf", b"%PDF-1.4 not really"))])
            finish.set()
            return quick.status_code, (await slow).status_code

    assert asyncio.run(scenario()) == (400, 400)  # both read (and found to be no CAS); neither a 429 "busy"
    assert alice.app.state.cas_slots.accounts == set()
