"""A cross-site form post is refused: a page served from another origin on the same host (so the browser's
SameSite=Lax cookie *is* sent: ports do not make another site) posts a form to the API; the API answers 403
and nothing changes."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import App

USER = "csrf.target@example.com"


@pytest.fixture
def evil_site(tmp_path: Path, app: App) -> Iterator[tuple[str, Any]]:
    api = app.session(USER)
    template = api.get(app.url + "/api/strategies", params={"is_template": True}).json()[0]
    mine = api.post(app.url + f"/api/strategies/{template['id']}/fork", json={"name": "Private idea"}).json()
    (tmp_path / "evil.html").write_text(
        f'<!doctype html><form method="post" action="{app.url}/api/strategies/{mine["id"]}/share">'
        '<input type="hidden" name="x" value="1"><button type="submit">Win a prize</button></form>')
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/evil.html", (api, mine)
    finally:
        server.shutdown()
        server.server_close()


def test_a_cross_site_form_post_is_refused(browser: Any, app: App, evil_site: tuple[str, Any]) -> None:
    url, (api, mine) = evil_site
    ctx = app.context(browser, USER)
    try:
        page = ctx.new_page()
        page.goto(url)
        with page.expect_response(lambda r: r.url.endswith("/share")) as answer:
            page.get_by_role("button", name="Win a prize").click()
        assert answer.value.status == 403
        assert "Cross-site request refused" in answer.value.json()["detail"]
        # the browser did send the session cookie (same site), and the strategy is unchanged
        assert "kite_session=" in (answer.value.request.header_value("cookie") or "")
        assert api.get(app.url + f"/api/strategies/{mine['id']}").json()["is_public"] is False
    finally:
        ctx.close()
