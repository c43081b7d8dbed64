"""Market page: a symbol's candles from stored bars with a backtest's and a portfolio's entries and exits marked
(and listed), and a live watchlist over the tick WebSocket kept with the account (another device shows it)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import App

USER = "market.watcher@example.com"


@pytest.fixture(scope="module")
def setup(browser: Any, app: App) -> Any:
    api = app.session(USER)
    sma = next(t for t in api.get(app.url + "/api/strategies", params={"is_template": True}).json()
               if t["base_model"] == "sma_crossover")
    run = api.post(app.url + "/api/backtest/run", json={
        "strategy_id": sma["id"], "universe": "nifty_50", "start_date": "2025-01-01", "end_date": "2026-06-30",
        "starting_capital": 1_000_000, "position_size_pct": 10, "max_positions": 10})
    assert run.status_code == 200, run.text
    for page in app.page(browser, USER):
        yield page, api, run.json()


def test_a_backtests_entries_and_exits_on_the_candles(setup: Any, app: App) -> None:
    page, _, run = setup
    page.goto(app.url + f"/backtests/{run['id']}")
    page.get_by_role("link", name="Trades on chart").click()
    expect(page.get_by_role("heading", name="Market")).to_be_visible()
    traded = sorted({t["symbol"] for t in run["trades"]})
    links = page.get_by_text(f"Backtest #{run['id']} traded:").get_by_role("link")
    expect(links).to_have_count(len(traded))
    for symbol in traded[:2]:
        links.filter(has_text=re.compile(f"^{symbol}$")).click()
        expect(page).to_have_url(re.compile(f"symbol={symbol}$"))
        mine = [t for t in run["trades"] if t["symbol"] == symbol]
        wrap = page.locator("#candles-wrap")
        # a B marker per entry and an S marker per exit, on candles of the run's dates
        expect(wrap).to_have_attribute("data-markers", str(len(mine) + sum(1 for t in mine if t["exit_date"])))
        expect(page.locator("#candles .chart-box")).to_have_attribute("data-ready", "1")
        expect(page.locator("#candles canvas").first).to_be_visible()
        expect(page.get_by_role("img", name=f"{symbol} daily candles with entries (B) and exits (S)")).to_be_visible()
        rows = page.locator("#chart-trades tbody tr")
        expect(rows).to_have_count(len(mine))
        first = min(mine, key=lambda t: t["entry_date"])
        y, m, d = first["entry_date"].split("-")
        months = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
        expect(page.locator("#chart-trades")).to_contain_text(f"{d} {months[int(m) - 1]} {y}")
        bars = page.locator("#candles-wrap")
        assert int(bars.get_attribute("data-bars") or 0) > 300  # the run's 18 months of daily bars


def test_a_portfolios_open_position_on_the_chart(setup: Any, app: App) -> None:
    page, api, _ = setup
    pf = app.paper_portfolio(api, "Charted dips", positions=1)
    held = api.get(app.url + "/api/model/positions", params={"portfolio_id": pf["id"], "status": "open"}).json()
    page.goto(app.url + "/positions")
    page.locator("#open-positions").get_by_role("link", name=held[0]["symbol"], exact=True).click()
    expect(page).to_have_url(re.compile(f"portfolio={pf['id']}&symbol={held[0]['symbol']}$"))
    row = page.locator("#chart-trades tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator('[data-col="exit_date"]')).to_have_text("open")
    expect(page.locator("#candles-wrap")).to_have_attribute("data-markers", "1")


def test_the_watchlist_shows_live_ticks_and_remembers_its_symbols(setup: Any, app: App, browser: Any) -> None:
    page, api, _ = setup
    page.goto(app.url + "/market")
    watch = page.locator("#watchlist tbody tr")
    expect(watch).to_have_count(3)  # the starting three
    add = page.get_by_role("form", name="Add to the watchlist")
    add.get_by_label("Symbol", exact=True).fill("tcs")
    add.get_by_role("button", name="Add").click()
    tcs = watch.filter(has_text="NSE:TCS")
    expect(tcs).to_have_count(1)
    expect(page.locator("#feed-status")).to_have_text("live")
    # a tick over the WebSocket fills the price and its IST time
    expect(tcs.locator("[data-ltp]")).to_have_text(re.compile(r"^[\d,]+\.\d\d$"))
    expect(tcs.locator('[data-col="timestamp"]')).to_have_text(re.compile(r"^\d\d:\d\d:\d\d$"))
    first = tcs.locator('[data-col="timestamp"]').inner_text()
    expect(tcs.locator('[data-col="timestamp"]')).not_to_have_text(first, timeout=10_000)  # and keeps ticking
    page.get_by_role("button", name="Remove NSE:INFY").click()
    expect(watch).to_have_count(3)
    expect(page.locator("#watch")).to_have_attribute("aria-busy", "false")  # the account has kept it
    page.reload()
    expect(watch.filter(has_text="NSE:TCS")).to_have_count(1)
    expect(watch.filter(has_text="NSE:INFY")).to_have_count(0)
    kept = api.get(app.url + "/api/watchlist").json()  # kept with the account, not in this browser
    assert kept["saved"] is True and kept["symbols"] == ["NSE:RELIANCE", "NSE:HDFCBANK", "NSE:TCS"]
    phone = browser.new_context(viewport={"width": 390, "height": 844})  # another device: no shared storage
    try:
        phone.add_cookies([{"name": c.name, "value": c.value or "", "url": app.url} for c in api.cookies])
        small = phone.new_page()
        small.goto(app.url + "/market")
        expect(small.locator("#watchlist tbody tr")).to_have_count(3)
        expect(small.locator("#watchlist tbody tr").filter(has_text="NSE:TCS")).to_have_count(1)
        add = small.get_by_role("form", name="Add to the watchlist")
        add.get_by_label("Symbol", exact=True).fill("NYSE:IBM")
        add.get_by_role("button", name="Add").click()  # refused by the API: said under the field, list unchanged
        expect(add.get_by_role("alert")).to_contain_text("not an NSE or BSE symbol")
        expect(small.locator("#watchlist tbody tr")).to_have_count(3)
    finally:
        phone.close()
