"""Shared fixtures: real Postgres, a real Kafka-protocol broker, a real SMTP server, API clients."""

from __future__ import annotations

import email
import email.message
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from infra.bootstrap import Platform, bootstrap
from infra.config.settings import Settings
from infra.mail.mailers import SmtpMailer
from tests.support.services import KafkaBroker, PostgresServer, smtp_server


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture
def pg_url(postgres: PostgresServer) -> Iterator[str]:
    url = postgres.create_database()
    yield url
    postgres.drop_database(url)


@pytest.fixture(scope="session")
def kafka() -> Iterator[KafkaBroker]:
    broker = KafkaBroker().start()
    yield broker
    broker.stop()


class Inbox:
    """Messages received by the loopback SMTP server."""

    def __init__(self, port: int, received: list[Any]) -> None:
        self.port = port
        self.received = received

    def messages_to(self, address: str) -> list[email.message.Message]:
        out = []
        for env in self.received:
            if address in env.rcpt_tos:
                out.append(email.message_from_bytes(env.original_content))
        return out

    def last_body(self, address: str) -> str:
        """The text of the newest sign-in/account email (notification emails are left out)."""
        msgs = [m for m in self.messages_to(address) if m["X-TraderTape-Notifications"] is None]
        assert msgs, f"no email to {address}"
        msg = msgs[-1]
        part = msg.get_payload(0) if msg.is_multipart() else msg
        assert isinstance(part, email.message.Message)
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        return payload.decode()

    def last_otp(self, address: str) -> str:
        m = re.search(r"code: (\d{6})", self.last_body(address))
        assert m, "no code in the email"
        return m.group(1)

    def last_token(self, address: str) -> str:
        m = re.search(r"token=([A-Za-z0-9_\-]+)", self.last_body(address))
        assert m, "no link in the email"
        return m.group(1)


@pytest.fixture(scope="session")
def inbox() -> Iterator[Inbox]:
    with smtp_server() as (port, received):
        yield Inbox(port, received)


def make_settings(tmp_path: Path, database_url: str | None = None, **overrides: Any) -> Settings:
    var = tmp_path / "var"
    values: dict[str, Any] = {
        "env": "test",
        "var_dir": var,
        "database_url": database_url or f"sqlite:///{var}/tradertape.db",
        "duckdb_path": var / "analytics.duckdb",
        "data_dir": var / "data",
        "secret_keys": "test-secret-key-0123456789-abcdefghijklmnop",
        "kafka_bootstrap": None,
        "scheduler": False,  # tests drive the market clock themselves (tests/integration/test_scheduler.py)
        "db_pool_size": 3,  # Postgres: the machine's server allows 100 connections for every worker's processes
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        (tmp_path / "var").mkdir(exist_ok=True)
        yield f"sqlite:///{tmp_path}/var/tradertape.db"
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        url = server.create_database()
        yield url
        server.drop_database(url)


def unique_email(tag: str = "user") -> str:
    return f"{tag}-{uuid.uuid4().hex[:10]}@example.com"


class ApiClient(TestClient):
    """The API as the web app calls it: `X-Requested-With: tradertape` on every request (the CSRF rule,
    api/csrf.py); a test of that rule deletes the header from its client."""

    inbox: Inbox
    platform: Platform

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.headers["X-Requested-With"] = "tradertape"

    def login(self, email_addr: str | None = None) -> dict[str, Any]:
        """Sign in through the magic-link email (OTP); returns the user."""
        email_addr = email_addr or unique_email()
        r = self.post("/api/auth/magic-link", json={"email": email_addr})
        assert r.status_code == 200, r.text
        r = self.post("/api/auth/verify-link", json={"email": email_addr, "otp": self.inbox.last_otp(email_addr)})
        assert r.status_code == 200, r.text
        return dict(r.json())


@pytest.fixture
def api_factory(tmp_path: Path, inbox: Inbox) -> Iterator[Any]:
    """Builds API clients sharing one platform (one database); each client has its own cookies."""
    clients: list[ApiClient] = []
    state: dict[str, Any] = {}

    def factory(database_url: str | None = None, **overrides: Any) -> ApiClient:
        if "app" not in state:
            settings = make_settings(tmp_path, database_url, smtp_url=f"smtp://127.0.0.1:{inbox.port}", **overrides)
            platform = bootstrap(settings, mailer=SmtpMailer(settings.smtp_url or "", settings.mail_from))
            state["platform"] = platform
            state["app"] = create_app(settings, platform=platform)
        client = ApiClient(state["app"])
        client.inbox = inbox
        client.platform = state["platform"]
        if not clients:  # the first client runs the app's lifespan; the others share it (own cookies)
            client.__enter__()
        clients.append(client)
        return client

    yield factory
    if clients:
        clients[0].__exit__(None, None, None)
    if "platform" in state:
        state["platform"].close()


@pytest.fixture
def api(api_factory: Any) -> Any:
    return api_factory()
