"""Hostile input is refused at the edge (issue 15 items 1, 7, 15): invalid Unicode in bodies, queries and
WebSocket frames is a 422 naming the field with nothing stored; every non-upload body is bounded (413);
a 422 never echoes more than a short prefix of what was sent; odd dates and deep frames are not 500s."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from starlette.websockets import WebSocketDisconnect

from tests.support.live import make_bars


@pytest.fixture
def client(api: Any) -> Any:
    api.login()
    return api


def _head(c: Any) -> int:
    return int(c.platform.store.max_position())


def _raw_json(c: Any, url: str, raw: bytes, **headers: str) -> Any:
    return c.post(url, content=raw, headers={"content-type": "application/json", **headers})


def test_lone_surrogate_in_a_risk_rule_is_422_naming_the_field_and_stores_nothing(client: Any) -> None:
    before = _head(client)
    r = _raw_json(client, "/api/risk/rules", b'{"rule_type":"blocked_symbols","symbols":["NSE:\\ud800"]}')
    assert r.status_code == 422, r.text
    err = r.json()["detail"][0]
    assert err["loc"] == ["body", "symbols", 0] and err["type"] == "unicode_invalid"
    assert "\\ud800" not in json.dumps(err.get("input", ""))  # the value is not echoed
    assert _head(client) == before
    assert client.get("/api/risk/rules").json() == []


def test_invalid_utf8_inside_a_string_is_422_naming_the_field(client: Any) -> None:
    before = _head(client)
    r = _raw_json(client, "/api/strategies", b'{"name": "ok\xff\xfe", "base_model": "sma_crossover"}')
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "name"]
    r = _raw_json(client, "/api/strategies", b'{"name": "ok", "params": {"\\udc00x": 1}, "base_model": "x"}')
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][:2] == ["body", "params"]
    assert _head(client) == before


def test_agent_snapshot_with_a_lone_surrogate_is_422_and_stores_nothing(client: Any) -> None:
    key = client.post("/api/auth/agent-key", headers={"X-Requested-With": "tradertape"}).json()["key"]
    before = _head(client)
    raw = b'[{"tradingsymbol": "INFY\\uDBFF", "exchange": "NSE", "quantity": 1}]'
    r = client.post("/api/agent/sync-holdings", content=raw,
                    headers={"content-type": "application/json", "authorization": f"Bearer {key}"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", 0, "tradingsymbol"]
    assert _head(client) == before


@pytest.mark.parametrize("url,name", [
    ("/api/strategies?q=ab%ED%A0%80", "q"),
    ("/api/strategies?q=%FF", "q"),
    ("/api/strategies?base_model=%C3", "base_model"),
])
def test_invalid_utf8_in_a_query_parameter_is_422_naming_it(client: Any, url: str, name: str) -> None:
    r = client.get(url)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", name]


def test_invalid_utf8_in_the_path_is_422(client: Any) -> None:
    r = client.get("/api/market/bars/%ED%A0%80")
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["path"]


def test_bodies_are_bounded_by_content_length(client: Any) -> None:
    big = json.dumps({"email": "a@example.com", "pad": "x" * (2 * 1024 * 1024)}).encode()
    r = _raw_json(client, "/api/auth/magic-link", big)
    assert r.status_code == 413
    assert r.json() == {"detail": "Request body too large (at most 1 MB)"}  # JSON, as every other error


@pytest.mark.parametrize("name", ["Fam\u202eylimaf", "Sharma\u0007", "red\u001b[31m", "x\u0085y", "\u2066x\u2069"])
def test_control_characters_and_bidi_overrides_are_422_naming_the_field(client: Any, name: str) -> None:
    """A name that rings a bell, colours a terminal or displays backwards (U+202E) is refused before anything
    is stored; the reason never repeats it."""
    before = _head(client)
    for url, body in (("/api/family/groups", {"name": name}),
                      ("/api/strategies", {"name": name, "base_model": "sma_crossover"}),
                      ("/api/risk/rules", {"rule_type": "kill_switch", "note": name})):
        for ascii_only in (True, False):  # as \\u escapes, and as raw UTF-8 where JSON allows it
            r = _raw_json(client, url, json.dumps(body, ensure_ascii=ascii_only).encode())
            assert r.status_code == 422, (url, r.text)
            [err] = r.json()["detail"]
            loc = ["body", "note"] if url == "/api/risk/rules" else ["body", "name"]
            assert err["type"] == "text_invalid" and err["loc"] == loc and "input" not in err
            assert "control characters" in err["msg"]
    assert _head(client) == before
    r = client.get("/api/strategies", params={"q": "INFY\u202e"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "q"]
    r = client.get("/api/market/bars/INF%E2%80%AEY")
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["path"]


def test_indic_names_with_joiners_and_line_breaks_in_notes_are_kept(client: Any) -> None:
    """Devanagari needs ZWJ/ZWNJ (U+200D, U+200C); a note may run over lines."""
    name = "श्‍री परिवार"
    r = client.post("/api/family/groups", json={"name": name})
    assert r.status_code == 201, r.text
    assert name in [g["name"] for g in client.get("/api/family/groups").json()]
    r = client.post("/api/risk/rules", json={"rule_type": "kill_switch", "note": "line one\nline two\ttab"})
    assert r.status_code == 201, r.text


def test_the_audit_lists_an_event_stored_with_a_lone_surrogate_before_the_edge_refused_them(client: Any) -> None:
    """Events recorded before this check (an alert's id sent as text/plain) must still list: such text is sent
    as its JSON escape, as the hash chain encodes it, instead of failing the whole page with a 500."""
    from commands import messages as m
    from commands.bus import CommandMeta

    me = client.get("/api/auth/me").json()
    body = m.StrategyBody("bad \ud800 name", "", "sma_crossover", None, None, None, True)
    client.platform.bus.handle(m.CreateStrategy(int(me["id"]), body), CommandMeta(actor="test"))
    r = client.get("/api/audit/events", params={"type": "StrategyCreated"})
    assert r.status_code == 200, r.text[:300]
    assert "\\ud800" in r.text and int(r.headers["X-Total-Count"]) >= 1
    assert [e["data"]["name"] for e in json.loads(r.text)] == ["bad \ud800 name"]
    r = client.get("/api/audit/events", params={"from": "2025-01-01", "to": "2024-01-01"})
    assert r.status_code == 400 and r.json() == {"detail": "'to' is before 'from'"}


def test_bodies_are_bounded_while_streaming(client: Any) -> None:
    """A body sent in chunks without a Content-Length is cut off once it passes the limit."""
    sent = {"chunks": 0}
    app = client.app

    async def run() -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            sent["chunks"] += 1
            return {"type": "http.request", "body": b"[" + b"1," * 32768, "more_body": sent["chunks"] < 10_000}

        async def send(message: dict[str, Any]) -> None:
            out.append(message)

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": "/api/auth/magic-link", "raw_path": b"/api/auth/magic-link",
                 "query_string": b"", "root_path": "", "client": ("127.0.0.1", 1), "server": ("t", 80),
                 "headers": [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")],
                 "state": {}}
        await app(scope, receive, send)
        return out

    messages = asyncio.run(run())
    assert messages[0]["status"] == 413
    assert sent["chunks"] < 40  # ~1 MB read, not 640 MB


def test_agent_snapshot_of_5000_holdings_still_fits(client: Any) -> None:
    key = client.post("/api/auth/agent-key", headers={"X-Requested-With": "tradertape"}).json()["key"]
    holding = {"tradingsymbol": "INFY", "exchange": "NSE", "isin": "INE009A01021", "product": "CNC",
               "quantity": 1, "t1_quantity": 0, "average_price": 1500.5, "last_price": 1510.25,
               "pnl": 9.75, "day_change": 1.5, "day_change_percentage": 0.1, "instrument_token": 408065,
               "close_price": 1508.75, "collateral_quantity": 0, "collateral_type": "",
               "realised_quantity": 1, "authorised_quantity": 0, "opening_quantity": 1, "used_quantity": 0,
               "price": 0, "authorised_date": "2024-01-01 00:00:00", "discrepancy": False}
    rows = [dict(holding, tradingsymbol=f"SYM{i}") for i in range(5000)]
    raw = json.dumps(rows).encode()
    assert len(raw) > 2 * 1024 * 1024
    r = client.post("/api/agent/sync-holdings", content=raw,
                    headers={"content-type": "application/json", "authorization": f"Bearer {key}"})
    assert r.status_code == 200, r.text[:200]


def test_validation_errors_echo_at_most_a_short_prefix(client: Any) -> None:
    secretish = "s3cr3t-" + "y" * 5000
    r = client.post("/api/auth/magic-link", json={"email": secretish})
    assert r.status_code == 422
    assert secretish[:200] not in r.text and len(r.text) < 1000
    r = client.post("/api/strategies", json={"name": {"nested": secretish}, "base_model": "sma_crossover"})
    assert r.status_code == 422 and "yyyyyyyyyy" * 10 not in r.text


@pytest.mark.parametrize("query", ["to=0001-01-01", "from=9999-12-31&to=9999-12-31", "from=0001-01-01"])
def test_calendar_at_the_ends_of_time_is_4xx(client: Any, query: str) -> None:
    r = client.get(f"/api/market/calendar?{query}")
    assert 400 <= r.status_code < 500, r.text


def test_a_deeply_nested_websocket_frame_closes_with_a_reason(api_factory: Any) -> None:
    api = api_factory(tick_feed="simulated", tick_always_open=True, tick_interval=0.05)
    make_bars(api.platform.settings.data_dir)
    api.login()
    with api.websocket_connect("/api/ws/ticks") as ws:
        ws.receive_text()
        ws.send_text(json.dumps({"action": "subscribe", "symbols": ["NSE:\ud800"]}))
        for _ in range(50):
            msg = json.loads(ws.receive_text())
            if msg["type"] == "error":
                break
        assert "Unicode" in msg["detail"] and "symbols.0" in msg["detail"]
        ws.send_text("[" * 50_000 + "]" * 50_000)
        with pytest.raises(WebSocketDisconnect) as closed:
            for _ in range(200):
                ws.receive_text()
    assert closed.value.code == 1008 and "nested" in closed.value.reason


def test_json_nested_thousands_deep_is_a_422_not_a_parse_error_400(client: Any) -> None:
    before = _head(client)
    r = _raw_json(client, "/api/family/groups", b'{"name": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    assert r.status_code == 422, r.text[:200]
    assert "nested too deeply" in json.dumps(r.json()["detail"])
    assert _head(client) == before
