"""/api/docs in a real browser: Swagger UI renders from the server's own files under the app's
Content-Security-Policy (no CSP violation, no request leaves the server), and "Try it out" works signed in
(same-origin requests that also carry X-Requested-With: the CSRF rule lets them through); its Authorize button
names the two credentials (the session cookie and the agent key)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from tests.browser.conftest import App


def test_swagger_ui_renders_offline_under_the_csp_and_can_call_the_api(browser: Any, app: App) -> None:
    ctx = app.context(browser, "docs.reader@example.com")
    page = ctx.new_page()
    console: list[str] = []
    hosts: set[str] = set()
    page.on("console", lambda m: console.append(m.text))
    page.on("request", lambda r: hosts.add(urlsplit(r.url).netloc))
    page.goto(app.url + "/api/docs")
    page.wait_for_selector(".swagger-ui .opblock", timeout=30_000)
    assert page.locator(".swagger-ui .opblock").count() > 50
    assert not [m for m in console if "Content Security Policy" in m or "Refused" in m], console
    assert hosts == {urlsplit(app.url).netloc}, hosts  # nothing from a CDN
    # the security schemes give an Authorize button offering the session cookie and the agent key
    page.click(".swagger-ui .btn.authorize")
    page.wait_for_selector(".swagger-ui .modal-ux", timeout=10_000)
    dialog = page.locator(".swagger-ui .modal-ux").inner_text()
    assert "kite_session" in dialog and "agent_key" in dialog, dialog
    page.click(".swagger-ui .modal-ux .close-modal")
    # an unsafe call from the page, signed in by the cookie: accepted (the page sends X-Requested-With)
    status = page.evaluate("""async () => {
        const r = await window.ui.fn.fetch({url: '/api/auth/agent-key', method: 'POST', headers: {}});
        return r.status;
    }""")
    assert status == 201
    ctx.close()
