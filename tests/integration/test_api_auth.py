"""Accounts and login over HTTP, with email through a real SMTP server on loopback."""

from __future__ import annotations

from typing import Any

from tests.conftest import unique_email


def test_magic_link_same_answer_for_known_and_unknown_emails(api: Any) -> None:
    known = unique_email()
    api.login(known)
    a = api.post("/api/auth/magic-link", json={"email": known})
    b = api.post("/api/auth/magic-link", json={"email": unique_email("nobody")})
    assert a.status_code == b.status_code == 200
    assert a.json() == b.json()


def test_otp_login_creates_account_and_sets_session_cookie(api: Any) -> None:
    addr = unique_email()
    api.post("/api/auth/magic-link", json={"email": addr})
    r = api.post("/api/auth/verify-link", json={"email": addr, "otp": api.inbox.last_otp(addr)})
    assert r.status_code == 200
    assert r.json()["email"] == addr
    cookie = r.headers["set-cookie"]
    assert "kite_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    me = api.get("/api/auth/me").json()
    assert me["id"] == r.json()["id"] and me["is_admin"] is False and me["broker"]["connected"] is False


def test_magic_link_token_is_single_use(api_factory: Any) -> None:
    api = api_factory()
    addr = unique_email()
    api.post("/api/auth/magic-link", json={"email": addr})
    token = api.inbox.last_token(addr)
    assert api.post("/api/auth/verify-link", json={"email": addr, "token": token}).status_code == 200
    other = api_factory()
    r = other.post("/api/auth/verify-link", json={"email": addr, "token": token})
    assert r.status_code == 400
    assert "request a new one" in r.json()["detail"]


def test_opening_a_sign_in_link_never_signs_in_by_itself(api_factory: Any) -> None:
    """Login CSRF: an attacker's link opened in the victim's browser must not sign it in to the attacker's
    account. Opening the link (old or new form) shows a page naming the account; only the page's own
    same-origin form POST signs in, and a cross-site POST of the same form is refused."""
    attacker, victim = api_factory(), api_factory()
    addr = unique_email("attacker")
    attacker.post("/api/auth/magic-link", json={"email": addr})
    token = attacker.inbox.last_token(addr)
    assert f"/link/sign-in?email={addr.replace('@', '%40')}&token={token}" in attacker.inbox.last_body(addr)
    old = victim.get("/api/auth/verify-link", params={"email": addr, "token": token}, follow_redirects=False)
    assert old.status_code == 303 and old.headers["location"].startswith("/link/sign-in?")
    page = victim.get(old.headers["location"])
    assert page.status_code == 200 and addr in page.text and 'method="post"' in page.text
    assert "set-cookie" not in page.headers and victim.get("/api/auth/me").status_code == 401
    form = {"email": addr, "token": token}
    for hostile in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}, {}):
        r = victim.post("/link/sign-in", data=form, headers=hostile, follow_redirects=False)
        assert r.status_code == 403 and "set-cookie" not in r.headers
    assert victim.get("/api/auth/me").status_code == 401
    r = victim.post("/link/sign-in", data=form, headers={"Origin": "http://testserver"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
    assert victim.get("/api/auth/me").json()["email"] == addr
    again = victim.post("/link/sign-in", data=form, headers={"Sec-Fetch-Site": "same-origin"})
    assert again.status_code == 400 and "request a new one" in again.text  # single use, an HTML answer


def test_the_sign_in_button_works_behind_a_proxy_at_the_configured_base_url(api_factory: Any) -> None:
    """Behind a reverse proxy the Host the server sees is not the browser's: the button's form POST is ours
    by the configured base URL's origin (a browser sends its host lower-cased, without a trailing slash).
    The same rule as the CSRF check's (api/csrf.py), so both accept the same requests."""
    victim = api_factory(base_url="https://Trade.Example.com/")
    addr = unique_email()
    victim.post("/api/auth/magic-link", json={"email": addr})
    form = {"email": addr, "token": victim.inbox.last_token(addr)}
    r = victim.post("/link/sign-in", data=form, headers={"Origin": "https://evil.example.com"}, follow_redirects=False)
    assert r.status_code == 403
    r = victim.post("/link/sign-in", data=form, headers={"Origin": "https://trade.example.com"},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
    assert victim.get("/api/auth/me").json()["email"] == addr


def test_wrong_otps_lock_the_code(api: Any) -> None:
    addr = unique_email()
    api.post("/api/auth/magic-link", json={"email": addr})
    good = api.inbox.last_otp(addr)
    wrong = f"{(int(good) + 1) % 1_000_000:06d}"
    details = [api.post("/api/auth/verify-link", json={"email": addr, "otp": wrong}).json()["detail"]
               for _ in range(5)]
    assert "locked" in details[-1]
    r = api.post("/api/auth/verify-link", json={"email": addr, "otp": good})
    assert r.status_code == 400  # the right code no longer works once locked


def test_expired_or_used_otp_is_400(api: Any) -> None:
    addr = unique_email()
    api.post("/api/auth/magic-link", json={"email": addr})
    otp = api.inbox.last_otp(addr)
    assert api.post("/api/auth/verify-link", json={"email": addr, "otp": otp}).status_code == 200
    assert api.post("/api/auth/verify-link", json={"email": addr, "otp": otp}).status_code == 400


def test_magic_link_rate_limited_per_email(api: Any) -> None:
    addr = unique_email()
    codes = [api.post("/api/auth/magic-link", json={"email": addr}).status_code for _ in range(7)]
    assert codes[:5] == [200] * 5
    assert codes[-1] == 429


def test_magic_link_bad_email_is_422(api: Any) -> None:
    r = api.post("/api/auth/magic-link", json={"email": "not-an-email"})
    assert r.status_code == 422
    assert isinstance(r.json()["detail"], list)


def password_code(api: Any, addr: str) -> str:
    """The emailed code that sets or changes a password (POST /api/auth/password/code)."""
    assert api.post("/api/auth/password/code").status_code == 200
    return str(api.inbox.last_otp(addr))


def test_password_set_login_change_and_generic_failure(api_factory: Any) -> None:
    api = api_factory()
    addr = unique_email()
    api.login(addr)
    assert api.post("/api/auth/password", json={"password": "short"}).status_code == 422
    r = api.post("/api/auth/password", json={"password": "correct horse battery", "otp": password_code(api, addr)})
    assert r.status_code == 200
    # changing needs the current password
    r = api.post("/api/auth/password", json={"password": "another good one", "otp": password_code(api, addr)})
    assert r.status_code == 400
    r = api.post("/api/auth/password", json={"password": "another good one", "otp": password_code(api, addr),
                                              "current_password": "correct horse battery"})
    assert r.status_code == 200
    fresh = api_factory()
    bad = fresh.post("/api/auth/password-login", json={"email": addr, "password": "correct horse battery"})
    unknown = fresh.post("/api/auth/password-login", json={"email": unique_email(), "password": "whatever123"})
    assert bad.status_code == unknown.status_code == 401
    assert bad.json() == unknown.json()
    ok = fresh.post("/api/auth/password-login", json={"email": addr, "password": "another good one"})
    assert ok.status_code == 200 and ok.json()["email"] == addr
    assert fresh.get("/api/auth/me").status_code == 200


def test_logout_revokes_the_session_server_side(api: Any) -> None:
    api.login()
    token = api.cookies.get("kite_session")
    assert api.post("/api/auth/logout").status_code == 200
    assert api.get("/api/auth/me").status_code == 401
    # replaying the old cookie does not work either
    api.cookies.set("kite_session", token)
    assert api.get("/api/auth/me").status_code == 401


def test_unauthenticated_is_401(api: Any) -> None:
    assert api.get("/api/auth/me").status_code == 401
    assert api.get("/api/strategies").status_code == 401
    api.cookies.set("kite_session", "forged")
    assert api.get("/api/strategies").status_code == 401


def test_agent_key_shown_once_used_as_bearer_and_revoked(api_factory: Any) -> None:
    api = api_factory()
    user = api.login()
    assert api.get("/api/auth/agent-key").status_code == 404
    r = api.post("/api/auth/agent-key")
    assert r.status_code == 201
    key = r.json()["key"]
    assert key.startswith("zt_") and len(key) > 30
    shown = api.get("/api/auth/agent-key").json()
    assert "key" not in shown and key.startswith(shown["prefix"]) and shown["last_used_at"] is None
    bot = api_factory()
    headers = {"Authorization": f"Bearer {key}"}
    assert bot.get("/api/auth/me", headers=headers).json()["id"] == user["id"]
    assert api.get("/api/auth/agent-key").json()["last_used_at"] is not None
    # read endpoints yes, user writes no
    assert bot.get("/api/strategies", headers=headers).status_code == 200
    w = bot.post("/api/strategies", json={"name": "x", "base_model": "sma_crossover"}, headers=headers)
    assert w.status_code == 403
    # regenerate: the old key dies
    new_key = api.post("/api/auth/agent-key").json()["key"]
    assert bot.get("/api/auth/me", headers=headers).status_code == 401
    assert bot.get("/api/auth/me", headers={"Authorization": f"Bearer {new_key}"}).status_code == 200
    assert api.delete("/api/auth/agent-key").status_code == 204
    assert bot.get("/api/auth/me", headers={"Authorization": f"Bearer {new_key}"}).status_code == 401
    assert api.delete("/api/auth/agent-key").status_code == 404


def test_admin_users_list_is_admin_only(api_factory: Any) -> None:
    admin_addr = unique_email("admin")
    api = api_factory(admin_emails=admin_addr)
    api.login()
    assert api.get("/api/auth/admin/users").status_code == 403
    admin = api_factory()
    me = admin.login(admin_addr)
    assert me["is_admin"] is True
    r = admin.get("/api/auth/admin/users", params={"limit": 1})
    assert r.status_code == 200 and len(r.json()) == 1
    assert int(r.headers["X-Total-Count"]) >= 2


def test_magic_link_rate_limited_per_ip_across_emails(api: Any) -> None:
    codes = [api.post("/api/auth/magic-link", json={"email": unique_email("ip")}).status_code for _ in range(32)]
    assert codes[:30] == [200] * 30
    assert codes[-1] == 429


def test_only_hashes_of_tokens_codes_and_sessions_are_stored(api: Any) -> None:
    import sqlalchemy as sa

    from infra.store.db import login_codes, sessions

    addr = unique_email()
    api.post("/api/auth/magic-link", json={"email": addr})
    token, otp = api.inbox.last_token(addr), api.inbox.last_otp(addr)
    api.post("/api/auth/verify-link", json={"email": addr, "otp": otp})
    session = api.cookies.get("kite_session")
    with api.platform.db.read() as conn:
        stored = [str(v) for t in (login_codes, sessions) for row in conn.execute(sa.select(t)).all() for v in row]
    assert stored and not any(secret in v for v in stored for secret in (token, session))
    assert otp not in {v for v in stored}


def test_cookie_secure_flag_follows_the_setting(api_factory: Any) -> None:
    api = api_factory(cookie_secure=True)
    api.login()
    addr = unique_email()
    api.post("/api/auth/magic-link", json={"email": addr})
    r = api.post("/api/auth/verify-link", json={"email": addr, "otp": api.inbox.last_otp(addr)})
    assert "Secure" in r.headers["set-cookie"]


def test_sessions_slide_forward_when_used(api: Any) -> None:
    import time

    api.login()
    token = api.cookies.get("kite_session")
    security = api.platform.security
    token_hash = api.platform.token_hash(token)
    days = api.platform.settings.session_days * 86400
    later = time.time() + 10 * 86400  # ten days on, the session is still live and is extended
    info = security.session(token_hash, later, days)
    assert info is not None and info.expires_at > later + days - 5
    assert security.session(token_hash, info.expires_at + 1, days) is None  # expired after a full idle term
