"""The guides are served read-only at /help (issue 22: the web app's Help menu): every guide in docs/, its
headings carrying the anchors its links name, raw HTML shown as text, nothing else of the disk reachable."""

from __future__ import annotations

import re
from typing import Any

from api.web import guides as served
from tests.docs.guides import guides


def test_every_guide_is_listed_and_served_with_its_anchors(api: Any) -> None:
    listed = api.get("/help/guides.json").json()
    assert [g["href"] for g in listed] == [f"/help/{p.name}" for p in guides()]
    assert {"href": "/help/STRATEGIES.md", "title": "Strategies guide"} in listed
    r = api.get("/help", follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"] == listed[0]["href"]
    page = api.get("/help/BACKTESTING.md")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    text = page.text
    assert '<h2 id="the-fill-model">' in text  # STRATEGIES.md links BACKTESTING.md#the-fill-model
    assert '<a href="STRATEGIES.md#exit-rules">' in text  # relative: /help/STRATEGIES.md#exit-rules
    assert "<table>" in text and "<script" not in text
    assert 'href="../README.md' not in text  # a file the app does not serve: its text only


def test_raw_html_in_a_guide_is_text(monkeypatch: Any, tmp_path: Any, api: Any) -> None:
    (tmp_path / "EVIL.md").write_text("# Evil\n\n<script>alert(1)</script> <img src=x onerror=alert(1)>\n"
                                      "[x](javascript:alert(1))\n", encoding="utf-8")
    monkeypatch.setattr(served, "_CANDIDATES", (tmp_path,))
    text = api.get("/help/EVIL.md").text
    body = text.split('<main id="main" class="page guide-text">', 1)[1]
    assert "<script" not in body and "<img" not in body and "href=\"javascript:" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body


def test_only_listed_guides_are_served(api: Any) -> None:
    assert api.get("/help/NOPE.md").json() == {"detail": "No such guide"}
    for path in ("/help/NOPE.md", "/help/..%2Fpyproject.toml", "/help/..%2FREADME.md", "/help/img",
                 "/help/%2Fetc%2Fpasswd"):
        r = api.get(path)
        assert r.status_code == 404 and set(r.json()) == {"detail"}, path
    assert re.fullmatch(r"[\w-]+", served.slug("What is `next_open`? (and *limit*)"))
