"""Sign in with the emailed code, fork a template, see API validation errors on the field they name, run a
backtest and read its result page (metrics, charts, heatmap, trades), compare two runs."""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.conftest import App


@pytest.fixture(scope="module")
def page(browser: Any, app: App) -> Any:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = ctx.new_page()
    yield pg
    ctx.close()


def test_sign_in_with_the_code_from_the_mail_folder(page: Any, app: App) -> None:
    page.goto(app.url + "/backtests")
    expect(page).to_have_url(re.compile(r"/signin\?next=%2Fbacktests$"))
    email = page.get_by_label("Email", exact=True)
    assert email.get_attribute("type") == "email" and email.get_attribute("autocomplete") == "email"
    email.fill("trader@example.com")
    n = app.mail_count()
    page.get_by_role("button", name="Email me a code").click()
    code = page.get_by_label("6-digit code")
    assert code.get_attribute("autocomplete") == "one-time-code"
    code.fill(app.mail_code("trader@example.com", n))
    page.get_by_role("button", name="Sign in").click()
    # back where the user was headed
    expect(page.get_by_role("heading", name="Backtests")).to_be_visible()
    expect(page).to_have_url(app.url + "/backtests")
    expect(page.get_by_text("trader@example.com")).to_be_visible()


def test_password_form_has_the_attributes_password_managers_fill(browser: Any, app: App) -> None:
    ctx = browser.new_context()
    pg = ctx.new_page()
    pg.goto(app.url + "/signin")
    pg.get_by_role("tab", name="Password").click()
    assert pg.get_by_label("Email", exact=True).get_attribute("autocomplete") == "username"
    assert pg.get_by_label("Password", exact=True).get_attribute("autocomplete") == "current-password"
    pg.get_by_label("Email", exact=True).fill("nobody@example.com")
    pg.get_by_label("Password", exact=True).fill("wrong-password-123")
    pg.get_by_role("button", name="Sign in").click()
    expect(pg.get_by_role("alert")).to_be_visible()
    expect(pg).to_have_url(re.compile(r"/signin"))
    ctx.close()


def test_fork_a_template_and_see_a_validation_error_on_its_field(page: Any, app: App) -> None:
    page.get_by_role("link", name="Strategies").click()
    page.get_by_role("tab", name="Templates").click()
    page.get_by_role("button", name="Fork V3 Dip Buyer").click()
    expect(page.get_by_role("heading", name="V3 Dip Buyer (my copy)")).to_be_visible()
    # a period the API refuses: the message appears under that period field
    period = page.locator("#f-entry_rules\\.all\\.1\\.left\\.period")
    period.fill("0")
    page.get_by_role("button", name="Save").click()
    err = page.locator('[data-error-for="entry_rules.all.1.left.period"]')
    expect(err).to_contain_text("between 1 and 500")
    assert period.get_attribute("aria-describedby") == "f-entry_rules.all.1.left.period-err"
    period.fill("14")
    page.get_by_label("Name", exact=True).fill("My dips")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name="My dips")).to_be_visible()
    expect(err).to_have_count(0)


def test_share_sends_the_state_wanted_not_a_toggle(page: Any) -> None:
    for wanted, label, after in ((True, "Share", "Unshare"), (False, "Unshare", "Share")):
        with page.expect_request(lambda r: r.url.endswith("/share") and r.method == "POST") as sent:
            page.get_by_role("button", name=label, exact=True).click()
        assert sent.value.post_data_json == {"is_public": wanted}
        expect(page.get_by_role("button", name=after, exact=True)).to_be_visible()


def test_run_a_backtest_and_read_the_result(page: Any, app: App) -> None:
    page.get_by_role("link", name="Backtest", exact=True).click()
    expect(page.get_by_role("heading", name="Backtests")).to_be_visible()
    expect(page.get_by_label("Strategy", exact=True)).to_have_value(re.compile(r"\d+"))
    assert page.get_by_label("Strategy", exact=True).locator("option:checked").inner_text() == "My dips"
    page.get_by_label("From", exact=True).fill("2024-06-01")
    page.get_by_label("To", exact=True).fill("2026-07-31")
    page.get_by_label("Capital (₹)", exact=True).fill("1000000")
    page.get_by_role("button", name="Run backtest").click()
    expect(page.get_by_role("heading", name=re.compile(r"Backtest #\d+: My dips"))).to_be_visible(timeout=60_000)
    expect(page.get_by_text(re.compile(r"slippage \d+ bps · Zerodha's delivery charges$"))).to_be_visible()
    metrics = page.locator("#metrics")
    expect(metrics.locator('[data-metric="cagr"] .card-value')).to_have_text(re.compile("^[+\u2212]?\\d+\\.\\d\\d %$"))
    # money in Indian grouping: ₹10,00,000 style (a lakh separator)
    final = metrics.locator('[data-metric="final_equity"] .card-value')
    expect(final).to_have_text(re.compile(r"^₹\d{1,2},\d\d,\d{3}\.\d\d$"))
    expect(page.locator("#equity-chart canvas").first).to_be_visible()
    expect(page.locator("#drawdown-chart canvas").first).to_be_visible()
    expect(page.locator("#heatmap tbody tr")).to_have_count(3)  # 2024, 2025, 2026
    trades = page.locator("#trades tbody tr")
    assert trades.count() > 5
    # sort by P&L descending: the first row is the best trade
    pnl_header = page.locator("#trades").get_by_role("button", name=re.compile(r"^P&L( [▲▼])?$"))
    pnl_header.click()
    pnl_header.click()
    expect(page.locator("#trades th[aria-sort=descending]")).to_have_text(re.compile("P&L"))
    first = page.locator("#trades tbody tr").first.locator('[data-col="pnl"]').inner_text()
    assert first.startswith("+₹")
    page.get_by_label("Filter Trades").fill("stop loss")  # a reason is shown, and found, in words
    expect(page.locator("#trades tbody tr").first).to_be_visible()
    reasons = page.locator('#trades tbody [data-col="exit_reason"]').all_inner_texts()
    assert reasons and set(reasons) == {"stop loss"}
    expect(page.locator("#by-exit tbody")).to_contain_text("stop loss")
    expect(page.locator("#diagnostics")).to_contain_text("Skipped entries")


def test_compare_two_runs(page: Any, app: App) -> None:
    page.get_by_role("link", name="Backtests").click()
    page.get_by_label("From", exact=True).fill("2025-01-01")
    page.get_by_role("button", name="Run backtest").click()
    expect(page.get_by_role("heading", name=re.compile(r"Backtest #\d+"))).to_be_visible(timeout=60_000)
    page.get_by_role("link", name="Backtests").click()
    boxes = page.get_by_role("checkbox", name=re.compile("Select run"))
    expect(boxes).to_have_count(2)
    boxes.nth(0).check()
    boxes.nth(1).check()
    page.get_by_role("link", name="Compare selected (2)").click()
    expect(page.locator("#compare thead th")).to_have_count(3)
    expect(page.locator("#compare-chart canvas").first).to_be_visible()


def test_client_routes_do_not_shadow_the_api(app: App) -> None:
    deep = requests.get(app.url + "/backtests/123")
    assert deep.status_code == 200 and '<div id="app">' in deep.text
    assert "script-src 'self'" in deep.headers["Content-Security-Policy"]
    api404 = requests.get(app.url + "/api/no-such-thing")
    assert api404.status_code == 404 and api404.json() == {"detail": "Not Found"}
    assert requests.get(app.url + "/link/no-such-page").status_code == 404
    assert requests.get(app.url + "/api/health").json()["status"]
    assert requests.post(app.url + "/strategies").status_code in (404, 405)


def test_market_coverage_tells_the_form_which_dates_exist(app: App) -> None:
    s = app.session("coverage@example.com")
    cov = s.get(app.url + "/api/market/coverage").json()
    assert cov["first"] == "2023-01-02" and cov["last"] >= "2026-07-31" and cov["symbols"] >= 100
    assert requests.get(app.url + "/api/market/coverage").status_code == 401
