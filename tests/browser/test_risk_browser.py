"""Risk page: rules added, edited (an API refusal shown on its field) and deleted; today's loss against the
daily-loss limit; an automatic kill switch shown on Home and Risk, and released from Risk."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from domain.money import format_inr
from tests.browser.conftest import App, cli

USER = "risk.keeper@example.com"


@pytest.fixture(scope="module")
def setup(browser: Any, app: App) -> Any:
    api = app.session(USER)
    pf = app.paper_portfolio(api, "Risky dips")
    for _ in range(10):  # a day that lost money, so the loss limit has something to measure
        if api.get(app.url + "/api/risk/state").json()["day_pnl"] < 0:
            break
        cli(app.env, "sim", "advance", "--days", "1")
        app.caught_up()
    assert api.get(app.url + "/api/risk/state").json()["day_pnl"] < 0
    for page in app.page(browser, USER):
        yield page, api, pf


def rules_of(app: App, api: Any, rule_type: str) -> list[dict[str, Any]]:
    return [r for r in api.get(app.url + "/api/risk/rules").json() if r["rule_type"] == rule_type]


def test_home_shows_the_portfolio_its_open_positions_and_todays_activity(setup: Any, app: App) -> None:
    page, api, pf = setup
    page.goto(app.url + "/")
    row = page.locator("#home-portfolios tbody tr").filter(has_text="Risky dips")
    held = api.get(app.url + "/api/model/positions", params={"portfolio_id": pf["id"], "status": "open"}).json()
    expect(row.locator('[data-col="open_positions"]')).to_have_text(str(len(held)))
    dash = api.get(app.url + "/api/model/dashboard", params={"portfolio_id": pf["id"]}).json()
    expect(row.locator('[data-col="equity"]')).to_have_text(format_inr(dash["equity"]))
    # what happened today (IST), newest first, each line naming its portfolio
    today = page.get_by_role("region", name="Today").locator("li")
    expect(today.first).to_contain_text("Risky dips")
    expect(today.first).to_contain_text(dash["activity"][0]["summary"])


def _save_rule(page: Any, app: App, rule: str, limit: str, note: str) -> Any:
    """Fill the Risk page's form afresh and save it; the form."""
    page.goto(app.url + "/risk")
    form = page.get_by_role("form", name="Risk rule")
    form.get_by_label("Rule", exact=True).select_option(label=rule)
    form.get_by_label("Limit", exact=True).fill(limit)
    form.get_by_label("Note", exact=True).fill(note)
    form.get_by_role("button", name="Save rule").click()
    return form


def test_rules_are_added_edited_and_deleted(setup: Any, app: App) -> None:
    page, api, _ = setup
    _save_rule(page, app, "Max open positions", "30", "thirty at most")
    row = page.locator("#rules tbody tr").filter(has_text="Max open positions")
    expect(row.locator('[data-col="value"]')).to_have_text("30")
    expect(row.locator('[data-col="note"]')).to_have_text("thirty at most")
    expect(row.locator('[data-col="portfolio_id"]')).to_have_text("account")

    row.get_by_role("button", name="Edit").click()
    edit = page.get_by_role("form", name="Risk rule")
    expect(edit.get_by_role("group", name="Edit rule")).to_be_visible()
    expect(edit.get_by_label("Limit", exact=True)).to_have_value("30")
    edit.get_by_label("Limit", exact=True).fill("0")  # the API refuses it: shown on the field it names
    edit.get_by_role("button", name="Save rule").click()
    expect(edit.locator('[data-error-for="value"]')).to_contain_text("greater than 0")
    edit.get_by_label("Limit", exact=True).fill("25")
    edit.get_by_label("Applies to", exact=True).select_option(label="Risky dips")
    edit.get_by_role("button", name="Save rule").click()
    expect(row.locator('[data-col="value"]')).to_have_text("25")
    expect(row.locator('[data-col="portfolio_id"]')).to_have_text("Risky dips")
    saved = rules_of(app, api, "max_open_positions")
    assert [(r["value"], r["portfolio_id"]) for r in saved] == [(25, setup[2]["id"])]

    row.get_by_role("button", name="Delete").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(row).to_have_count(0)
    assert rules_of(app, api, "max_open_positions") == []


def test_the_form_is_cleared_after_a_save_and_a_second_identical_rule_is_refused(setup: Any, app: App) -> None:
    page, api, _ = setup
    form = _save_rule(page, app, "Max orders per day", "400", "daily stop")
    expect(page.locator("#rules tbody tr").filter(has_text="Max orders per day")).to_have_count(1)
    # the next rule starts from an empty form: it does not silently inherit the note "daily stop"
    expect(form.get_by_label("Note", exact=True)).to_have_value("")
    expect(form.get_by_label("Limit", exact=True)).to_have_value("")
    # the same rule again (same type, limit and scope) is refused before anything is sent
    form.get_by_label("Rule", exact=True).select_option(label="Max orders per day")
    form.get_by_label("Limit", exact=True).fill("400")
    form.get_by_role("button", name="Save rule").click()
    expect(form.get_by_role("alert")).to_contain_text("You already have this rule")
    expect(page.locator("#rules tbody tr").filter(has_text="Max orders per day")).to_have_count(1)
    saved = rules_of(app, api, "max_orders_per_day")
    assert len(saved) == 1 and saved[0]["note"] == "daily stop"
    # a different limit is another rule, allowed
    form.get_by_label("Limit", exact=True).fill("401")
    form.get_by_role("button", name="Save rule").click()
    expect(page.locator("#rules tbody tr").filter(has_text="Max orders per day")).to_have_count(2)
    for r in rules_of(app, api, "max_orders_per_day"):
        assert api.delete(app.url + f"/api/risk/rules/{r['id']}").status_code in (200, 204)


def test_todays_loss_against_the_limit_then_the_automatic_kill_switch_released(setup: Any, app: App) -> None:
    page, api, pf = setup
    page.goto(app.url + "/risk")
    expect(page.locator('[data-metric="loss-limit-none"]')).to_contain_text("No daily-loss limit set")
    form = page.get_by_role("form", name="Risk rule")
    form.get_by_label("Rule", exact=True).select_option(label="Max daily loss")
    form.get_by_label("Limit", exact=True).fill("1")
    form.get_by_label("Unit", exact=True).select_option(label="₹")
    form.get_by_role("button", name="Save rule").click()
    expect(page.locator("#rules tbody tr").filter(has_text="Max daily loss")).to_have_count(1)
    rule = rules_of(app, api, "max_daily_loss")[0]
    limit = api.get(app.url + "/api/risk/state").json()["loss_limits"][0]
    card = page.locator(f'[data-metric="loss-limit-{rule["id"]}"]')
    expect(card.locator("[data-limit]")).to_have_text("₹1.00")
    loss = card.locator("[data-loss]")
    expect(loss).to_have_text(format_inr(limit["loss"]))  # Indian grouping, as the API computed it
    expect(card).to_contain_text("limit reached")

    # the next market-clock run (a scan) finds the loss over the limit and engages the kill switch itself
    assert api.post(app.url + "/api/model/scan", json={"portfolio_id": pf["id"]}).status_code == 200
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Home").click()
    expect(page.get_by_role("alert").filter(has_text="Kill switch engaged")).to_be_visible()
    # Approvals says so before the trader presses Approve, with the way to Risk
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Approvals").click()
    kill = page.get_by_role("alert").filter(has_text="Kill switch engaged")
    expect(kill).to_contain_text("approving a signal is refused")
    kill.get_by_role("link", name="Review on Risk").click()
    expect(page).to_have_url(app.url + "/risk")
    banner = page.locator("#kill-banner")
    expect(banner).to_contain_text(f"engaged automatically by max_daily_loss rule {rule['id']}")
    banner.get_by_role("button", name="Release the automatic kill switch").click()
    page.get_by_role("dialog").get_by_role("button", name="Release").click()
    expect(page.get_by_role("status").filter(has_text="Kill switch released")).to_be_visible()
    expect(banner).to_have_count(0)
    assert rules_of(app, api, "kill_switch") == []
    # Home no longer says it is engaged: today's refusals read as what happened, with their time
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Home").click()
    expect(page.locator('[data-metric="equity"]')).to_be_visible()
    expect(page.get_by_role("alert").filter(has_text="Kill switch engaged")).to_have_count(0)
    expect(page.locator("#home-breaches").filter(has_text="engaged")).to_have_count(0)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Approvals").click()
    expect(page.locator("#pending")).to_be_visible()
    expect(page.get_by_role("alert").filter(has_text="Kill switch engaged")).to_have_count(0)
