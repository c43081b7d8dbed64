"""The status-code rule (docs/API-NOTES.md "Status codes", api/errors.py) over every route of the API.

Each operation in the OpenAPI document lists the errors it can answer, worded by the rule; this test
drives every operation with the requests that must produce them: no credential (401, and public routes
stay public), a schema violation (422: an unknown body field, a path id of 0, a `limit` of 0), an id that
does not exist (404). The business-rule (400) and conflict (409) examples of the rule are in
test_api_model (approve twice: 400; delete a strategy in use, retire with open positions: 409) and
test_risk_rules (a rule without its value: 422)."""

from __future__ import annotations

import re
from typing import Any

import httpx

from api.errors import RULE

MISSING_ID = 2**62


def _operations(client: Any) -> list[tuple[str, str, dict[str, Any]]]:
    spec = client.get("/api/openapi.json").json()
    return [(method, path, op) for path, ops in spec["paths"].items() for method, op in ops.items()]


def _url(path: str, value: object) -> str:
    return re.sub(r"\{[^}]+\}", str(value), path)


def _json_body(op: dict[str, Any]) -> bool:
    return "application/json" in (op.get("requestBody") or {}).get("content", {})


def _send(client: Any, method: str, url: str, headers: dict[str, str] | None = None,
          **kw: Any) -> httpx.Response:
    response: httpx.Response = client.request(method.upper(), url, headers=headers or {}, **kw)
    return response


def test_every_route_documents_its_errors_in_the_rules_words(api: Any) -> None:
    ops = _operations(api)
    assert len(ops) > 60
    for method, path, op in ops:
        errors = {int(c): r["description"] for c, r in op["responses"].items() if c.startswith("4")}
        assert set(errors) <= set(RULE), (method, path, errors)
        assert all(errors[c] == RULE[c] for c in errors), (method, path)
        if method in ("post", "put", "delete"):
            assert 400 in errors, (method, path)  # every command can meet a business rule
        if op.get("parameters") or op.get("requestBody"):
            assert 422 in errors, (method, path)


def test_every_route_answers_its_documented_errors(api_factory: Any) -> None:
    anonymous, user = api_factory(), api_factory()
    user.login()
    key = user.post("/api/auth/agent-key").json()["key"]
    ops = _operations(user)
    checked = {401: 0, 422: 0, 404: 0}
    for method, path, op in ops:
        documented = {int(c) for c in op["responses"] if c.startswith("4")}
        url = _url(path, 1)
        # 401: nothing is answered without a credential, except the public routes
        r = _send(anonymous, method, url, json={} if _json_body(op) else None)
        if 401 in documented:
            assert r.status_code == 401, (method, path, r.status_code, r.text)
            checked[401] += 1
        else:
            assert r.status_code != 401, (method, path)
        agent = path.startswith("/api/agent/")
        caller = {"Authorization": f"Bearer {key}"} if agent else {}
        # 422: a body with a field no schema has
        if _json_body(op):
            r = _send(user, method, url, caller, json={"no_such_field_xyz": 1})
            assert r.status_code == 422, (method, path, r.status_code, r.text)
            assert isinstance(r.json()["detail"], list)  # FastAPI's validation-error list
            checked[422] += 1
        # 422: an integer path id out of range; 404: one that does not exist
        params = {p["name"]: p for p in op.get("parameters", [])}
        int_path = [n for n, p in params.items() if p["in"] == "path" and p["schema"].get("type") == "integer"]
        if int_path:
            r = _send(user, method, _url(path, 0), caller, json={} if _json_body(op) else None)
            assert r.status_code == 422, (method, path, r.status_code)
            checked[422] += 1
            needs_more = (op.get("requestBody") or {}).get("required") or any(
                p["required"] for p in params.values() if p["in"] == "query")
            if not needs_more:
                r = _send(user, method, _url(path, MISSING_ID), caller)
                assert r.status_code == 404, (method, path, r.status_code, r.text)
                assert 404 in documented
                checked[404] += 1
        # 422: a page size of 0
        if "limit" in params:
            r = _send(user, method, url, caller, params={"limit": 0})
            assert r.status_code == 422, (method, path, r.status_code)
            checked[422] += 1
    assert checked[401] > 50 and checked[422] > 40 and checked[404] > 15, checked
