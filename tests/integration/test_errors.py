"""Internal errors are sanitized: a message and a request id, never a stack trace."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from api.app import create_app
from tests.conftest import make_settings


def test_unhandled_error_is_500_with_request_id_and_no_trace(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path))

    @app.get("/api/boom")
    def boom() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/api/boom", headers={"X-Request-ID": "abc123"})
    assert r.status_code == 500
    body = r.json()
    assert body["request_id"] == "abc123" and "abc123" in body["detail"]
    assert "hunter2" not in r.text and "Traceback" not in r.text
