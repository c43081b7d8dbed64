"""Audit page: a portfolio's causal timeline (who caused each step, one signal's chain) and its state rebuilt
as of a chosen moment (IST), before its first fill and now."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from domain.money import format_inr
from tests.browser.conftest import App

USER = "audit.reader@example.com"
IST = ZoneInfo("Asia/Kolkata")


@pytest.fixture(scope="module")
def setup(browser: Any, app: App) -> Any:
    api = app.session(USER)
    pf = app.paper_portfolio(api, "Audited dips", positions=1)
    for page in app.page(browser, USER):
        page.goto(app.url + f"/portfolios/{pf['id']}")
        page.locator("#main").get_by_role("link", name="Audit").click()
        expect(page.get_by_role("heading", name="Audit")).to_be_visible()
        yield page, api, pf


def test_the_causal_timeline_names_who_caused_each_step(setup: Any, app: App) -> None:
    page, api, pf = setup
    steps = api.get(app.url + "/api/audit/timeline", params={"portfolio_id": pf["id"]}).json()["steps"]
    timeline = page.locator("#timeline li")
    expect(timeline).to_have_count(len(steps))
    deploy = timeline.first
    expect(deploy).to_have_attribute("data-step", "deploy")
    expect(deploy.locator("[data-cause]")).to_have_text("you")
    at = datetime.fromisoformat(steps[0]["at"]).astimezone(IST)
    expect(deploy.locator("time")).to_have_text(at.strftime("%d %b %Y, %H:%M:%S IST"))

    opened = next(s for s in steps if s["type"] == "PositionOpened")
    chain = [s for s in steps if s["signal_id"] == opened["signal_id"] or s["position"] == opened["proposed_by"]]
    page.get_by_label("Follow one signal").select_option(value=str(opened["signal_id"]))
    expect(timeline).to_have_count(len(chain))
    assert len(chain) >= 3  # proposed by a scan, approved, filled, opened...
    expect(timeline.first.locator("[data-cause]")).to_have_text("you (scan on request)")
    last = timeline.last
    expect(last.get_by_role("link")).to_have_count(1)  # "after the <previous step>" links back along the chain
    last.get_by_role("link").click()
    expect(page).to_have_url(re.compile(r"#step-\d+$"))


def test_the_state_as_of_a_moment_before_the_first_fill_and_now(setup: Any, app: App) -> None:
    page, api, pf = setup
    steps = api.get(app.url + "/api/audit/timeline", params={"portfolio_id": pf["id"]}).json()["steps"]
    fill = datetime.fromisoformat(next(s["at"] for s in steps if s["type"] == "FillRecorded"))
    # the first whole second after the last order placed before that fill (the form takes whole seconds): a
    # simulated trading day (a CLI run, over a second) lies between placing and the fill
    placed = max(at for s in steps if s["type"] == "OrderPlaced" and (at := datetime.fromisoformat(s["at"])) < fill)
    moment = (placed + timedelta(seconds=1)).replace(microsecond=0)
    assert placed < moment < fill
    page.get_by_label("State as of (IST)").fill(moment.astimezone(IST).strftime("%Y-%m-%dT%H:%M:%S"))
    page.get_by_role("button", name="Rebuild").click()
    state = page.locator("#asof-state")
    shown = moment.astimezone(IST).strftime("%d %b %Y, %H:%M:%S IST")
    expect(state.get_by_role("heading")).to_have_text(f"As of {shown}")
    expect(state.locator('[data-metric="asof-open"] .card-value')).to_have_text("0")
    expect(state.locator("#asof-positions")).to_contain_text("No open positions at that moment.")
    expect(state.locator('[data-metric="asof-signals"] .card-sub')).to_contain_text("placed")

    now = datetime.now(IST) + timedelta(minutes=1)
    page.get_by_label("State as of (IST)").fill(now.strftime("%Y-%m-%dT%H:%M:%S"))
    page.get_by_role("button", name="Rebuild").click()
    held = api.get(app.url + "/api/model/positions", params={"portfolio_id": pf["id"], "status": "open"}).json()
    expect(state.locator('[data-metric="asof-open"] .card-value')).to_have_text(str(len(held)))
    expect(state.locator("#asof-positions tbody tr")).to_have_count(len(held))
    cash = api.get(app.url + "/api/model/dashboard", params={"portfolio_id": pf["id"]}).json()["cash"]
    expect(state.locator('[data-metric="asof-cash"] .card-value')).to_have_text(format_inr(cash))

    page.get_by_label("State as of (IST)").fill("2020-01-01T09:15:00")  # before the portfolio existed
    page.get_by_role("button", name="Rebuild").click()
    expect(page.get_by_role("alert")).to_contain_text("did not exist yet")
