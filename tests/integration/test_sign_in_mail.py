"""Sign-in and password emails while the mail server is down, and emailed links that are damaged or dead:
through the HTTP API and the /link/ pages, with real SMTP servers on loopback that hang or refuse."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import uvicorn

from tests.conftest import unique_email
from tests.support.live import wait_until
from tests.support.services import free_port, smtp_server

MAIL_DOWN = "The sign-in email could not be sent just now; try again in a minute"
SAME_SITE = {"Origin": "http://testserver"}


@contextlib.contextmanager
def hanging_smtp() -> Iterator[int]:
    """A loopback listener that takes connections and never says a word (no SMTP greeting)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(32)  # connections complete in the backlog; nothing ever answers them
        yield int(listener.getsockname()[1])


@contextlib.contextmanager
def refusing_smtp() -> Iterator[int]:
    """A real SMTP server that refuses every message."""
    with smtp_server(lambda _server, _envelope: "554 5.7.1 Message refused") as (port, _received):
        yield port


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    yield free_port()  # nothing listens: the connection is refused


@contextlib.contextmanager
def mail_at(api: Any, port: int, timeout: float = 2.0) -> Iterator[None]:
    """Point the app's SMTP mailer at another loopback port for a while."""
    mailer = api.platform.mailer
    before = mailer.port, mailer.timeout
    mailer.port, mailer.timeout = port, timeout
    try:
        yield
    finally:
        mailer.port, mailer.timeout = before


@contextlib.contextmanager
def served(app: Any) -> Iterator[str]:
    """The app (its lifespan already running under the test client) behind a real uvicorn on loopback: a
    client there sees when the answer is sent, not when the request's work ends."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, name="api-under-test", daemon=True)
    thread.start()
    wait_until("uvicorn to start", lambda: server.started, timeout=10)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def _not_sent_logged(caplog: Any, address: str) -> bool:
    return any("password_code_not_sent" in r.getMessage() and address in r.getMessage() for r in caplog.records)


# ------------------------------------------------------------------------------------------- defect A


def test_password_reset_code_answers_alike_for_every_address_while_mail_hangs(api: Any, caplog: Any) -> None:
    """The answer leaves before the email: a known address no longer waits for the mail server (and gets no
    500 when it times out), so status and timing are the same as for an address without an account."""
    caplog.set_level(logging.WARNING, "tradertape.security")
    known = unique_email()
    api.login(known)
    answers = []
    with hanging_smtp() as port, mail_at(api, port, timeout=3.0), served(api.app) as base:
        with httpx.Client(base_url=base, headers={"X-Requested-With": "tradertape"}, timeout=30) as http:
            for address in (unique_email("nobody"), known, unique_email("nobody"), known):
                started = time.monotonic()
                r = http.post("/api/auth/password-reset/code", json={"email": address})
                answers.append((r.status_code, r.json(), time.monotonic() - started))
        assert {status for status, _, _ in answers} == {200}, answers
        assert len({str(body) for _, body, _ in answers}) == 1
        assert max(took for _, _, took in answers) < 1.5, answers  # the SMTP timeout is 3 s
        wait_until("the failed send to be logged", lambda: _not_sent_logged(caplog, known), timeout=20)


@pytest.mark.parametrize("down", [refusing_smtp, closed_port, hanging_smtp])
def test_password_reset_code_is_never_a_500_and_the_failure_is_logged(api: Any, caplog: Any, down: Any) -> None:
    caplog.set_level(logging.WARNING, "tradertape.security")
    known = unique_email()
    api.login(known)
    with down() as port, mail_at(api, port, timeout=1.0):
        unknown = api.post("/api/auth/password-reset/code", json={"email": unique_email("nobody")})
        r = api.post("/api/auth/password-reset/code", json={"email": known})
    assert r.status_code == unknown.status_code == 200
    assert r.json() == unknown.json()
    assert _not_sent_logged(caplog, known)
    # with the mail server back, the code arrives and resets the password
    assert api.post("/api/auth/password-reset/code", json={"email": known}).status_code == 200
    r = api.post("/api/auth/password-reset", json={"email": known, "otp": api.inbox.last_otp(known),
                                                   "password": "a long fresh passphrase 42"})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("down", [refusing_smtp, closed_port, hanging_smtp])
def test_sign_in_email_with_mail_down_is_an_honest_503(api: Any, down: Any) -> None:
    with down() as port, mail_at(api, port, timeout=1.0):
        r = api.post("/api/auth/magic-link", json={"email": unique_email()})
    assert r.status_code == 503
    assert r.json() == {"detail": MAIL_DOWN}
    addr = unique_email()  # the mail server back: sign-in works again
    assert api.post("/api/auth/magic-link", json={"email": addr}).status_code == 200
    r = api.post("/api/auth/verify-link", json={"email": addr, "otp": api.inbox.last_otp(addr)})
    assert r.status_code == 200


def test_password_code_for_a_signed_in_user_with_mail_down_is_a_503(api: Any) -> None:
    api.login()
    with refusing_smtp() as port, mail_at(api, port):
        r = api.post("/api/auth/password/code")
    assert r.status_code == 503
    assert r.json() == {"detail": "The email with the code could not be sent just now; try again in a minute"}


@pytest.mark.parametrize("down", [refusing_smtp, hanging_smtp])
def test_the_link_pages_code_form_with_mail_down_answers_its_html_error_page(api: Any, down: Any) -> None:
    target = "/link/family-invite?group=1&token=abc"
    with down() as port, mail_at(api, port, timeout=1.0):
        r = api.post("/link/sign-in-code", data={"email": unique_email(), "next": target}, headers=SAME_SITE)
    assert r.status_code == 503
    assert r.headers["content-type"].startswith("text/html")
    assert MAIL_DOWN in r.text and "<!doctype html>" in r.text
    assert 'href="/link/family-invite?group=1&amp;token=abc"' in r.text  # back to ask again


# ------------------------------------------------------------------------------------------- defect B


@pytest.mark.parametrize("query", [
    {"email": "alice@example.com"},  # the token cut off by a mail client
    {"email": "alice@example", "token": "abc"},  # a damaged address
    {"token": "abc"},
    {"email": "alice@example.com", "token": ""},
    {},
])
def test_a_damaged_sign_in_link_answers_an_html_page(api: Any, query: dict[str, str]) -> None:
    r = api.get("/link/sign-in?" + urlencode(query))
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("text/html")
    assert "incomplete or damaged" in r.text and 'href="/signin"' in r.text
    assert r.headers["content-security-policy"].startswith("default-src 'self'")


def test_a_damaged_invitation_link_answers_an_html_page(api: Any) -> None:
    for query in ("group=1", "group=abc&token=x", "token=x"):
        r = api.get(f"/link/family-invite?{query}")
        assert r.status_code == 400 and r.headers["content-type"].startswith("text/html")
        assert "incomplete or damaged" in r.text


def _link(api: Any, addr: str) -> str:
    assert api.post("/api/auth/magic-link", json={"email": addr}).status_code == 200
    return "/link/sign-in?" + urlencode({"email": addr, "token": api.inbox.last_token(addr)})


def _dead_link_page(r: Any, addr: str) -> None:
    assert r.status_code == 400 and r.headers["content-type"].startswith("text/html")
    assert "expired or was already used" in r.text
    assert 'method="post"' not in r.text and "Sign in as" not in r.text  # no button that cannot work
    assert f'href="/signin?{urlencode({"email": addr}).replace("&", "&amp;")}"' in r.text


def test_a_used_or_replaced_sign_in_link_says_so_when_opened(api_factory: Any) -> None:
    api, other = api_factory(), api_factory()
    addr = unique_email()
    link = _link(api, addr)
    page = api.get(link)
    assert page.status_code == 200 and "Sign in as" in page.text  # a live link: looking uses nothing up
    assert api.get(link).status_code == 200
    token = api.inbox.last_token(addr)
    r = api.post("/link/sign-in", data={"email": addr, "token": token}, headers=SAME_SITE, follow_redirects=False)
    assert r.status_code == 303
    _dead_link_page(other.get(link), addr)  # used
    again = other.post("/link/sign-in", data={"email": addr, "token": token}, headers=SAME_SITE)
    assert again.status_code == 400 and "request a new one" in again.text
    assert f'href="/signin?{urlencode({"email": addr})}"' in again.text  # a way to ask for a new link
    older, newer = _link(other, addr), _link(other, addr)
    _dead_link_page(other.get(older), addr)  # replaced by a newer one
    assert other.get(newer).status_code == 200


def test_an_expired_sign_in_link_says_so_when_opened(api: Any) -> None:
    addr = unique_email()
    link = _link(api, addr)
    deps = api.platform.bus.deps
    real = deps.clock

    class Later:
        def now(self) -> datetime:
            return real.now() + timedelta(minutes=16)

    deps.clock = Later()
    try:
        _dead_link_page(api.get(link), addr)
    finally:
        deps.clock = real
    assert api.get(link).status_code == 200
