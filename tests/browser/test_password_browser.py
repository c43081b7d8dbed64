"""Setting a password in the web app takes the emailed code (issue 15 item 10): the Broker page's form asks
for it, sends it, and the new password then signs in; a guessable one is refused with the API's reason."""

from __future__ import annotations

from typing import Any

import requests
from playwright.sync_api import expect

from tests.browser.conftest import App

USER = "password.setter@example.com"


def test_set_a_password_with_the_emailed_code(browser: Any, app: App) -> None:
    ctx = app.context(browser, USER)
    page = ctx.new_page()
    page.goto(app.url + "/broker")
    form = page.get_by_role("form", name="Password")
    sent = app.mail_count()
    form.get_by_role("button", name="Email me a code").click()
    code = app.mail_code(USER, sent)
    form.get_by_label("Code from the email").fill(code)
    form.get_by_label("New password").fill("password1234")  # guessable: the API says why
    form.get_by_role("button", name="Save password").click()
    expect(page.get_by_text("harder password", exact=False).first).to_be_visible()
    form.get_by_label("Code from the email").fill(code)  # refused before the code was used: it still works
    form.get_by_label("New password").fill("velvet otter maple harbor")
    form.get_by_role("button", name="Save password").click()
    expect(page.get_by_text("Password saved", exact=False).first).to_be_visible()
    login = {"email": USER, "password": "velvet otter maple harbor"}
    r = requests.post(app.url + "/api/auth/password-login", json=login, timeout=30)
    assert r.status_code == 200, r.text
    ctx.close()
