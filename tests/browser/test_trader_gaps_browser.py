"""What traders missed in the last review, as a trader sees it in Chromium: tables that scroll inside their card
on a 390-px phone, CSV exports (backtest trades, positions, the trade journal), a watchlist kept with the account,
SMA/EMA lines on the Market chart, and a bell that is drawn rather than a character from a missing font."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.conftest import App
from tests.support.brokerfiles import trade, tradebook_xlsx

USER = "gaps.trader@example.com"


@pytest.fixture(scope="module")
def api(app: App) -> requests.Session:
    return app.session(USER)


@pytest.fixture(scope="module")
def run(app: App, api: requests.Session) -> dict[str, Any]:
    sma = next(t for t in api.get(app.url + "/api/strategies", params={"is_template": True}).json()
               if t["base_model"] == "sma_crossover")
    r = api.post(app.url + "/api/backtest/run", json={
        "strategy_id": sma["id"], "universe": "nifty_50", "start_date": "2024-06-01", "end_date": "2026-06-30",
        "starting_capital": 1_000_000, "position_size_pct": 5, "max_positions": 20})
    assert r.status_code == 200, r.text
    body = dict(r.json())
    assert len(body["trades"]) > 50, "the run should have more trades than the table shows at first"
    return body


@pytest.fixture(scope="module")
def page(browser: Any, app: App, api: requests.Session) -> Any:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    ctx.add_cookies([{"name": c.name, "value": c.value or "", "url": app.url} for c in api.cookies])
    pg = ctx.new_page()
    yield pg
    ctx.close()


def saved_csv(page: Any, button: Any) -> list[list[str]]:
    with page.expect_download() as dl:
        button.click()
    path = dl.value.path()
    return list(csv.reader(io.StringIO(Path(path).read_text(encoding="utf-8-sig"))))


def test_wide_tables_scroll_inside_their_card_on_a_phone(browser: Any, app: App, api: requests.Session,
                                                          run: dict[str, Any]) -> None:
    ctx = browser.new_context(viewport={"width": 390, "height": 844})
    ctx.add_cookies([{"name": c.name, "value": c.value or "", "url": app.url} for c in api.cookies])
    pg = ctx.new_page()
    try:
        # (notification settings fit a phone now: test_notifications_browser.py checks every channel is on screen)
        wide = {f"/backtests/{run['id']}": "#trades", "/settings/notifications": None, "/imports": None, "/": None}
        for path, table in wide.items():
            pg.goto(app.url + path)
            expect(pg.get_by_role("heading", level=1)).to_be_visible()
            if table:
                expect(pg.locator(table).locator("tbody tr").first).to_be_visible()
            else:
                pg.wait_for_load_state("networkidle")
            # the page itself never scrolls sideways (topbar, forms, tables)
            width = pg.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
            assert width[0] <= width[1], f"{path} is {width[0]} px wide on a {width[1]} px phone"
            if table:
                box = pg.locator(table).locator("xpath=ancestor-or-self::*[contains(@class,'scroll-x')][1]") \
                    if table.startswith(".") else pg.locator(f"{table} .scroll-x")
                sizes = box.evaluate("(el) => [el.scrollWidth, el.clientWidth, el.getBoundingClientRect().right]")
                assert sizes[0] > sizes[1], f"{path}: the table fits, nothing to scroll"  # it scrolls in its card...
                assert sizes[2] <= 390  # ...and the card stays on the screen
                box.evaluate("(el) => { el.scrollLeft = el.scrollWidth; }")
                assert box.evaluate("(el) => el.scrollLeft") > 0
                assert pg.evaluate("window.scrollX") == 0
    finally:
        ctx.close()


def test_backtest_trades_export_as_csv_all_rows_with_raw_values(page: Any, app: App, run: dict[str, Any]) -> None:
    page.goto(app.url + f"/backtests/{run['id']}")
    expect(page.locator("#trades tbody tr")).to_have_count(50)  # the page shows 50 at first
    rows = saved_csv(page, page.get_by_role("button", name="Export Trades as CSV"))
    assert rows[0] == ["Symbol", "Sector", "Entry", "Entry ₹", "Exit", "Exit ₹", "Qty", "P&L", "P&L %", "Exit reason",
                       "Days"]
    assert len(rows) - 1 == len(run["trades"])  # every trade, not the 50 shown
    first = run["trades"][0]
    assert rows[1][0] == first["symbol"] and rows[1][2] == first["entry_date"]
    assert float(rows[1][6]) == first["quantity"] and float(rows[1][7]) == pytest.approx(first["pnl"])
    # filtered: only what the filter keeps
    symbol = first["symbol"]
    page.get_by_label("Filter Trades").fill(symbol)
    keys = ("symbol", "sector", "entry_date", "entry_price", "exit_date", "exit_price", "quantity", "pnl", "pnl_pct",
            "exit_reason", "holding_days")
    kept = [t for t in run["trades"] if any(symbol.lower() in str(t.get(k) or "").lower() for k in keys)]
    expect(page.locator("#trades caption")).to_contain_text(f"({len(kept)})")
    rows = saved_csv(page, page.get_by_role("button", name="Export Trades as CSV"))
    assert sorted(r[0] for r in rows[1:]) == sorted(t["symbol"] for t in kept)


def test_positions_and_the_trade_journal_export_as_csv(page: Any, app: App, api: requests.Session,
                                                       tmp_path: Path) -> None:
    pf = app.paper_portfolio(api, "Exported dips", positions=2)
    held = api.get(app.url + "/api/model/positions", params={"status": "open"}).json()
    page.goto(app.url + "/positions")
    expect(page.locator("#open-positions tbody tr")).to_have_count(len(held))
    rows = saved_csv(page, page.get_by_role("button", name="Export Open positions as CSV"))
    assert rows[0][:3] == ["Symbol", "Portfolio", "Qty"] and "Close" not in rows[0]
    assert sorted(r[0] for r in rows[1:]) == sorted(p["symbol"] for p in held)
    assert {r[1] for r in rows[1:]} == {pf["name"]}  # the portfolio's name, not its id
    by_symbol = {p["symbol"]: p for p in held}
    assert all(float(r[2]) == by_symbol[r[0]]["quantity"] for r in rows[1:])

    book = tmp_path / "tradebook.xlsx"
    book.write_bytes(tradebook_xlsx([trade("INFY", "2024-01-10", "buy", 100, 1500.0, "J1"),
                                     trade("INFY", "2024-03-12", "sell", 100, 1650.5, "J2")]))
    page.goto(app.url + "/imports")
    page.get_by_label("Choose files (.xlsx,.csv)").set_input_files(str(book))
    page.get_by_role("button", name="Import tradebooks").click()
    expect(page.locator("#import-report")).to_contain_text("2 imported")
    expect(page.locator("#journal tbody tr")).to_have_count(2)
    rows = saved_csv(page, page.get_by_role("button", name="Export Trade journal as CSV"))
    assert rows[0][:5] == ["Date", "Symbol", "Side", "Qty", "Price"]
    assert sorted((r[0], r[2], r[4]) for r in rows[1:]) == [("2024-01-10", "buy", "1500"),
                                                             ("2024-03-12", "sell", "1650.5")]


def test_a_watchlist_kept_in_this_browser_moves_to_the_account_once(page: Any, app: App,
                                                                     api: requests.Session) -> None:
    # an older version kept the list in localStorage per user: this user's moves to the account (and leaves the
    # browser); another person's list saved in the same browser is neither shown nor touched
    me = api.get(app.url + "/api/auth/me").json()
    mine, theirs = f"tt-watchlist:{me['id']}", f"tt-watchlist:{me['id'] + 1000}"
    assert api.get(app.url + "/api/watchlist").json()["saved"] is False
    page.goto(app.url + "/market")
    page.evaluate("([a, b]) => { localStorage.clear(); localStorage.setItem(a, JSON.stringify(['NSE:ZOMATO'])); "
                  "localStorage.setItem(b, JSON.stringify(['NSE:PAYTM'])); }", [mine, theirs])
    page.reload()
    watch = page.locator("#watchlist tbody tr")
    expect(watch).to_have_count(1)
    expect(watch.filter(has_text="NSE:ZOMATO")).to_have_count(1)
    expect(page.locator("#watch")).to_have_attribute("aria-busy", "false")
    assert api.get(app.url + "/api/watchlist").json()["symbols"] == ["NSE:ZOMATO"]
    assert page.evaluate("(key) => localStorage.getItem(key)", mine) is None
    assert page.evaluate("(key) => JSON.parse(localStorage.getItem(key))", theirs) == ["NSE:PAYTM"]
    add = page.get_by_role("form", name="Add to the watchlist")
    add.get_by_label("Symbol", exact=True).fill("tcs")
    add.get_by_role("button", name="Add").click()
    expect(watch.filter(has_text="NSE:TCS")).to_have_count(1)
    expect(page.locator("#watch")).to_have_attribute("aria-busy", "false")  # the account has kept it
    assert api.get(app.url + "/api/watchlist").json()["symbols"] == ["NSE:ZOMATO", "NSE:TCS"]


def test_sma_and_ema_lines_on_the_candles(page: Any, app: App, api: requests.Session) -> None:
    page.goto(app.url + "/market?symbol=RELIANCE")
    page.evaluate("localStorage.removeItem('tt-overlays')")
    page.reload()
    expect(page.locator("#candles .chart-box")).to_have_attribute("data-ready", "1")
    expect(page.locator("#overlay-legend")).to_have_count(0)
    # the bars the page charts: the last year of stored history
    last = api.get(app.url + "/api/market/coverage").json()["last"]
    bars = api.get(app.url + "/api/market/bars/RELIANCE",
                    params={"from": f"{int(last[:4]) - 1}{last[4:]}", "to": last}).json()
    closes = [b["close"] for b in bars]
    page.get_by_role("checkbox", name="SMA").check()
    page.get_by_label("SMA period (bars)").fill("10")
    page.get_by_label("SMA period (bars)").press("Enter")
    legend = page.locator("#overlay-legend")
    expect(legend.locator('[data-overlay="sma"]')).to_have_text(re.compile(r"^SMA 10: [\d,]+\.\d\d$"))
    assert shown(legend, "sma") == pytest.approx(sum(closes[-10:]) / 10, abs=0.006)
    page.get_by_role("checkbox", name="EMA").check()
    k, v = 2 / 51, sum(closes[:50]) / 50
    for c in closes[50:]:
        v = c * k + v * (1 - k)
    expect(legend.locator('[data-overlay="ema"]')).to_have_text(re.compile(r"^EMA 50: [\d,]+\.\d\d$"))
    assert shown(legend, "ema") == pytest.approx(v, abs=0.006)
    expect(page.locator("#candles .chart-box")).to_have_attribute("data-ready", "1")
    # kept for the next visit
    page.reload()
    expect(page.locator("#overlay-legend li")).to_have_count(2)
    page.get_by_role("checkbox", name="SMA").uncheck()
    expect(page.locator("#overlay-legend li")).to_have_count(1)


def shown(legend: Any, key: str) -> float:
    """The last value a legend entry shows ("SMA 10: 1,234.56" -> 1234.56)."""
    return float(legend.locator(f'[data-overlay="{key}"] .num').inner_text().replace(",", ""))


def test_the_bell_is_drawn_not_a_missing_glyph(page: Any, app: App) -> None:
    page.goto(app.url + "/")
    bell = page.get_by_role("link", name=re.compile("^Notifications"))
    expect(bell).to_be_visible()
    assert "\U0001F514" not in bell.inner_text()  # no emoji that needs a font the machine may lack
    icon = bell.locator("svg")
    expect(icon).to_be_visible()
    box = icon.bounding_box()
    assert box and box["width"] >= 16 and box["height"] >= 16
    # its strokes are painted in the text colour (visible in both themes)
    drawn = icon.evaluate("(svg) => [...svg.querySelectorAll('path')].reduce((n, p) => n + p.getTotalLength(), 0)")
    assert drawn > 40
    assert icon.evaluate("(svg) => getComputedStyle(svg).color") == page.evaluate(
        "getComputedStyle(document.body).color")


def test_nested_rule_groups_are_edited_in_the_form(page: Any, app: App, api: requests.Session) -> None:
    template = next(t for t in api.get(app.url + "/api/strategies", params={"is_template": True}).json()
                    if t["base_model"] == "v3_dip_buyer")
    fork = api.post(app.url + f"/api/strategies/{template['id']}/fork", json={"name": "Grouped dips"}).json()
    top = len(fork["entry_rules"]["all"])
    g = top + 1  # the group's number among the entry rules
    page.goto(app.url + f"/strategies/{fork['id']}")
    entry = page.get_by_role("group", name="Entry rules")
    entry.get_by_role("button", name="Add group", exact=True).click()
    page.get_by_label(f"Group {g} matches").select_option("any")
    page.get_by_role("button", name=f"Add a rule to group {g}").click()
    expect(page.locator(f'[data-rule="{g}.2"]')).to_have_count(1)
    # RSI(14) < 30, or close below the 20-day lowest low of 5 bars ago
    page.locator(f"#f-entry_rules\\.all\\.{top}\\.any\\.1\\.left\\.ind").select_option("rsi")
    page.locator(f"#f-entry_rules\\.all\\.{top}\\.any\\.1\\.left\\.period").fill("0")
    page.locator(f"#f-entry_rules\\.all\\.{top}\\.any\\.1\\.right\\.ind").select_option("number")
    page.locator(f"#f-entry_rules\\.all\\.{top}\\.any\\.1\\.right").fill("30")
    page.get_by_role("button", name="Save").click()
    # the API's error is shown on the nested field it names
    err = page.locator(f'[data-error-for="entry_rules.all.{top}.any.1.left.period"]')
    expect(err).to_contain_text("between 1 and 500")
    page.locator(f"#f-entry_rules\\.all\\.{top}\\.any\\.1\\.left\\.period").fill("14")
    page.locator(f"#f-entry_rules\\.all\\.{top}\\.any\\.1\\.op").select_option("<")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved “Grouped dips”.")).to_be_visible()
    saved = api.get(app.url + f"/api/strategies/{fork['id']}").json()["entry_rules"]["all"]
    assert saved[:top] == fork["entry_rules"]["all"]
    assert saved[top] == {"any": [{"left": {"ind": "close"}, "op": ">", "right": {"ind": "sma", "period": 50}},
                                  {"left": {"ind": "rsi", "period": 14}, "op": "<", "right": 30}]}
    # read back into the same form after a reload, and a rule removed from the group
    page.reload()
    expect(page.get_by_label(f"Group {g} matches")).to_have_value("any")
    expect(page.get_by_label(f"Rule {g}.2 left")).to_have_value("rsi")
    page.get_by_role("button", name=f"Remove rule {g}.1").click()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved “Grouped dips”.").last).to_be_visible()
    saved = api.get(app.url + f"/api/strategies/{fork['id']}").json()["entry_rules"]["all"]
    assert saved[top] == {"any": [{"left": {"ind": "rsi", "period": 14}, "op": "<", "right": 30}]}


def test_on_a_phone_the_top_bar_is_one_line_and_sign_out_is_in_the_menu(browser: Any, app: App,
                                                                         api: requests.Session) -> None:
    ctx = browser.new_context(viewport={"width": 390, "height": 844})
    ctx.add_cookies([{"name": c.name, "value": c.value or "", "url": app.url} for c in api.cookies])
    pg = ctx.new_page()
    signed_out: list[str] = []

    def sign_out(route: Any) -> None:  # (the module's session must live on: answered here, not by the server)
        signed_out.append(route.request.method)
        route.fulfill(status=200, json={"detail": "Signed out"})

    pg.route("**/api/auth/logout", sign_out)
    try:
        pg.goto(app.url + "/")
        expect(pg.get_by_role("heading", name="Home")).to_be_visible()
        bar = pg.locator("header.topbar").bounding_box()
        assert bar and bar["height"] < 60 and bar["width"] <= 390  # brand, Menu, Help, theme, bell: one line
        expect(pg.get_by_role("button", name="Sign out")).to_have_count(0)  # not in the bar...
        pg.get_by_role("button", name="Menu").click()
        pg.get_by_role("navigation", name="Main").get_by_role("button", name="Sign out").click()  # ...in the menu
        expect(pg).to_have_url(app.url + "/signin")
        assert signed_out == ["POST"]
    finally:
        ctx.close()
