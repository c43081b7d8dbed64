"""Broker page: clear states while Kite is not connected; Kite app credentials saved (secret masked) and the
Kite login it enables; an agent key shown once, used by the agent to send a snapshot that reconciliation
compares, and revoked."""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.conftest import App

USER = "broker.user@example.com"


@pytest.fixture(scope="module")
def page(browser: Any, app: App) -> Any:
    yield from app.page(browser, USER)


def test_kite_not_connected_is_said_plainly(page: Any, app: App) -> None:
    page.goto(app.url + "/")
    broker = page.locator('[data-metric="broker"]')
    expect(broker.locator(".card-value")).to_have_text("Not connected")
    broker.get_by_role("link", name="Connect").click()
    expect(page.get_by_role("heading", name="Kite is not connected")).to_be_visible()
    expect(page.locator('[data-metric="kite"] .card-value')).to_have_text("Not connected")
    for table in ("#kite-holdings", "#kite-positions", "#kite-orders"):
        expect(page.locator(table)).to_have_count(0)  # no error dumps per table, one explanation
    login = page.get_by_role("button", name="Log in to Kite")
    expect(login).to_be_disabled()
    expect(page.locator("#login-needs")).to_have_text("Save your Kite app credentials first.")
    expect(page.locator(".reconciliation")).to_contain_text("No broker snapshot yet.")


def test_kite_credentials_are_saved_masked_and_enable_the_login(page: Any, app: App) -> None:
    form = page.get_by_role("form", name="Kite app credentials")
    form.get_by_label("api_key").fill("kiteapp123")
    form.get_by_label("api_secret").fill("s3cret-value-0123456789")
    form.get_by_role("button", name="Save credentials").click()
    saved = page.locator("#kite-saved")
    expect(saved).to_contain_text("kiteapp123")
    expect(saved).not_to_contain_text("s3cret-value-0123456789")
    expect(form.get_by_label("api_secret")).to_have_value("")
    expect(page.locator("#kite-not-connected li").first).to_have_attribute("data-done", "true")
    # the login goes to Kite with this api_key (intercepted: tests never leave loopback)
    page.route("https://kite.zerodha.com/**", lambda route: route.fulfill(body="Kite login (stub)",
                                                                           content_type="text/plain"))
    page.get_by_role("button", name="Log in to Kite").click()
    expect(page).to_have_url(re.compile(r"^https://kite\.zerodha\.com/connect/login\?.*api_key=kiteapp123"))
    page.go_back()
    expect(page.get_by_role("heading", name="Broker and account")).to_be_visible()


def test_an_agent_key_is_shown_once_feeds_reconciliation_and_is_revoked(page: Any, app: App) -> None:
    page.goto(app.url + "/broker")
    page.get_by_role("button", name="Generate key").click()
    key = page.locator("#new-agent-key")
    expect(key).to_be_visible()
    secret = key.inner_text()
    prefix = page.locator('[data-metric="agent"] .card-value')
    expect(prefix).to_have_text(re.compile(r".+…$"))
    assert secret.startswith(prefix.inner_text()[:-1])
    page.reload()
    expect(page.locator("#new-agent-key")).to_have_count(0)  # shown once
    expect(page.get_by_text(secret)).to_have_count(0)

    agent = {"Authorization": f"Bearer {secret}"}
    snapshot: list[dict[str, Any]] = [
        {"tradingsymbol": "ZZEXTRA", "exchange": "NSE", "quantity": 2, "average_price": 10, "product": "CNC"}]
    r = requests.post(app.url + "/api/agent/sync-holdings", headers=agent, json={"status": "success", "data": snapshot})
    assert r.status_code == 200, r.text
    app.caught_up()
    page.reload()
    expect(page.locator(".reconciliation")).to_contain_text("Drift found")
    drift = page.locator("#drift tbody tr").filter(has_text="ZZEXTRA")
    expect(drift.locator('[data-col="kind"]')).to_have_text("Only at Kite")
    expect(drift.locator('[data-col="detail"]')).to_have_text("Kite holds 2; no live portfolio does.")

    page.get_by_role("button", name="Revoke").click()
    page.get_by_role("dialog").get_by_role("button", name="Revoke").click()
    expect(page.get_by_role("status").filter(has_text="Agent key revoked")).to_be_visible()
    expect(prefix).to_have_text("None")
    assert requests.get(app.url + "/api/agent/pending-signals", headers=agent).status_code == 401
