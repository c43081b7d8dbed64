"""The Help menu (issue 22) lists the guides of docs/ and opens them read-only; a guide's links to another
guide's heading land on that heading; the way back to the app is one click."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.browser.conftest import App


def test_help_menu_opens_the_guides_and_their_links_work(browser: Any, app: App) -> None:
    ctx = app.context(browser, "reader@example.com", viewport={"width": 390, "height": 844})
    try:
        page = ctx.new_page()
        page.goto(app.url + "/strategies")
        expect(page.get_by_role("heading", name="Strategies", exact=True)).to_be_visible()
        page.get_by_text("Help", exact=True).click()
        menu = page.locator("details.help-menu")
        expect(menu.get_by_role("link")).to_have_count(9)  # every docs/*.md
        menu.get_by_role("link", name="Strategies guide").click()
        expect(page).to_have_url(app.url + "/help/STRATEGIES.md")
        expect(page.get_by_role("heading", name="Strategies guide", level=1)).to_be_visible()
        # a link into another guide's section (the fill model) lands on that heading
        page.locator('a[href="BACKTESTING.md#the-fill-model"]').first.click()
        expect(page).to_have_url(app.url + "/help/BACKTESTING.md#the-fill-model")
        expect(page.locator("h2#the-fill-model")).to_be_in_viewport()
        # the other guides are one tap away on a phone, and the app is one tap back
        guides = page.get_by_role("navigation", name="Guides")
        expect(guides.get_by_role("link", name="Strategies guide")).to_be_visible()
        page.get_by_role("link", name="TraderTape", exact=True).click()
        expect(page.get_by_role("heading", name="Home")).to_be_visible()
    finally:
        ctx.close()


def test_a_wide_table_in_a_guide_scrolls_in_its_own_box_on_a_phone(browser: Any, app: App) -> None:
    ctx = app.context(browser, "wide.reader@example.com", viewport={"width": 390, "height": 844})
    try:
        page = ctx.new_page()
        page.goto(app.url + "/help/IMPORTING.md")
        table = page.locator("main table").first
        expect(table).to_be_visible()
        # the page itself does not scroll sideways; a table wider than the screen scrolls inside its box
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        boxes = page.locator("main table").evaluate_all(
            "ts => ts.map(t => [t.getBoundingClientRect().right, getComputedStyle(t).overflowX,"
            " t.scrollWidth > t.clientWidth])")
        assert all(right <= 390 and overflow == "auto" for right, overflow, _ in boxes), boxes
        assert any(wide for *_, wide in boxes), "IMPORTING.md has a table wider than a phone"
        # its cut-off edge is shaded (a scroll shadow), so it shows there is more
        assert "gradient" in table.evaluate("t => getComputedStyle(t).backgroundImage")
    finally:
        ctx.close()
