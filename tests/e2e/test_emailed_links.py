"""A newcomer's first hour: `tradertape serve` on a port other than 8000, no TRADERTAPE_BASE_URL, the
embedded mailer (console + ./var/mail/*.eml). The links in the emails point at the server that sent
them, read plainly in the saved file and in the console, and work when a person clicks them: a page
whose button POSTs (never a 405, never a silent sign-in)."""

from __future__ import annotations

import re
import time
from html.parser import HTMLParser
from pathlib import Path

import httpx

from tests.support.processes import Server, tt_env


class Forms(HTMLParser):
    """The forms of a page: action, method and the fields they carry."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, object]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"action": a.get("action"), "method": a.get("method"), "fields": {}})
        elif tag == "input" and self.forms:
            fields = self.forms[-1]["fields"]
            assert isinstance(fields, dict)
            fields[a.get("name")] = a.get("value") or ""


def forms_of(html: str) -> list[dict[str, object]]:
    p = Forms()
    p.feed(html)
    return p.forms


def newest_mail(mail_dir: Path, address: str, after: set[Path], timeout: float = 15) -> tuple[Path, bytes]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for f in sorted(mail_dir.glob("*.eml")):
            if f not in after and f"To: {address}".encode() in f.read_bytes():
                return f, f.read_bytes()
        time.sleep(0.1)
    raise AssertionError(f"no email to {address} under {mail_dir}")


def link_in(raw: bytes, base: str, path: str) -> str:
    text = raw.decode("utf-8")
    assert "quoted-printable" not in text.lower() and "base64" not in text.lower(), text
    m = re.search(re.escape(base + path) + r"\?\S+", text)
    assert m, f"no {base}{path} link in:\n{text}"
    return m.group(0)


def submit(client: httpx.Client, base: str, form: dict[str, object], **extra: str) -> httpx.Response:
    """What a browser does when the button is pressed: a same-origin form POST (it sends Origin)."""
    assert form["method"] == "post"
    fields = dict(form["fields"])  # type: ignore[call-overload]
    fields.update(extra)
    return client.post(base + str(form["action"]), data=fields, headers={"Origin": base})


def test_emailed_links_follow_the_port_read_plainly_and_work_when_clicked(tmp_path: Path) -> None:
    env = tt_env(tmp_path)
    server = Server(env, tmp_path / "serve.log")
    server.env.pop("TRADERTAPE_BASE_URL")  # a newcomer sets only the port
    assert server.port != 8000
    server.start()
    mail_dir = tmp_path / "var" / "mail"
    base = server.url
    try:
        with httpx.Client(timeout=30) as owner, httpx.Client(timeout=30) as invitee:
            # 1. magic link: the console and the .eml both carry the link to *this* server, unbroken
            addr = "first.hour@example.com"
            assert owner.post(base + "/api/auth/magic-link", json={"email": addr}).status_code == 200
            _, raw = newest_mail(mail_dir, addr, set())
            link = link_in(raw, base, "/link/sign-in")
            console = server.log.read_text()
            assert f"link: {link}" in console
            assert re.search(r"code: \d{6}", console)
            # 2. clicking it shows a confirm page; nothing is signed in yet
            page = owner.get(link)
            assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
            assert "<script" not in page.text and addr in page.text
            assert owner.get(base + "/api/auth/me").status_code == 401
            (form,) = forms_of(page.text)
            # 3. its button signs in and lands on the app
            done = submit(owner, base, form)
            assert done.status_code == 303 and done.headers["location"] == "/"
            assert owner.get(base + "/api/auth/me").json()["email"] == addr

            # 4. family invitation: the emailed link opens a page, sign-in by code, then accept
            group = owner.post(base + "/api/family/groups", json={"name": "Sharmas"}).json()
            guest = "guest.hour@example.com"
            seen = set(mail_dir.glob("*.eml"))
            assert owner.post(base + f"/api/family/groups/{group['id']}/invite",
                              json={"email": guest}).status_code == 201
            _, raw = newest_mail(mail_dir, guest, seen)
            assert b"POST" not in raw
            invite = link_in(raw, base, "/link/family-invite")
            page = invitee.get(invite)
            assert page.status_code == 200
            (ask,) = forms_of(page.text)
            seen = set(mail_dir.glob("*.eml"))
            page = submit(invitee, base, ask, email=guest)
            assert page.status_code == 200
            _, raw = newest_mail(mail_dir, guest, seen)
            code = re.search(rb"code: (\d{6})", raw)
            assert code
            (enter,) = forms_of(page.text)
            back = submit(invitee, base, enter, otp=code.group(1).decode())
            assert back.status_code == 303 and back.headers["location"] == invite.removeprefix(base)
            page = invitee.get(base + back.headers["location"])
            assert "Sharmas" in page.text and guest in page.text
            (join,) = forms_of(page.text)
            joined = submit(invitee, base, join)
            assert joined.status_code == 200 and "joined" in joined.text
            groups = invitee.get(base + "/api/family/groups").json()
            assert [g["name"] for g in groups] == ["Sharmas"]
            assert {mm["email"] for mm in groups[0]["members"]} == {addr, guest}
    finally:
        server.stop()
