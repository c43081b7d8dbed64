"""Passwords and sessions (issue 15 item 10): a stolen session alone cannot set a password (a fresh emailed
code is needed), changing it signs out the other sessions, a forgotten one is reset by emailed code, sessions
can be listed and signed out one by one or all but this one, and guessable passwords are refused."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import unique_email
from tests.integration.test_api_auth import password_code


def test_a_password_needs_a_fresh_emailed_code(api: Any) -> None:
    addr = unique_email()
    api.login(addr)
    r = api.post("/api/auth/password", json={"password": "velvet otter maple"})
    assert r.status_code == 400 and "/api/auth/password/code" in r.json()["detail"]
    code = password_code(api, addr)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    assert api.post("/api/auth/password", json={"password": "velvet otter maple", "otp": wrong}).status_code == 400
    ok = api.post("/api/auth/password", json={"password": "velvet otter maple", "otp": code})
    assert ok.status_code == 200
    again = api.post("/api/auth/password", json={"password": "quiet harbor lantern", "otp": code,
                                                  "current_password": "velvet otter maple"})
    assert again.status_code == 400  # a code works once


def test_a_stolen_session_guesses_the_current_password_no_faster_than_sign_in(api: Any) -> None:
    """Without a code, POST /api/auth/password still says whether current_password is right: its guesses
    count against the address's password sign-in budget (then 429, for both)."""
    addr = unique_email()
    api.login(addr)
    assert api.post("/api/auth/password", json={"password": "velvet otter maple",
                                                 "otp": password_code(api, addr)}).status_code == 200
    api.platform.bus.deps.auth.login_attempts_per_ip = 3
    guesses = [api.post("/api/auth/password", json={"password": "quiet harbor lantern",
                                                    "current_password": f"guess number {i}"}).status_code
               for i in range(4)]
    assert guesses == [400, 400, 400, 429]
    r = api.post("/api/auth/password-login", json={"email": addr, "password": "velvet otter maple"})
    assert r.status_code == 429  # one budget per address, whichever way it is guessed


@pytest.mark.parametrize("weak", ["short1", "password1234", "qwertyuiop12", "aaaaaaaaaaaaaa", "1234567890"])
def test_weak_passwords_are_refused(api: Any, weak: str) -> None:
    addr = unique_email()
    api.login(addr)
    r = api.post("/api/auth/password", json={"password": weak, "otp": "123456"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "password"]
    assert weak not in r.text


def test_changing_the_password_signs_out_the_other_sessions(api_factory: Any) -> None:
    addr = unique_email()
    laptop, phone, thief = api_factory(), api_factory(), api_factory()
    for c in (laptop, phone, thief):
        c.login(addr)
    sessions = laptop.get("/api/auth/sessions").json()
    assert len(sessions) == 3 and sum(s["current"] for s in sessions) == 1
    assert all("token" not in s and len(s["id"]) == 16 for s in sessions)
    r = laptop.post("/api/auth/password", json={"password": "velvet otter maple", "otp": password_code(laptop, addr)})
    assert r.status_code == 200 and r.json()["sessions_signed_out"] == 2
    assert phone.get("/api/auth/me").status_code == 401 and thief.get("/api/auth/me").status_code == 401
    assert laptop.get("/api/auth/me").status_code == 200
    assert [s["current"] for s in laptop.get("/api/auth/sessions").json()] == [True]


def test_sessions_are_listed_and_revoked_one_by_one_or_all_others(api_factory: Any) -> None:
    addr = unique_email()
    a, b, c = api_factory(), api_factory(), api_factory()
    for x in (a, b, c):
        x.login(addr)
    other = api_factory()
    other.login()
    b_id = next(s["id"] for s in b.get("/api/auth/sessions").json() if s["current"])
    assert other.delete(f"/api/auth/sessions/{b_id}").status_code == 404  # another account's session
    assert b.get("/api/auth/me").status_code == 200
    assert a.delete(f"/api/auth/sessions/{b_id}").status_code == 204
    assert b.get("/api/auth/me").status_code == 401
    assert a.delete(f"/api/auth/sessions/{b_id}").status_code == 404
    r = a.post("/api/auth/sessions/revoke-others")
    assert r.status_code == 200 and r.json()["sessions_signed_out"] == 1
    assert c.get("/api/auth/me").status_code == 401 and a.get("/api/auth/me").status_code == 200


def test_a_forgotten_password_is_reset_by_emailed_code(api_factory: Any) -> None:
    addr = unique_email()
    api, stranger = api_factory(), api_factory()
    api.login(addr)
    api.post("/api/auth/password", json={"password": "velvet otter maple", "otp": password_code(api, addr)})
    sent = len(api.inbox.received)
    unknown = stranger.post("/api/auth/password-reset/code", json={"email": unique_email()})
    known = stranger.post("/api/auth/password-reset/code", json={"email": addr})
    assert unknown.status_code == known.status_code == 200 and unknown.json() == known.json()
    assert len(api.inbox.received) == sent + 1  # only the known address got a code
    code = api.inbox.last_otp(addr)
    r = stranger.post("/api/auth/password-reset", json={"email": addr, "otp": code, "password": "qwerty123456"})
    assert r.status_code == 422  # weak
    r = stranger.post("/api/auth/password-reset", json={"email": addr, "otp": code,
                                                         "password": "quiet harbor lantern"})
    assert r.status_code == 200 and r.json()["sessions_signed_out"] == 1
    assert api.get("/api/auth/me").status_code == 401
    again = stranger.post("/api/auth/password-reset", json={"email": addr, "otp": code,
                                                             "password": "another quiet lantern"})
    assert again.status_code == 400
    ok = stranger.post("/api/auth/password-login", json={"email": addr, "password": "quiet harbor lantern"})
    assert ok.status_code == 200
