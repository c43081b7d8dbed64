"""A portfolio's alert hooks from the browser: create one, copy its URL (shown once), an alert posted to it
becomes a signal, rotate (the old URL stops), delete. Settings shows the Telegram link state."""

from __future__ import annotations

from typing import Any

import requests
from playwright.sync_api import expect

from tests.browser.conftest import App

USER = "hooks.trader@example.com"


def test_create_copy_rotate_and_delete_a_hook(browser: Any, app: App) -> None:
    api = app.session(USER)
    template = api.get(app.url + "/api/strategies", params={"is_template": True}).json()[0]
    pf = api.post(app.url + "/api/model/portfolios/deploy", json={
        "strategy_id": template["id"], "name": "Alerts", "capital": 1_000_000, "universe": "nifty_100"}).json()
    ctx = app.context(browser, USER, viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    page.goto(app.url + f"/portfolios/{pf['id']}")
    page.get_by_label("Name", exact=True).fill("TV breakouts")
    page.get_by_role("button", name="Create hook").click()
    url = page.get_by_label("Webhook URL").input_value()
    assert url.startswith(app.url + "/api/webhooks/th_")
    message = page.get_by_label("Alert message (buy)").input_value()
    assert '"action": "buy"' in message and "{{ticker}}" in message
    sent = message.replace("{{exchange}}", "NSE").replace("{{ticker}}", "INFY").replace("{{close}}", "1500") \
        .replace("{{timenow}}", "t1")
    r = requests.post(url, data=sent, headers={"Content-Type": "text/plain"}, timeout=30)
    assert r.status_code == 200 and r.json()["signals"][0]["symbol"] == "INFY", r.text
    page.get_by_role("button", name="Done").click()
    page.reload()
    row = page.locator("#hooks tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("TV breakouts")
    expect(row.locator("td").nth(3)).to_have_text("1")  # alerts

    row.get_by_role("button", name="Rotate URL").click()
    page.get_by_role("dialog").get_by_role("button", name="Rotate").click()
    new_url = page.get_by_label("Webhook URL").input_value()
    assert new_url != url
    assert requests.post(url, data=sent, headers={"Content-Type": "text/plain"}, timeout=30).status_code == 404
    page.get_by_role("button", name="Done").click()
    page.locator("#hooks tbody tr").get_by_role("button", name="Delete").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(page.locator("#hooks")).to_contain_text("No hooks yet.")
    assert requests.post(new_url, data=sent, headers={"Content-Type": "text/plain"}, timeout=30).status_code == 404

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()
    expect(page.locator("#telegram")).to_contain_text("Telegram is not set up on this server")
    ctx.close()
