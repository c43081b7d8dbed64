"""Kite connection over HTTP against the Kite stub and the official client: credentials encrypted at
rest (raw database bytes / pg_dump scanned), rotation, the login hand-over through the agent API,
broker status, and the live-data proxy (cache, single flight, error mapping)."""

from __future__ import annotations

import glob
import subprocess
import threading
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from infra.auth.secrets import SecretBox, SqlBrokerSecrets
from infra.kite.client import KiteBroker
from tests.support.kite_stub import KiteState, kite_stub

SECRET = "stub-secret-0123456789abcdef"


def _dump(platform: Any, database_url: str) -> bytes:
    """Everything the database holds, as an operator's dump would have it."""
    if database_url.startswith("sqlite"):
        path = database_url.split("///", 1)[1]
        return b"".join(Path(p).read_bytes() for p in glob.glob(path + "*"))
    pg_dump = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_dump"))[-1]
    return subprocess.run([pg_dump, "--no-owner", database_url], check=True, capture_output=True).stdout


def kite_state(api_or_url: Any) -> str:
    """The one-time state of a Kite login started with GET /api/auth/kite/login-url (Kite echoes its
    `redirect_params` to the callback)."""
    url = api_or_url if isinstance(api_or_url, str) else api_or_url.get("/api/auth/kite/login-url").json()["login_url"]
    return parse_qs(parse_qs(urlsplit(url).query)["redirect_params"][0])["state"][0]


def _connect(api: Any, root: str, state: KiteState) -> tuple[str, dict[str, Any]]:
    """Save credentials, log in (the stub's request token through the callback), exchange as the agent
    does. Returns (agent key, status)."""
    r = api.post("/api/auth/kite-credentials", json={"api_key": state.api_key, "api_secret": state.api_secret})
    assert r.status_code == 200, r.text
    assert r.json()["api_secret"].startswith("********") and state.api_secret not in r.text
    url = api.get("/api/auth/kite/login-url").json()["login_url"]
    assert url.startswith(f"https://kite.zerodha.com/connect/login?api_key={state.api_key}&v=3&redirect_params=")
    rt = state.issue_request_token()
    r = api.get("/api/auth/kite/callback", params={"request_token": rt, "status": "success", "action": "login",
                                                   "state": kite_state(url)})
    assert r.status_code == 200, r.text
    key = api.post("/api/auth/agent-key").json()["key"]
    agent = {"Authorization": f"Bearer {key}"}
    pending = api.get("/api/agent/pending-token", headers=agent)
    assert pending.status_code == 200 and pending.json()["request_token"] == rt
    assert api.get("/api/agent/pending-token", headers=agent).status_code == 204  # single use
    kite = KiteBroker(pending.json()["api_key"], None, root=root)
    session = kite.exchange_request_token(rt, checksum=pending.json()["checksum"])
    r = api.post("/api/agent/access-token", headers=agent,
                 json={"access_token": session["access_token"], "user_id": session["user_id"]})
    assert r.status_code == 200, r.text
    return key, session


def test_credentials_and_tokens_are_encrypted_at_rest_and_rotate(api_factory: Any, database_url: str) -> None:
    with kite_stub(KiteState(api_secret=SECRET)) as (root, state):
        api = api_factory(database_url, kite_api_root=root)
        api.login()
        _, session = _connect(api, root, state)
        pending_rt = state.issue_request_token()
        api.get("/api/auth/kite/callback", params={"request_token": pending_rt, "status": "success",
                                                   "state": kite_state(api)})
        status = api.get("/api/auth/status").json()
        assert status["connected"] is True and status["user_id"] == "AB1234" and status["broker"] == "kite"
        assert status["source"] == "agent" and status["expires_at"].endswith("T06:00:00+05:30")  # 06:00 IST
        dump = _dump(api.platform, database_url)
        assert len(dump) > 10_000
        for plaintext in (SECRET, session["access_token"], pending_rt):
            assert plaintext.encode() not in dump, f"{plaintext!r} found in the database dump"
        # rotation: a new first key re-encrypts; the old key can then be dropped
        store: SqlBrokerSecrets = api.platform.bus.deps.secrets
        old = api.platform.settings.secret_key_list
        new_key = "rotated-secret-key-0123456789-abcdefghijklmn"
        rotated = SqlBrokerSecrets(store.db, SecretBox([new_key, *old]))
        assert rotated.rotate_all() == 3
        only_new = SqlBrokerSecrets(store.db, SecretBox([new_key]))
        from datetime import UTC, datetime

        account_id = api.get("/api/auth/me").json()["id"]
        assert only_new.get(account_id, "kite_api_secret", datetime.now(UTC)) == SECRET
        with pytest.raises(RuntimeError, match="cannot be decrypted"):
            store.get(account_id, "kite_api_secret", datetime.now(UTC))


def test_live_data_proxy_caches_maps_errors_and_survives_token_expiry(api_factory: Any) -> None:
    with kite_stub() as (root, state):
        api = api_factory(kite_api_root=root)
        api.login()
        r = api.get("/api/portfolio/holdings")
        assert r.status_code == 400 and "Broker session not connected" in r.json()["detail"]
        assert api.get("/api/auth/status").json()["connected"] is False
        key, _ = _connect(api, root, state)
        state.add_holding("INFY", 10, 1400.0)
        # a burst of concurrent requests makes one upstream call
        results: list[Any] = []
        threads = [threading.Thread(target=lambda: results.append(api.get("/api/portfolio/holdings")))
                   for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert [r.status_code for r in results] == [200] * 16
        assert results[0].json()[0]["tradingsymbol"] == "INFY" and results[0].json()[0]["quantity"] == 10
        assert state.count("GET /portfolio/holdings") == 1
        # agent keys may read the same account's live data
        assert api.get("/api/portfolio/holdings", headers={"Authorization": f"Bearer {key}"}).status_code == 200
        assert api.get("/api/portfolio/positions").json() == {"net": [], "day": []}
        assert api.get("/api/portfolio/margins").json()["equity"]["net"] == 99725.05
        # Kite's rate limit -> 429; not cached, the next call goes through
        state.rate_limit_next = 1
        r = api.get("/api/portfolio/orders")
        assert r.status_code == 429 and "rate limit" in r.json()["detail"]
        assert api.get("/api/portfolio/orders").status_code == 200
        # Kite rejects the token: 502 with Kite's message, broker session disconnected, user session kept
        state.revoke()
        api.app.state.broker_proxy.forget(api.get("/api/auth/me").json()["id"])
        r = api.get("/api/portfolio/margins")
        assert r.status_code == 502 and "Incorrect `api_key` or `access_token`" in r.json()["detail"]
        me = api.get("/api/auth/me")
        assert me.status_code == 200 and me.json()["broker"]["connected"] is False
        assert api.get("/api/auth/status").json()["connected"] is False
        r = api.get("/api/portfolio/holdings")
        assert r.status_code == 400 and "not connected" in r.json()["detail"]


def test_kite_login_refusals(api_factory: Any) -> None:
    api = api_factory()
    api.login()
    assert api.get("/api/auth/kite-credentials").status_code == 404
    assert api.get("/api/auth/kite/login-url").status_code == 400
    r = api.get("/api/auth/kite/callback", params={"request_token": "x", "status": "success"})
    assert r.status_code == 400 and "login-url" in r.json()["detail"]
    api.post("/api/auth/kite-credentials", json={"api_key": "k1", "api_secret": "s" * 20})
    r = api.get("/api/auth/kite/callback", params={"request_token": "x", "status": "cancelled",
                                                   "state": kite_state(api)})
    assert r.status_code == 400
    assert api.post("/api/auth/kite-credentials", json={"api_key": "bad key!", "api_secret": "x"}).status_code == 422
    key = api.post("/api/auth/agent-key").json()["key"]
    agent = {"Authorization": f"Bearer {key}"}
    assert api.get("/api/agent/pending-token", headers=agent).status_code == 204
    r = api.post("/api/agent/access-token", headers=agent,
                 json={"access_token": "t", "expires_at": "2001-01-01T00:00:00Z"})
    assert r.status_code == 400
    # the credentials endpoints are for the signed-in user; agent keys only read
    assert api.post("/api/auth/kite-credentials", headers=agent,
                    json={"api_key": "k2", "api_secret": "s" * 20}).status_code == 403
    assert api.get("/api/auth/kite-credentials", headers=agent).json()["api_key"] == "k1"


def test_an_expired_access_token_reads_as_disconnected(api_factory: Any) -> None:
    from datetime import UTC, datetime, timedelta

    from projections.broker import broker_status

    with kite_stub() as (root, state):
        api = api_factory(kite_api_root=root)
        api.login()
        _connect(api, root, state)
        account_id = api.get("/api/auth/me").json()["id"]
        store: SqlBrokerSecrets = api.platform.bus.deps.secrets
        after_expiry = datetime.now(UTC) + timedelta(days=2)
        assert store.get(account_id, "kite_access_token", datetime.now(UTC)) is not None
        assert store.get(account_id, "kite_access_token", after_expiry) is None
        with api.platform.db.read() as conn:
            assert broker_status(conn, account_id)["connected"] is True
            assert broker_status(conn, account_id, now=after_expiry)["connected"] is False
        # the proxy reads the token the same way: once it has expired, there is no session
        now = datetime.now(UTC)
        store.put(account_id, "kite_access_token", "old-token", now - timedelta(hours=2), now - timedelta(seconds=1))
        r = api.get("/api/portfolio/holdings")
        assert r.status_code == 400 and "not connected" in r.json()["detail"]


def test_a_kite_callback_needs_the_state_of_a_login_this_account_started_and_only_once(api_factory: Any) -> None:
    """An attacker's request token planted through a link (no state, a guessed one, another account's, or one
    already used) is refused and nothing is recorded for the agent."""
    alice, mallory = api_factory(), api_factory()
    alice.login()
    mallory.login()
    for c in (alice, mallory):
        c.post("/api/auth/kite-credentials", json={"api_key": "k1", "api_secret": "s" * 20})
    key = alice.post("/api/auth/agent-key").json()["key"]
    agent = {"Authorization": f"Bearer {key}"}
    mallorys = kite_state(mallory)
    for params in ({}, {"state": "guessed"}, {"state": mallorys}):
        r = alice.get("/api/auth/kite/callback", params={"request_token": "planted", "status": "success", **params})
        assert r.status_code == 400 and "login-url" in r.json()["detail"]
    assert alice.get("/api/agent/pending-token", headers=agent).status_code == 204
    mine = kite_state(alice)
    ok = alice.get("/api/auth/kite/callback", params={"request_token": "real", "status": "success", "state": mine})
    assert ok.status_code == 200
    again = alice.get("/api/auth/kite/callback", params={"request_token": "x2", "status": "success", "state": mine})
    assert again.status_code == 400
    assert alice.get("/api/agent/pending-token", headers=agent).json()["request_token"] == "real"
