"""Upload a tradebook and see its P&L; invite a second user who accepts in a second browser context."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import App
from tests.support.brokerfiles import trade, tradebook_xlsx

OWNER = "asha.family@example.com"
MEMBER = "ravi.family@example.com"


@pytest.fixture(scope="module")
def owner(browser: Any, app: App) -> Any:
    yield from app.page(browser, OWNER)


def test_upload_a_tradebook_and_see_its_pnl(owner: Any, app: App, tmp_path: Path) -> None:
    book = tmp_path / "tradebook-2024.xlsx"
    book.write_bytes(tradebook_xlsx([
        trade("INFY", "2024-01-10", "buy", 100, 1500.0, "T1"),
        trade("INFY", "2024-03-12", "sell", 100, 1650.0, "T2"),
        trade("TCS", "2024-02-10", "buy", 1000, 3500.0, "T3"),
    ]))
    owner.goto(app.url + "/imports")
    # nothing imported yet: the XIRR card says why it has no rate, in words
    expect(owner.locator('#analytics-cards [data-metric="xirr"]')).to_contain_text("no cash flows yet")
    owner.get_by_label("Choose files (.xlsx,.csv)").set_input_files(str(book))
    owner.get_by_role("button", name="Import tradebooks").click()
    report = owner.locator("#import-report")
    expect(report).to_contain_text("3 rows read")
    expect(report).to_contain_text("3 imported")
    # 100 x (1650 - 1500) = ₹15,000.00 realised, before charges
    expect(owner.locator('#analytics-cards [data-metric="realized_pnl"] .card-value')).to_have_text("+₹15,000.00")
    # months in words, the win rate as a percent, quantities grouped the Indian way
    march = owner.locator("#pnl tbody tr").filter(has_text="Mar 2024")
    expect(march).to_have_count(1)
    expect(owner.locator("#pnl tbody")).not_to_contain_text("2024-03")
    expect(march.locator('[data-col="win_rate"]')).to_have_text("100 %")
    tcs = owner.locator("#journal tbody tr").filter(has_text="TCS")
    expect(tcs.locator('[data-col="quantity"]')).to_have_text("1,000")
    expect(owner.get_by_role("button", name="Import CAS statement", exact=True)).to_be_visible()
    owner.get_by_role("tab", name="By symbol").click()
    expect(owner.locator("#pnl tbody tr").filter(has_text="INFY")).to_contain_text("+₹15,000.00")
    expect(owner.locator("#holdings tbody tr").filter(has_text="TCS")).to_have_count(1)
    # the same file again imports nothing twice
    owner.get_by_label("Choose files (.xlsx,.csv)").set_input_files(str(book))
    owner.get_by_role("button", name="Import tradebooks").click()
    expect(report).to_contain_text("0 imported, 3 duplicates skipped")


def test_on_a_phone_a_table_that_scrolls_sideways_says_so(owner: Any, app: App) -> None:
    owner.set_viewport_size({"width": 390, "height": 844})
    try:
        owner.goto(app.url + "/imports")
        journal = owner.locator("#journal")
        expect(journal.locator("tbody tr").first).to_be_visible()
        hint = journal.get_by_text("Scroll sideways for more →")
        expect(hint).to_be_visible()
        box = journal.locator(".scroll-x")
        expect(box).to_have_class(re.compile(r"\bmore\b"))  # the right edge fades
        box.evaluate("b => { b.scrollLeft = b.scrollWidth; }")  # at the end: nothing more to find
        expect(hint).to_have_count(0)
        expect(box).not_to_have_class(re.compile(r"\bmore\b"))
    finally:
        owner.set_viewport_size({"width": 1280, "height": 900})
    owner.goto(app.url + "/imports")  # on a desktop the journal fits: no hint
    expect(owner.locator("#journal tbody tr").first).to_be_visible()
    expect(owner.get_by_text("Scroll sideways for more →")).to_have_count(0)


def test_invite_a_second_user_who_accepts(owner: Any, app: App, browser: Any) -> None:
    owner.get_by_role("navigation", name="Main").get_by_role("link", name="Family").click()
    # with no group yet, a sentence says what a family group is for
    intro = owner.locator("#family-intro")
    expect(intro).to_contain_text("A family group puts your household's investments side by side")
    owner.get_by_label("New group name").fill("The Raos")
    owner.get_by_role("button", name="Create group").click()
    expect(owner.get_by_role("heading", name=re.compile("The Raos"))).to_be_visible()
    expect(owner.locator("#family-intro")).to_have_count(0)
    owner.get_by_label("Invite by email").fill(MEMBER)
    owner.get_by_role("button", name="Invite", exact=True).click()
    expect(owner.get_by_text(f"Invited: {MEMBER}")).to_be_visible()

    member_ctx = app.context(browser, MEMBER, viewport={"width": 390, "height": 844})
    try:
        member = member_ctx.new_page()
        member.goto(app.url + "/family")
        invitations = member.locator("#invitations")
        expect(invitations).to_contain_text("The Raos")
        invitations.get_by_role("button", name="Accept").click()
        expect(member.get_by_role("heading", name=re.compile("The Raos"))).to_be_visible()
        expect(member.locator("[data-group] table").first).to_contain_text(OWNER)
    finally:
        member_ctx.close()
    owner.reload()
    expect(owner.locator("[data-group]").first).to_contain_text(MEMBER)
