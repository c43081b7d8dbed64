"""The published OpenAPI document is a complete contract (issue 18, item 8): every operation has a summary, a
description, a typed JSON schema for each 2xx answer (never a bare object), who may call it (security), and
every error status it can answer under the status-code rule (api/errors.py), with the error model. The
Schemathesis run (test_schemathesis.py) holds the implementation to these schemas."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from api.app import create_app
from api.errors import PUBLIC, expected_errors
from tests.conftest import make_settings

# Answers that are not JSON documents (their media type is declared instead).
NOT_JSON = {("get", "/api/health/metrics")}


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp: Path = tmp_path_factory.mktemp("openapi")
    app = create_app(make_settings(tmp))
    out: dict[str, Any] = app.openapi()
    return out


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, op) for path, item in spec["paths"].items() for method, op in item.items()]


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _untyped(spec: dict[str, Any], schema: dict[str, Any], where: str, seen: frozenset[str] = frozenset()) -> list[str]:
    """Places in `schema` that say nothing about their content: an object without properties (or typed
    additional properties), a list of such, or no schema at all. A genuinely open payload (an event's data,
    Kite's own shapes) says so with `x-open` (api/public/base.py, OpenObject)."""
    if schema.get("x-open") is True:
        return []
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        if name in seen:
            return []
        return _untyped(spec, _resolve(spec, schema), f"{where}→{name}", seen | {name})
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return [p for i, s in enumerate(schema[key]) for p in _untyped(spec, s, f"{where}[{key}{i}]", seen)]
    kind = schema.get("type")
    if kind == "array":
        return _untyped(spec, schema.get("items") or {}, f"{where}[]", seen)
    if kind == "object" or (kind is None and ("properties" in schema or "additionalProperties" in schema)):
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        if not props and not isinstance(extra, dict):
            return [where]
        out = [p for name, s in props.items() for p in _untyped(spec, s, f"{where}.{name}", seen)]
        if isinstance(extra, dict):
            out += _untyped(spec, extra, f"{where}.*", seen)
        return out
    if kind is None and not schema.get("enum") and "const" not in schema:
        return [where]
    return []


def test_every_operation_is_summarised_and_described(spec: dict[str, Any]) -> None:
    missing = [f"{m.upper()} {p}: {what}" for m, p, op in _operations(spec)
               for what in ("summary", "description") if not (op.get(what) or "").strip()]
    assert not missing, "\n".join(missing)


def test_every_success_answer_is_typed(spec: dict[str, Any]) -> None:
    problems: list[str] = []
    for method, path, op in _operations(spec):
        if (method, path) in NOT_JSON:
            continue
        successes = {code: r for code, r in op["responses"].items() if code.startswith("2")}
        assert successes, f"{method} {path} documents no success answer"
        for code, answer in successes.items():
            if code == "204":
                assert not answer.get("content"), f"{method} {path}: 204 with a body"
                continue
            schema = (answer.get("content") or {}).get("application/json", {}).get("schema")
            if schema is None:
                problems.append(f"{method.upper()} {path} {code}: no JSON schema")
                continue
            problems += [f"{method.upper()} {path} {code}: untyped at {p}" for p in _untyped(spec, schema, "body")]
    assert not problems, "\n".join(problems)


def test_every_error_status_is_declared_with_the_error_model(spec: dict[str, Any]) -> None:
    problems: list[str] = []
    for method, path, op in _operations(spec):
        for code in sorted(expected_errors(method, path, op)):
            answer = op["responses"].get(str(code))
            if answer is None:
                problems.append(f"{method.upper()} {path}: {code} not declared")
                continue
            schema = answer.get("content", {}).get("application/json", {}).get("schema", {})
            model = "HTTPValidationError" if code == 422 else "ErrorDetail"
            if schema.get("$ref") != f"#/components/schemas/{model}":
                problems.append(f"{method.upper()} {path}: {code} not answered with {model}")
    assert not problems, "\n".join(problems)
    detail = spec["components"]["schemas"]["ErrorDetail"]
    assert detail["required"] == ["detail"] and detail["properties"]["detail"]["type"] == "string"


def test_security_schemes_and_who_may_call_each_operation(spec: dict[str, Any]) -> None:
    schemes = spec["components"]["securitySchemes"]
    assert schemes["kite_session"] == {**schemes["kite_session"], "type": "apiKey", "in": "cookie",
                                       "name": "kite_session"}
    assert schemes["agent_key"]["type"] == "http" and schemes["agent_key"]["scheme"] == "bearer"
    for method, path, op in _operations(spec):
        names = {name for requirement in op["security"] for name in requirement}
        if (method, path) in PUBLIC:
            assert names == set(), (method, path)
        elif path.startswith("/api/agent/"):
            assert names == {"agent_key"}, (method, path)  # agent endpoints take the key only
        else:
            assert names and names <= {"kite_session", "agent_key"}, (method, path)
    # a change needs a signed-in user; a read also takes the agent key
    assert spec["paths"]["/api/strategies"]["post"]["security"] == [{"kite_session": []}]
    assert {"agent_key": []} in spec["paths"]["/api/strategies"]["get"]["security"]


def test_the_tick_websocket_and_its_messages_are_described(spec: dict[str, Any]) -> None:
    ws = spec["x-websockets"]["/api/ws/ticks"]
    assert ws["description"] and {"kite_session", "agent_key"} == {n for r in ws["security"] for n in r}
    names = {m["$ref"].rsplit("/", 1)[1] for m in ws["client_messages"] + ws["server_messages"]}
    assert {"TickSubscribe", "TicksMessage", "StatusMessage", "SubscribedMessage", "ErrorMessage"} <= names
    for name in names:
        assert _untyped(spec, spec["components"]["schemas"][name], name) == []
