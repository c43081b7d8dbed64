"""Session expiry returns to sign-in and back to where the user was; sign out."""

from __future__ import annotations

import re
from typing import Any

import requests
from playwright.sync_api import expect

from tests.browser.conftest import App

USER = "expiring@example.com"


def test_an_ended_session_returns_to_sign_in_and_back(browser: Any, app: App) -> None:
    ctx = app.context(browser, USER)
    try:
        page = ctx.new_page()
        page.goto(app.url + "/risk")
        expect(page.get_by_role("heading", name="Risk")).to_be_visible()
        # the session ends server-side (signed out elsewhere)
        cookie = next(c for c in ctx.cookies() if c["name"] == "kite_session")
        r = requests.post(app.url + "/api/auth/logout", cookies={"kite_session": cookie["value"]},
                          headers={"X-Requested-With": "tradertape"})
        assert r.status_code == 200
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Positions").click()
        expect(page).to_have_url(re.compile(r"/signin\?next=%2Fpositions"))
        expect(page.get_by_role("status").filter(has_text="sign in again")).to_be_visible()
        page.get_by_label("Email", exact=True).fill(USER)
        n = app.mail_count()
        page.get_by_role("button", name="Email me a code").click()
        page.get_by_label("6-digit code").fill(app.mail_code(USER, n))
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(app.url + "/positions")
        page.get_by_role("button", name="Sign out").click()
        expect(page).to_have_url(app.url + "/signin")
        page.goto(app.url + "/")
        expect(page).to_have_url(re.compile(r"/signin\?next=%2F$"))
    finally:
        ctx.close()
