"""Emails as files and in the console: the link is the link, whatever copies it."""

from __future__ import annotations

import email
from pathlib import Path

import pytest

from infra.mail.mailers import ConsoleMailer

LINK = ("http://127.0.0.1:8731/link/sign-in?email=someone.with.a.long.address%40example.com"
        "&token=Qm9vZ2llIHdvb2dpZSB0b2tlbiB0aGF0IGlzIGxvbmcgZW5vdWdo_-x")


@pytest.mark.parametrize("extra", ["", "Invested: ₹1,30,13,928.67\n"])
def test_saved_email_keeps_the_link_on_one_line_and_the_console_prints_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: str) -> None:
    body = f"Sign in to TraderTape\n\nOpen this link to sign in:\n{LINK}\n\nOr enter this code: 042917\n{extra}"
    ConsoleMailer(tmp_path, "TraderTape <no-reply@example.com>").send(
        "someone@example.com", "Your TraderTape sign-in code: 042917", body)
    (eml,) = tmp_path.glob("*.eml")
    raw = eml.read_bytes()
    assert LINK.encode() in raw.split(b"\n")[raw.split(b"\n").index(b"Open this link to sign in:") + 1]
    assert b"quoted-printable" not in raw.lower() and b"base64" not in raw.lower()
    payload = email.message_from_bytes(raw).get_payload(decode=True)
    assert isinstance(payload, bytes) and payload.decode() == body
    out = capsys.readouterr().out
    assert f"link: {LINK}\n" in out and "code: 042917\n" in out
