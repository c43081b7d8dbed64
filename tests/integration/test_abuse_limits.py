"""Abuse limits (issue 15 items 11-13): CAS parses bounded per process and per account, family invitations
that cannot be turned into a mail cannon, and a daily cap on wrong sign-in codes."""

from __future__ import annotations

import logging
import socket
from typing import Any

import pytest

from infra.mail.mailers import SmtpMailer
from tests.conftest import unique_email


def _cas_upload(c: Any) -> Any:
    return c.post("/api/uploads/cas", files=[("file", ("cas.pdf", b"%PDF-1.4 not really"))])


def test_cas_parses_are_bounded_per_process_and_per_account(api_factory: Any) -> None:
    alice, bob = api_factory(cas_parses_at_once=1), api_factory()
    alice_user, bob_user = alice.login(), bob.login()
    assert _cas_upload(alice).status_code == 400  # an idle server reads it (and finds it is no CAS)
    slots = alice.app.state.cas_slots
    with slots.slot(alice_user["id"]):  # alice's statement is being read
        r = _cas_upload(alice)
        assert r.status_code == 429 and "still being read" in r.json()["detail"]
        r = _cas_upload(bob)  # the only slot of this process is taken
        assert r.status_code == 429 and "busy" in r.json()["detail"]
    assert _cas_upload(bob).status_code == 400
    assert slots.accounts == set() and bob_user["id"] != alice_user["id"]


@pytest.mark.parametrize("address", [
    "victim@example.com\r\nBcc: everyone@example.com",
    '"a"@example.com, b@example.com',
    "a@example.com, b@example.com",
    "Someone <a@example.com>",
    "no-at-sign",
])
def test_invitation_addresses_are_one_plain_address(api: Any, address: str) -> None:
    api.login()
    gid = api.post("/api/family/groups", json={"name": "Fam"}).json()["id"]
    sent = len(api.inbox.received)
    r = api.post(f"/api/family/groups/{gid}/invite", json={"email": address})
    assert r.status_code in (400, 422), r.text
    assert len(api.inbox.received) == sent


def test_invitation_subjects_hold_no_user_text_and_invitations_are_rate_limited(api_factory: Any) -> None:
    api = api_factory(invitations_per_day=3)
    api.login()
    gid = api.post("/api/family/groups", json={"name": "Win a prize! Click now"}).json()["id"]
    emails = [unique_email("inv") for _ in range(4)]
    for e in emails[:3]:
        assert api.post(f"/api/family/groups/{gid}/invite", json={"email": e}).status_code == 201
    subject = api.inbox.messages_to(emails[0])[-1]["Subject"]
    assert "prize" not in subject and "@" not in subject
    r = api.post(f"/api/family/groups/{gid}/invite", json={"email": emails[3]})
    assert r.status_code == 429 and not api.inbox.messages_to(emails[3])


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_invitation_whose_email_fails_is_kept_and_says_so(api_factory: Any) -> None:
    owner, invitee = api_factory(), api_factory()
    owner.login()
    invitee_email = unique_email("invitee")
    invitee.login(invitee_email)
    gid = owner.post("/api/family/groups", json={"name": "Fam"}).json()["id"]
    deps = owner.platform.bus.deps
    working = deps.mailer
    deps.mailer = SmtpMailer(f"smtp://127.0.0.1:{_closed_port()}", "x@example.com")  # nobody listens
    try:
        r = owner.post(f"/api/family/groups/{gid}/invite", json={"email": invitee_email})
    finally:
        deps.mailer = working
    assert r.status_code == 201 and r.json()["email_sent"] is False
    assert [i["group_id"] for i in invitee.get("/api/family/invitations").json()] == [gid]


def test_wrong_codes_are_capped_per_account_per_day_and_logged(api_factory: Any, caplog: Any) -> None:
    caplog.set_level(logging.WARNING, "tradertape.security")
    api = api_factory(otp_failures_per_day=6)
    email = unique_email("guess")
    for _ in range(2):  # two codes, five wrong guesses on the first, one on the second
        assert api.post("/api/auth/magic-link", json={"email": email}).status_code == 200
        right = api.inbox.last_otp(email)
        wrong = f"{(int(right) + 1) % 1_000_000:06d}"
        for _guess in range(5 if _ == 0 else 1):
            assert api.post("/api/auth/verify-link", json={"email": email, "otp": wrong}).status_code == 400
    # the cap is reached: even the right code of a fresh email is refused today
    assert api.post("/api/auth/magic-link", json={"email": email}).status_code == 200
    r = api.post("/api/auth/verify-link", json={"email": email, "otp": api.inbox.last_otp(email)})
    assert r.status_code == 429 and "today" in r.json()["detail"]
    assert any("otp_daily_cap" in rec.getMessage() for rec in caplog.records)
    # the link in the email still signs in
    r = api.post("/api/auth/verify-link", json={"email": email, "token": api.inbox.last_token(email)})
    assert r.status_code == 200


def test_the_sign_in_email_limits_are_settings(api_factory: Any) -> None:
    """An office signing in from behind one address raises the per-address limits; here they are lowered."""
    api = api_factory(sign_in_emails_per_address=2, sign_in_emails_per_ip=4)
    first, second = unique_email("office"), unique_email("office")
    assert [api.post("/api/auth/magic-link", json={"email": first}).status_code for _ in range(3)] == [200, 200, 429]
    assert api.post("/api/auth/magic-link", json={"email": second}).status_code == 200  # the client's fourth
    r = api.post("/api/auth/magic-link", json={"email": unique_email("office")})  # its fifth: over the IP's 4
    assert r.status_code == 429 and "Too many attempts" in r.json()["detail"]
    assert len(api.inbox.messages_to(first)) == 2
