"""The bell, the notification list (live push, mark read) and Settings → Notifications in Chromium,
against a real `tradertape serve` (the notifier runs in it)."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import App
from tests.support.brokerfiles import trade, tradebook_xlsx

USER = "meera.notify@example.com"


@pytest.fixture(scope="module")
def page(browser: Any, app: App) -> Any:
    ctx = app.context(browser, USER, viewport={"width": 1280, "height": 900})
    p = ctx.new_page()
    yield p
    ctx.close()


def test_an_import_rings_the_bell_live_and_is_read_from_the_list(page: Any, app: App, tmp_path: Path) -> None:
    page.goto(app.url + "/notifications")
    expect(page.get_by_role("heading", name="Notifications")).to_be_visible()
    expect(page.locator(".bell-count")).to_have_count(0)
    book = tmp_path / "tradebook.xlsx"
    book.write_bytes(tradebook_xlsx([trade("INFY", "2024-01-10", "buy", 100, 1500.0, "N1")]))
    s = app.session(USER)  # the same account, through the API: the page hears of it by the push
    with book.open("rb") as fh:
        r = s.post(app.url + "/api/uploads/tradebook", files={"files[]": ("tradebook.xlsx", fh)})
    assert r.status_code == 200, r.text
    expect(page.locator(".bell-count")).to_have_text("1", timeout=20_000)
    item = page.locator("#notification-list > li").first
    expect(item).to_contain_text("Import finished")
    expect(item).to_contain_text("1 imported")
    expect(item).to_have_class("unread")
    badge = item.locator(".badge", has_text="email:")
    expect(badge).to_have_text("email: sent", timeout=20_000)
    # a delivery recorded sent whose mail server never answered: unconfirmed, and the tooltip says what follows
    error = "in doubt, sent again as a possible repeat after 60 s: SMTPServerDisconnected: Connection closed"
    with contextlib.closing(sqlite3.connect(app.var / "tradertape.db")) as db, db:
        db.execute("UPDATE notification_deliveries SET last_error = ? WHERE channel = 'email' AND status = 'sent' AND "
                   "notification_id = (SELECT max(n.id) FROM notifications n JOIN rm_accounts a ON a.id = n.account_id "
                   "WHERE n.kind = 'import_finished' AND a.email = ?)", (error, USER))
    page.reload()
    expect(badge).to_have_text("email: sent (unconfirmed)")
    expect(badge).to_have_attribute("title", error)
    expect(badge).not_to_have_class("badge good")
    item.get_by_role("button", name="Mark read").click()
    expect(page.locator(".bell-count")).to_have_count(0)
    expect(page.locator("#notification-list > li").first).to_have_class("read")
    page.get_by_role("link", name="Unread").click()
    expect(page.get_by_text("No notifications unread.")).to_be_visible()


def test_settings_switch_a_channel_and_quiet_hours(page: Any, app: App) -> None:
    page.goto(app.url + "/settings/notifications")
    box = page.get_by_label("Import finished: email")
    expect(box).to_be_checked()
    box.uncheck()
    page.get_by_label("Hold email and Telegram messages during quiet hours", exact=False).check()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Notification settings saved.")).to_be_visible()
    s = app.session(USER)
    prefs = s.get(app.url + "/api/notifications/preferences").json()
    assert prefs["kinds"]["import_finished"]["email"] is False
    assert prefs["quiet_hours"] == {"start": "22:00", "end": "07:00"}
    page.reload()
    expect(page.get_by_label("Import finished: email")).not_to_be_checked()


def test_telegram_boxes_are_off_without_a_bot_and_every_channel_fits_a_phone(page: Any, app: App) -> None:
    page.goto(app.url + "/settings/notifications")
    # this server has no Telegram bot token: the boxes cannot be ticked, and the page says why
    box = page.get_by_label("Import finished: telegram")
    expect(box).to_be_disabled()
    expect(box).not_to_be_checked()
    expect(page.locator("#telegram-off")).to_contain_text("Telegram is not set up on this server")
    expect(page.get_by_label("Import finished: email")).to_be_enabled()
    page.set_viewport_size({"width": 390, "height": 844})
    try:
        page.reload()
        for channel in ("in_app", "email", "telegram"):  # no column off the right edge of a phone
            expect(page.get_by_label(f"Import finished: {channel}")).to_be_in_viewport(ratio=1)
        expect(page.locator("#notification-settings th", has_text="Telegram")).to_be_in_viewport(ratio=1)
    finally:
        page.set_viewport_size({"width": 1280, "height": 900})
