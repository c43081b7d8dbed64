"""CSRF (issue 15 item 8): a page of a sibling site (same site, other subdomain: SameSite=Lax does not stop
it) can make the browser post a form with the user's session cookie, and body-less routes took any content
type; so every cookie-authenticated unsafe request needs a sign that it came from the app itself."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def browser(api: Any) -> Any:
    """A signed-in browser whose requests carry the cookie but none of the app's headers."""
    api.login()
    del api.headers["X-Requested-With"]
    return api


def _strategy(c: Any) -> int:
    r = c.post("/api/strategies", json={"name": "mine", "base_model": "sma_crossover"})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


@pytest.mark.parametrize("headers", [
    {},
    {"content-type": "application/x-www-form-urlencoded"},
    {"content-type": "text/plain"},
    {"origin": "https://evil.example"},
    {"origin": "null"},
    {"sec-fetch-site": "cross-site"},
    {"sec-fetch-site": "same-site"},
])
def test_a_cross_site_post_with_the_cookie_is_refused_and_changes_nothing(browser: Any,
                                                                          headers: dict[str, str]) -> None:
    sid = _strategy(browser)
    r = browser.post(f"/api/strategies/{sid}/share", content=b"x=1" if "content-type" in headers else None,
                     headers=headers)
    assert r.status_code == 403 and "X-Requested-With" in r.json()["detail"]
    assert browser.get(f"/api/strategies/{sid}").json()["is_public"] is False
    assert browser.post("/api/auth/agent-key", headers=headers).status_code == 403
    assert browser.get("/api/auth/agent-key").status_code == 404  # no key was made
    assert browser.delete(f"/api/strategies/{sid}", headers=headers).status_code == 403


@pytest.mark.parametrize("headers", [
    {"x-requested-with": "tradertape"},
    {"sec-fetch-site": "same-origin"},
    {"sec-fetch-site": "none"},
    {"origin": "http://testserver"},  # the Host it was reached at
    {"origin": "http://127.0.0.1:8000"},  # the configured base URL
])
def test_the_apps_own_requests_pass(browser: Any, headers: dict[str, str]) -> None:
    sid = _strategy(browser)
    r = browser.post(f"/api/strategies/{sid}/share", headers=headers)
    assert r.status_code == 200 and r.json()["is_public"] is True


def test_a_json_body_passes_and_bearer_keys_are_exempt(browser: Any) -> None:
    key = browser.post("/api/auth/agent-key", headers={"x-requested-with": "tradertape"}).json()["key"]
    # a JSON content type cannot be sent cross-site without a CORS preflight
    assert browser.post("/api/strategies", json={"name": "j", "base_model": "sma_crossover"}).status_code == 201
    # the agent's key authenticates alone, cookie or not
    r = browser.post("/api/agent/session-invalid", headers={"authorization": f"Bearer {key}"})
    assert r.status_code != 403, r.text


def test_signed_out_requests_are_not_affected(api: Any) -> None:
    del api.headers["X-Requested-With"]
    assert api.post("/api/auth/magic-link", json={"email": "a@example.com"}).status_code == 200
    assert api.post("/api/auth/logout").status_code == 200
