"""Deploy a paper portfolio, advance the simulated market, approve and place from the approvals page, see the
position with a live mark from the tick WebSocket, close part of it; a risk breach shown on approval."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from domain.money import format_price
from tests.browser.conftest import App, cli

USER = "paper.trader@example.com"


@pytest.fixture(scope="module")
def setup(browser: Any, app: App) -> Any:
    api = app.session(USER)
    fork = app.dip_buyer(api, "Dips at the open")
    ctx = app.context(browser, USER, viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    yield page, api, fork
    ctx.close()


def test_deploy_approve_place_and_see_a_live_mark(setup: Any, app: App) -> None:
    page, api, fork = setup
    page.goto(app.url + f"/portfolios?deploy={fork['id']}")
    page.get_by_label("Portfolio name", exact=True).fill("Paper dips")
    page.get_by_label("Max positions", exact=True).fill("5")
    page.get_by_role("button", name="Deploy", exact=True).click()
    expect(page.get_by_role("heading", name="Paper dips")).to_be_visible()
    # a new portfolio has no curve yet: a sentence says when it starts, not an empty box
    expect(page.locator("#portfolio-equity")).to_contain_text("The equity curve starts after the first trading day")
    pid = int(page.url.rsplit("/", 1)[1])
    pending: list[Any] = []
    for _ in range(10):  # scan; if nothing waits for approval, let a trading day pass
        page.get_by_role("button", name="Scan now").click()
        # the answer names the day whose close was scanned, and what it found
        said = page.get_by_role("status").filter(has_text=re.compile(r"Scanned on the close of \d\d \w{3} \d{4}"))
        found = re.compile(r"new signals?\.|no stock met the strategy's entry rules")
        expect(said.filter(has_text=found)).to_be_visible()
        pending = api.get(app.url + "/api/model/signals",
                          params={"portfolio_id": pid, "status": "pending_approval"}).json()
        if len(pending) >= 2:
            break
        cli(app.env, "sim", "advance", "--days", "1")
        app.caught_up()
    assert len(pending) >= 2
    first = pending[0]["symbol"]
    # Home lists them too: an entry at the next open has no limit price (the last close is in its tooltip)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Home").click()
    for sig in pending[:2]:
        symbol = page.locator('[data-col="symbol"]', has_text=re.compile(f"^{sig['symbol']}$"))
        cell = page.locator("#home-pending tbody tr").filter(has=symbol).locator('[data-col="limit_price"]')
        expect(cell).to_have_text("next open" if sig["limit_price"] is None else format_price(sig["limit_price"]))

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Approvals").click()
    page.get_by_role("button", name=f"Approve {first}").click()
    expect(page.locator("#cart tbody tr")).to_have_count(1)
    expect(page.locator("#cart-total")).to_have_text(re.compile(r"^₹[\d,]+\.\d\d$"))
    page.get_by_role("button", name="Place 1 order(s)").click()
    page.get_by_role("dialog").get_by_role("button", name="Place orders").click()
    expect(page.locator("#place-result")).to_contain_text(f"{first} (placed)")

    cli(app.env, "sim", "advance", "--days", "1")  # the next open fills the entry
    app.caught_up()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Positions").click()
    row = page.locator("#open-positions tbody tr").filter(has_text=first)
    expect(row).to_have_count(1)
    # the mark comes from a tick over the WebSocket (its title names the tick time)
    expect(row.locator("[data-mark]")).to_have_attribute("title", re.compile(r"^tick \d\d:\d\d:\d\d IST$"))
    expect(row.locator('[data-col="pnl"]')).to_have_text(re.compile(r"^([+\u2212]₹|₹0\.00)"))


def test_close_part_of_a_position(setup: Any, app: App) -> None:
    page = setup[0]
    row = page.locator("#open-positions tbody tr").first
    qty = int(row.locator('[data-col="quantity"]').inner_text())
    assert qty >= 2
    symbol = row.locator('[data-col="symbol"]').inner_text().split()[0]
    row.get_by_role("button", name=f"Close {symbol}").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label(re.compile("Shares to sell")).fill(str(qty // 2))
    dialog.get_by_role("button", name="Close", exact=True).click()
    expect(page.get_by_role("status").filter(has_text=f"Sold {qty // 2} {symbol}")).to_be_visible()
    left = page.locator("#open-positions tbody tr").first.locator('[data-col="quantity"]')
    expect(left).to_have_text(str(qty - qty // 2))
    page.get_by_role("tab", name="Closed").click()
    closed = page.locator("#closed-positions tbody tr").filter(has_text=symbol)
    expect(closed.locator('[data-col="quantity"]')).to_have_text(str(qty // 2))
    expect(closed.locator('[data-col="exit_reason"]')).to_have_text("manual")
    # which portfolio it was closed in, as on the Open tab
    expect(closed.locator('[data-col="portfolio_id"]')).to_have_text("Paper dips")
    expect(page.locator("#closed-positions thead")).to_contain_text("Portfolio")


def test_scan_with_nothing_new_says_which_day_and_why(setup: Any, app: App) -> None:
    page, api, _ = setup
    pid = next(p["id"] for p in api.get(app.url + "/api/model/portfolios").json() if p["name"] == "Paper dips")
    latest = api.post(app.url + "/api/model/scan", json={"portfolio_id": pid}).json()["days"][-1]
    page.goto(app.url + f"/portfolios/{pid}")
    page.get_by_role("button", name="Scan now").click()  # the same close again: what it proposed is proposed already
    day = f"{latest[8:10]} {'JanFebMarAprMayJunJulAugSepOctNovDec'[3 * int(latest[5:7]) - 3:][:3]} {latest[:4]}"
    expect(page.get_by_role("status").filter(has_text=f"Scanned on the close of {day}: no stock met")).to_be_visible()
    expect(page.get_by_role("status").filter(has_text="0 new signal")).to_have_count(0)


def test_the_portfolio_list_on_a_phone_shows_equity_and_pnl(setup: Any, app: App) -> None:
    page = setup[0]
    page.set_viewport_size({"width": 390, "height": 844})
    try:
        page.goto(app.url + "/portfolios")
        row = page.locator("#portfolios tbody tr").filter(has_text="Paper dips")
        for col in ("equity", "total_pnl", "day_pnl"):  # a card per portfolio: nothing off the right edge
            expect(row.locator(f'[data-col="{col}"]')).to_be_in_viewport(ratio=1)
        expect(row.locator('[data-col="equity"]')).to_have_attribute("data-label", "Equity")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
    finally:
        page.set_viewport_size({"width": 1280, "height": 900})


def test_a_risk_breach_is_shown_on_approval(setup: Any, app: App) -> None:
    page, api, _ = setup
    rule = api.post(app.url + "/api/risk/rules", json={"rule_type": "max_position_value", "value": 1000})
    assert rule.status_code == 201, rule.text
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Approvals").click()
    first = page.locator("#pending tbody tr").first
    symbol = first.locator('[data-col="symbol"] strong').inner_text()
    first.get_by_role("button", name=f"Approve {symbol}").click()
    refused = page.locator("#place-result .refused")
    expect(refused).to_contain_text(symbol)
    expect(refused).to_contain_text(re.compile("max_position_value|position value", re.I))
    expect(page.locator("#cart tbody tr").filter(has_text=symbol)).to_have_count(0)
