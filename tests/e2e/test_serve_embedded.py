"""`tradertape serve` as a real process in the embedded default, driven over HTTP with requests."""

from __future__ import annotations

from pathlib import Path

import requests

from tests.support.processes import Server, health, otp_from_mail_dir, tt_env

_otp_from_mail_dir = otp_from_mail_dir


def test_new_user_logs_in_with_emailed_otp_and_manages_strategies(tmp_path: Path) -> None:
    server = Server(tt_env(tmp_path), tmp_path / "serve.log").start()
    try:
        s = requests.Session()
        s.headers["X-Requested-With"] = "tradertape"  # as the web app sends (CSRF, api/csrf.py)
        base = server.url
        assert s.get(base + "/api/docs").status_code == 200
        assert s.get(base + "/api/openapi.json").json()["info"]["title"] == "TraderTape API"
        addr = "new.user@example.com"
        assert s.post(base + "/api/auth/magic-link", json={"email": addr}).status_code == 200
        otp = _otp_from_mail_dir(tmp_path / "var" / "mail", addr)
        me = s.post(base + "/api/auth/verify-link", json={"email": addr, "otp": otp})
        assert me.status_code == 200 and me.json()["email"] == addr
        templates = s.get(base + "/api/strategies", params={"is_template": True}).json()
        dip = next(t for t in templates if t["base_model"] == "v3_dip_buyer")
        fork = s.post(base + f"/api/strategies/{dip['id']}/fork").json()
        body = {k: fork[k] for k in ("name", "description", "base_model", "entry_rules", "exit_rules", "params",
                                     "is_active")}
        body["name"] = "My dip buyer"
        assert s.put(base + f"/api/strategies/{fork['id']}", json=body).status_code == 200
        assert s.get(base + f"/api/strategies/{fork['id']}").json()["name"] == "My dip buyer"
        mine = s.get(base + "/api/strategies", params={"is_template": False})
        assert [x["name"] for x in mine.json()] == ["My dip buyer"] and mine.headers["X-Total-Count"] == "1"
        h = health(base)
        assert h["transport"]["kind"] == "embedded" and h["projection_lag"] == 0
        # errors are sanitized JSON with a request id header
        r = s.get(base + "/api/strategies/not-a-number")
        assert r.status_code == 422 and "x-request-id" in r.headers
    finally:
        server.stop()
    # the secret key file is generated only in development; here it came from the environment
    assert not (tmp_path / "var" / "secret.key").exists()
