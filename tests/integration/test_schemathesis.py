"""Every operation of the OpenAPI schema under Schemathesis (issues 15 and 18): bounded examples per operation with
a deterministic seed, against the ASGI app in-process on SQLite, signed in as the web app is; no answer may be a
server error, and every answer must match the schema the document declares for its status (the response models,
the error model): the contract and the implementation agree. Plus the hostile cases a
generator does not try on its own, for every operation that takes a JSON body: a lone surrogate (422 naming the
field, nothing stored) and a body over the limit (413)."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import ASGIClient, get_client, shutdown_lifespans
from schemathesis.specs.openapi.checks import response_schema_conformance

from api.app import create_app
from infra.bootstrap import bootstrap
from infra.mail.mailers import SmtpMailer
from tests.conftest import Inbox, make_settings

EXAMPLES = 3  # per operation: ~110 operations, a few hundred calls


@pytest.fixture(scope="module")
def signed_in(tmp_path_factory: pytest.TempPathFactory, inbox: Inbox) -> Iterator[tuple[Any, ASGIClient]]:
    """One app (SQLite) for the module, its lifespan run by Schemathesis's ASGI client, signed in by email code."""
    tmp: Path = tmp_path_factory.mktemp("schemathesis")
    settings_ = make_settings(tmp, smtp_url=f"smtp://127.0.0.1:{inbox.port}")
    platform = bootstrap(settings_, mailer=SmtpMailer(settings_.smtp_url or "", settings_.mail_from))
    app = create_app(settings_, platform=platform)
    client = get_client(app)  # type: ignore[arg-type]
    client.__enter__()
    client.headers["X-Requested-With"] = "tradertape"
    email = "fuzz@example.com"
    assert client.post("/api/auth/magic-link", json={"email": email}).status_code == 200
    r = client.post("/api/auth/verify-link", json={"email": email, "otp": inbox.last_otp(email)})
    assert r.status_code == 200, r.text
    yield app, client
    client.__exit__(None, None, None)
    shutdown_lifespans()
    platform.close()


def test_no_input_is_a_server_error_and_every_answer_matches_its_schema(signed_in: tuple[Any, ASGIClient]) -> None:
    app, client = signed_in
    # signing out would leave the rest of the run unauthenticated
    api_schema = schemathesis.openapi.from_asgi("/api/openapi.json", app).exclude(path="/api/auth/logout")
    # the client carries the session cookie: never replace it with generated credentials
    api_schema.config.generation.update(with_security_parameters=False)
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    tried = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        def call(case: Any) -> None:
            response = case.call(session=client)
            statuses[response.status_code // 100 * 100] += 1
            try:
                case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
            except Exception as exc:  # Schemathesis's failure group: what did not conform, and why
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code} "
                                f"{str(exc)[:600]}")

        call()
        tried += 1
    assert tried > 80 and statuses[200] > 50, statuses  # signed in: many calls get through
    assert not failures, "\n".join(failures[:20])


def _json_operations(app: Any) -> list[tuple[str, str]]:
    spec = app.openapi()
    out = []
    for path, item in spec["paths"].items():
        for method, op in item.items():
            content = (op.get("requestBody") or {}).get("content", {})
            if "application/json" in content and path != "/api/auth/logout":
                out.append((method.upper(), re.sub(r"\{[^}]+\}", "1", path)))
    return out


def test_every_json_body_refuses_a_lone_surrogate_and_a_huge_body(signed_in: tuple[Any, ASGIClient]) -> None:
    app, client = signed_in
    operations = _json_operations(app)
    assert len(operations) > 20
    head = app.state.platform.store.max_position()
    surrogate = b'{"name": "x\\ud800", "email": "a\\udfff@example.com", "symbols": ["NSE:\\ud800"]}'
    huge = json.dumps({"name": "x" * (1024 * 1024 + 10)}).encode()
    for method, path in operations:
        r = client.request(method, path, data=surrogate, headers={"content-type": "application/json"})
        assert r.status_code == 422 and r.json()["detail"][0]["type"] == "unicode_invalid", (method, path, r.text)
        limit = 8 * 1024 * 1024 if path.startswith("/api/agent/sync-") else 1024 * 1024
        body = huge if limit == 1024 * 1024 else huge * 9
        r = client.request(method, path, data=body, headers={"content-type": "application/json"})
        assert r.status_code == 413, (method, path, r.status_code)
    assert app.state.platform.store.max_position() == head  # nothing was stored
