"""Security at the edge (issue 15 item 14): headers, private SQLite files, secure cookies in production,
client IPs only through trusted proxies, security events in the log, and the tick WebSocket's Origin check and
per-account connection cap."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from starlette.websockets import WebSocketDisconnect

from api.security_headers import CSP
from infra.config.settings import Settings
from tests.support.live import make_bars


def test_security_headers_and_no_store_on_authenticated_json(api: Any) -> None:
    anon = api.get("/api/health")
    assert anon.headers["x-content-type-options"] == "nosniff"
    assert anon.headers["referrer-policy"] == "no-referrer"
    assert anon.headers["content-security-policy"] == CSP
    assert "script-src 'self';" in CSP and "frame-ancestors 'none'" in CSP
    api.login()
    me = api.get("/api/auth/me")
    assert me.status_code == 200 and me.headers["cache-control"] == "no-store"
    assert me.headers["x-frame-options"] == "DENY"


def test_sqlite_files_are_readable_by_their_owner_only(api: Any) -> None:
    api.login()
    db = Path(api.platform.settings.database_url.split("///", 1)[1])
    for path in [db, *db.parent.glob(db.name + "-*")]:
        mode = stat.S_IMODE(os.stat(path).st_mode)
        assert mode == 0o600, (path, oct(mode))


def test_the_session_cookie_is_secure_by_default_in_production(monkeypatch: Any, tmp_path: Path) -> None:
    monkeypatch.delenv("TRADERTAPE_COOKIE_SECURE", raising=False)
    key = "k" * 40
    assert Settings(env="production", secret_keys=key, var_dir=tmp_path).cookie_secure is True
    assert Settings(env="development", var_dir=tmp_path).cookie_secure is False
    assert Settings(env="production", secret_keys=key, cookie_secure=False).cookie_secure is False
    monkeypatch.setenv("TRADERTAPE_ENV", "production")
    monkeypatch.setenv("TRADERTAPE_SECRET_KEYS", key)
    assert Settings().cookie_secure is True
    monkeypatch.setenv("TRADERTAPE_COOKIE_SECURE", "false")
    assert Settings().cookie_secure is False
    compose = (Path(__file__).parents[2] / "docker-compose.yml").read_text()
    assert "TRADERTAPE_COOKIE_SECURE: ${TRADERTAPE_COOKIE_SECURE:-true}" in compose


def _security_lines(caplog: Any) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "tradertape.security"]


def test_forwarded_for_is_believed_only_from_a_trusted_proxy(api_factory: Any, caplog: Any) -> None:
    caplog.set_level(logging.WARNING, "tradertape.security")
    untrusted = api_factory()
    untrusted.get("/api/auth/me", headers={"x-forwarded-for": "203.0.113.9", "user-agent": "probe/1"})
    line = _security_lines(caplog)[-1]
    assert "unauthorized" in line and "ip=testclient" in line and "probe/1" in line


def test_a_trusted_proxy_gives_the_client_ip(api_factory: Any, caplog: Any) -> None:
    caplog.set_level(logging.WARNING, "tradertape.security")
    api = api_factory(trusted_proxies="testclient")
    api.get("/api/auth/me", headers={"x-forwarded-for": "203.0.113.9"})
    assert "ip=203.0.113.9" in _security_lines(caplog)[-1]


def test_failed_logins_are_logged_without_secrets(api: Any, caplog: Any) -> None:
    caplog.set_level(logging.WARNING, "tradertape.security")
    r = api.post("/api/auth/password-login", json={"email": "nobody@example.com", "password": "hunter2-secret"})
    assert r.status_code == 401
    lines = _security_lines(caplog)
    assert any("login_failed" in x and "nobody@example.com" in x for x in lines), lines
    assert not any("hunter2" in x for x in lines)


@pytest.fixture
def ticks_api(api_factory: Any) -> Any:
    api = api_factory(tick_feed="simulated", tick_always_open=True, tick_interval=0.05, ws_max_per_account=2)
    make_bars(api.platform.settings.data_dir)
    api.login()
    return api


def test_websocket_from_a_foreign_origin_is_refused(ticks_api: Any) -> None:
    with pytest.raises(WebSocketDisconnect) as refused:
        with ticks_api.websocket_connect("/api/ws/ticks", headers={"origin": "https://evil.example"}) as ws:
            ws.receive_text()
    assert refused.value.code == 1008
    with ticks_api.websocket_connect("/api/ws/ticks", headers={"origin": "http://testserver"}) as ws:
        assert json.loads(ws.receive_text())["type"] == "status"


def test_websocket_connections_per_account_are_capped(ticks_api: Any) -> None:
    with ticks_api.websocket_connect("/api/ws/ticks") as one, ticks_api.websocket_connect("/api/ws/ticks") as two:
        one.receive_text()
        two.receive_text()
        with pytest.raises(WebSocketDisconnect) as capped:
            with ticks_api.websocket_connect("/api/ws/ticks") as three:
                three.receive_text()
        assert capped.value.code == 1008 and "at most 2" in capped.value.reason
    with ticks_api.websocket_connect("/api/ws/ticks") as again:  # closed ones no longer count
        assert json.loads(again.receive_text())["type"] == "status"


def test_api_docs_are_served_from_local_assets_under_the_csp(api: Any) -> None:
    import re

    page = api.get("/api/docs")
    assert page.status_code == 200 and page.headers["content-security-policy"] == CSP
    html = page.text
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    assert scripts and all('src="/' in attrs and not body.strip() for attrs, body in scripts)  # no inline code
    assert "http://" not in html and "https://" not in html  # nothing from a CDN
    for src in re.findall(r'(?:src|href)="(/[^"]+)"', html):
        assert api.get(src).status_code == 200, src
    init = api.get("/api/docs/init.js").text
    assert '"/api/openapi.json"' in init and "X-Requested-With" in init
