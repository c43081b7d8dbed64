"""The tick WebSocket: protocol, auth, errors that do not disconnect, shared reference-counted upstream,
slow clients, the simulated feed; and the Kite ticker upstream against a stub emitting real binary packets
(parsed the same as kiteconnect's own parser), with a dropped connection and reconnect."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from kiteconnect import KiteTicker
from starlette.websockets import WebSocketDisconnect

from api.routers.ws import AGENT_KEY_REVOKED, market_status
from domain.calendar import nse_calendar
from domain.market_hours import IST
from infra.config.settings import Settings
from infra.kite.ticker import KiteTickerFeed, parse_frame, to_wire
from infra.store.db import agent_keys, sessions
from streams.ticks import SimulatedFeed, TickHub
from tests.support.kite_stub import TickerStub, frame, full_packet, ltp_packet, quote_packet
from tests.support.live import make_bars


@pytest.fixture
def ticks_api(api_factory: Any) -> Any:
    api = api_factory(tick_feed="simulated", tick_always_open=True, tick_interval=0.05)
    make_bars(api.platform.settings.data_dir)
    api.login()
    return api


def _until(ws: Any, kind: str, limit: int = 200) -> dict[str, Any]:
    for _ in range(limit):
        msg = json.loads(ws.receive_text())
        if msg["type"] == kind:
            return dict(msg)
    raise AssertionError(f"no {kind} message")


def test_status_on_connect_and_a_heartbeat_while_the_market_is_shut(api_factory: Any) -> None:
    """Outside market hours nothing ticks: the API.md read loop must still hear from the server."""
    api = api_factory(tick_feed="simulated", tick_always_open=False, tick_heartbeat_seconds=0.2)
    make_bars(api.platform.settings.data_dir)
    api.login()
    with api.websocket_connect("/api/ws/ticks") as ws:
        first = json.loads(ws.receive_text())
        assert first["type"] == "status" and isinstance(first["market_open"], bool)
        next_open = datetime.fromisoformat(first["next_open"])
        assert next_open > datetime.now(UTC) and next_open.astimezone(IST).time() == dtime(9, 15)
        ws.send_text(json.dumps({"action": "subscribe", "symbols": ["NSE:INFY"], "mode": "ltp"}))
        beats = [m for m in (json.loads(ws.receive_text()) for _ in range(6)) if m["type"] == "status"]
        assert len(beats) >= 3 and all({"market_open", "next_open", "connected"} <= set(b) for b in beats)


def test_market_status_names_the_next_session() -> None:
    cal = nse_calendar()
    saturday = datetime(2025, 3, 1, 6, 0, tzinfo=UTC)  # 11:30 IST on a Saturday
    assert market_status(False, cal, saturday) == {"market_open": False, "next_open": "2025-03-03T09:15:00+05:30"}
    in_session = datetime(2025, 3, 3, 5, 0, tzinfo=UTC)  # Monday 10:30 IST
    assert market_status(False, cal, in_session) == {"market_open": True, "next_open": "2025-03-04T09:15:00+05:30"}
    assert market_status(True, cal, saturday)["market_open"] is True
    assert Settings(var_dir=Path("var")).tick_heartbeat_seconds <= 15  # the default beats often enough


def test_subscribe_receive_errors_and_unsubscribe(ticks_api: Any) -> None:
    with ticks_api.websocket_connect("/api/ws/ticks") as ws:
        status = json.loads(ws.receive_text())
        assert status["type"] == "status" and status["connected"] is True and status["market_open"] is True
        ws.send_text(json.dumps({"action": "subscribe", "symbols": ["NSE:RELIANCE", "NSE:INFY"], "mode": "quote"}))
        assert _until(ws, "subscribed")["symbols"] == ["NSE:RELIANCE", "NSE:INFY"]
        seen: dict[str, Any] = {}
        while len(seen) < 2:
            seen.update(_until(ws, "ticks")["data"])
        tick = seen["NSE:RELIANCE"]
        assert set(tick) == {"ltp", "open", "high", "low", "close", "volume", "change", "timestamp"}
        assert tick["low"] <= tick["ltp"] <= tick["high"]
        # errors are messages, not disconnects
        ws.send_text("{not json")
        assert "Malformed" in _until(ws, "error")["detail"]
        ws.send_text(json.dumps({"action": "subscribe", "symbols": ["NSE:FOO"]}))
        assert _until(ws, "error")["detail"] == "Unknown symbol NSE:FOO"
        ws.send_text(json.dumps({"action": "dance"}))
        assert "Unknown action" in _until(ws, "error")["detail"]
        ws.send_text(json.dumps({"action": "subscribe", "symbols": "NSE:INFY"}))
        assert "list" in _until(ws, "error")["detail"]
        ws.send_text(json.dumps({"action": "subscribe", "symbols": ["NSE:INFY"], "mode": "deep" + "A" * 5000}))
        assert _until(ws, "error")["detail"] == "Unknown mode: use ltp, quote or full"  # not echoed
        ws.send_text(json.dumps({"action": "subscribe", "symbols": ["x" * 60]}))
        assert _until(ws, "error")["detail"] == "Unknown symbol (not an EXCHANGE:SYMBOL)"
        ws.send_bytes(b"\x00\x01")
        assert _until(ws, "error")["type"] == "error"
        # ltp mode narrows what this client gets
        ws.send_text(json.dumps({"action": "subscribe", "symbols": ["NSE:INFY"], "mode": "ltp"}))
        _until(ws, "subscribed")
        for _ in range(20):
            data = _until(ws, "ticks")["data"]
            if "NSE:INFY" in data:
                assert set(data["NSE:INFY"]) == {"ltp", "timestamp"}
                break
        ws.send_text(json.dumps({"action": "unsubscribe", "symbols": ["NSE:RELIANCE", "NSE:TCS"]}))
        assert _until(ws, "unsubscribed")["symbols"] == ["NSE:RELIANCE"]
        hub: TickHub = ticks_api.app.state.tick_hub
        assert set(hub.refs) == {"NSE:INFY"}
    assert hub.refs == {} and hub.clients == set()


def test_one_shared_upstream_with_reference_counts_and_agent_key_auth(ticks_api: Any) -> None:
    key = ticks_api.post("/api/auth/agent-key").json()["key"]
    with ticks_api.websocket_connect("/api/ws/ticks") as a, \
            ticks_api.websocket_connect(f"/api/ws/ticks?token={key}") as b:
        for ws in (a, b):
            ws.send_text(json.dumps({"action": "subscribe", "symbols": ["NSE:SBIN"]}))
            _until(ws, "subscribed")
        hub: TickHub = ticks_api.app.state.tick_hub
        feed = hub.upstream
        assert isinstance(feed, SimulatedFeed) and feed.symbols == {"NSE:SBIN"} and hub.refs == {"NSE:SBIN": 2}
        a.send_text(json.dumps({"action": "unsubscribe", "symbols": ["NSE:SBIN"]}))
        _until(a, "unsubscribed")
        assert hub.refs == {"NSE:SBIN": 1} and feed.symbols == {"NSE:SBIN"}
        assert "NSE:SBIN" in _until(b, "ticks")["data"]
        b.send_text(json.dumps({"action": "unsubscribe", "symbols": ["NSE:SBIN"]}))
        _until(b, "unsubscribed")
        assert hub.refs == {} and feed.symbols == set()


def test_unauthenticated_and_revoked_keys_are_refused(ticks_api: Any) -> None:
    anon = type(ticks_api)(ticks_api.app)
    with pytest.raises(WebSocketDisconnect), anon.websocket_connect("/api/ws/ticks") as ws:
        ws.receive_text()
    with pytest.raises(WebSocketDisconnect), anon.websocket_connect("/api/ws/ticks?token=zt_wrong") as ws:
        ws.receive_text()


def _closed_by_server(ws: Any, limit: int = 400) -> WebSocketDisconnect:
    """Read until the server closes the connection (ticks keep coming until then)."""
    for _ in range(limit):
        try:
            ws.receive_text()
        except WebSocketDisconnect as closed:
            return closed
    raise AssertionError(f"the connection was still open after {limit} messages")


def test_revoking_the_agent_key_or_signing_out_closes_the_connections_it_opened(ticks_api: Any) -> None:
    key = ticks_api.post("/api/auth/agent-key").json()["key"]
    with ticks_api.websocket_connect(f"/api/ws/ticks?token={key}") as agent_ws, \
            ticks_api.websocket_connect("/api/ws/ticks") as cookie_ws:
        for ws in (agent_ws, cookie_ws):
            ws.send_text(json.dumps({"action": "subscribe", "symbols": ["NSE:SBIN"]}))
            _until(ws, "subscribed")
        assert ticks_api.delete("/api/auth/agent-key").status_code == 204
        closed = _closed_by_server(agent_ws)
        # the revoking request closes it at once -- unless the once-a-second check got there first
        assert closed.code == 4401 and closed.reason in ("Agent key revoked", AGENT_KEY_REVOKED)
        assert "NSE:SBIN" in _until(cookie_ws, "ticks")["data"]  # the session's connection is untouched
        # the revoked key cannot reconnect
        with pytest.raises(WebSocketDisconnect), \
                ticks_api.websocket_connect(f"/api/ws/ticks?token={key}") as ws:
            ws.receive_text()
        assert ticks_api.post("/api/auth/logout").status_code == 200
        closed = _closed_by_server(cookie_ws)
        assert closed.code == 4401 and closed.reason == "Signed out"
    hub: TickHub = ticks_api.app.state.tick_hub
    assert hub.refs == {}


def test_regenerating_the_agent_key_closes_connections_of_the_old_key(ticks_api: Any) -> None:
    old = ticks_api.post("/api/auth/agent-key").json()["key"]
    with ticks_api.websocket_connect(f"/api/ws/ticks?token={old}") as ws:
        ws.send_text(json.dumps({"action": "subscribe", "symbols": ["NSE:INFY"]}))
        _until(ws, "subscribed")
        new = ticks_api.post("/api/auth/agent-key").json()["key"]
        closed = _closed_by_server(ws)
        assert closed.code == 4401 and "replaced" in closed.reason
    with ticks_api.websocket_connect(f"/api/ws/ticks?token={new}") as ws:
        assert json.loads(ws.receive_text())["type"] == "status"


def test_a_credential_revoked_by_another_api_process_closes_its_connections_within_seconds(ticks_api: Any) -> None:
    """With `serve --workers N` a revocation is handled by one process; connections held by the others
    are closed by their periodic credential check."""
    key = ticks_api.post("/api/auth/agent-key").json()["key"]
    security = ticks_api.platform.security
    with ticks_api.websocket_connect(f"/api/ws/ticks?token={key}") as agent_ws, \
            ticks_api.websocket_connect("/api/ws/ticks") as cookie_ws:
        for ws in (agent_ws, cookie_ws):
            ws.send_text(json.dumps({"action": "subscribe", "symbols": ["NSE:SBIN"]}))
            _until(ws, "subscribed")
        # as another process would: straight in the database, nothing tells this process's hub
        with security.db.write() as conn:
            conn.execute(sa.update(agent_keys).values(revoked_at=time.time()))
        closed = _closed_within(agent_ws, 5.0)
        assert closed.code == 4401 and closed.reason == AGENT_KEY_REVOKED
        assert "NSE:SBIN" in _until(cookie_ws, "ticks")["data"]  # the session still signs in: untouched
        with security.db.write() as conn:
            conn.execute(sa.update(sessions).values(revoked_at=time.time()))
        closed = _closed_within(cookie_ws, 5.0)
        assert closed.code == 4401 and closed.reason == "Signed out"


def _closed_within(ws: Any, seconds: float) -> WebSocketDisconnect:
    """Read (ticks keep coming) until the server closes the connection; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            ws.receive_text()
        except WebSocketDisconnect as closed:
            return closed
    raise AssertionError(f"the connection was still open after {seconds} s")


def test_a_slow_client_keeps_only_the_latest_tick_per_symbol() -> None:
    async def main() -> None:
        hub = TickHub(lambda s: True, _no_upstream)
        await hub.start()
        slow, fast = hub.attach(), hub.attach()
        hub.subscribe(slow, ["NSE:A", "NSE:B"], "quote")
        hub.subscribe(fast, ["NSE:A"], "full")
        got = 0
        for i in range(10_000):
            hub.publish({"NSE:A": _tick(100 + i), "NSE:B": _tick(50 + i)})
            if i % 100 == 0:
                for m in await fast.next_messages():
                    got += m["type"] == "ticks"
        assert len(slow.pending) == 2 and slow.pending["NSE:A"]["ltp"] == 100 + 9_999
        messages = await slow.next_messages()
        assert [m["type"] for m in messages] == ["status", "ticks"]
        assert set(messages[-1]["data"]["NSE:A"]) == {"ltp", "open", "high", "low", "close", "volume", "change",
                                                     "timestamp"}
        assert got == 100

    asyncio.run(main())


def test_simulated_feed_holds_still_outside_market_hours() -> None:
    feed = SimulatedFeed(lambda syms: {s: 100.0 for s in syms}, is_trading_day=lambda d: False)
    feed._seed(["NSE:A"])
    feed.symbols.add("NSE:A")
    assert feed.step() == {}
    feed.always_open = True
    tick = feed.step()["NSE:A"]
    assert tick["close"] == 100.0 and abs(tick["ltp"] - 100.0) < 5


async def _no_upstream() -> Any:
    class Nothing:
        def start(self, hub: TickHub) -> None:
            hub.set_status(True)

        def subscribe(self, symbols: list[str]) -> None:
            pass

        def unsubscribe(self, symbols: list[str]) -> None:
            pass

        async def stop(self) -> None:
            pass

    return Nothing()


def _tick(price: float) -> dict[str, Any]:
    return {"ltp": price, "open": 1, "high": 2, "low": 0.5, "close": 1, "volume": 10, "change": 0.1,
            "timestamp": "t", "depth": {}}


# ---------------------------------------------------------------------------------------------- Kite's ticker


def test_binary_packets_parse_like_kiteconnect() -> None:
    packets = [ltp_packet(408065, 1573.15), quote_packet(738561, 2581.5, 2560.0, 123456),
               full_packet(779521, 801.25, 800.0, 999)]
    raw = frame(packets)
    ours = parse_frame(raw)
    theirs = KiteTicker("k", "t")._parse_binary(raw)
    assert [t["instrument_token"] for t in ours] == [408065, 738561, 779521]
    for mine, ref in zip(ours, theirs, strict=True):
        assert mine["mode"] == ref["mode"] and mine["last_price"] == pytest.approx(ref["last_price"])
        if "ohlc" in ref:
            assert mine["ohlc"] == pytest.approx(ref["ohlc"]) and mine["change"] == pytest.approx(ref["change"])
            assert mine["volume_traded"] == ref["volume_traded"]
        if "depth" in ref:
            assert mine["depth"] == ref["depth"]
    wire = to_wire(ours[1])
    assert wire["ltp"] == 2581.5 and wire["close"] == 2560.0 and wire["volume"] == 123456
    assert wire["change"] == pytest.approx(0.84, abs=0.01)
    assert parse_frame(b"\x00") == []  # a heartbeat


def test_kite_upstream_streams_binary_ticks_and_reconnects_after_a_drop() -> None:
    stub = TickerStub().start()

    async def main() -> None:
        statuses: list[bool] = []
        hub = TickHub(lambda s: s in ("NSE:INFY", "NSE:SBIN"), _kite_feed(stub))
        original = hub.set_status

        def set_status(connected: bool) -> None:
            statuses.append(connected)
            original(connected)

        hub.set_status = set_status  # type: ignore[method-assign]
        await hub.start()
        client = hub.attach()
        hub.subscribe(client, ["NSE:INFY", "NSE:SBIN"], "full")
        data = await _ticks_for(client, {"NSE:INFY", "NSE:SBIN"})
        assert data["NSE:INFY"]["close"] == 1500.0 and "depth" in data["NSE:INFY"]
        assert stub.subscribed == {408065: "full", 779521: "full"}
        stub.drop_all()
        for _ in range(100):
            if statuses.count(True) >= 2:
                break
            await asyncio.sleep(0.05)
        assert statuses[:3] == [True, False, True]
        await _ticks_for(client, {"NSE:INFY"})
        hub.unsubscribe(client, ["NSE:SBIN"])
        for _ in range(100):
            if stub.subscribed == {408065: "full"}:
                break
            await asyncio.sleep(0.05)
        assert stub.subscribed == {408065: "full"}
        await hub.stop()

    try:
        asyncio.run(main())
    finally:
        stub.stop()
    assert stub.connections == 2


def _kite_feed(stub: TickerStub) -> Any:
    async def make() -> KiteTickerFeed:
        return KiteTickerFeed(stub.url, "stubkey", "stub-access-token", {"NSE:INFY": 408065, "NSE:SBIN": 779521},
                              max_backoff=0.2)

    return make


async def _ticks_for(client: Any, symbols: set[str]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for _ in range(200):
        for m in await asyncio.wait_for(client.next_messages(), 5):
            if m["type"] == "ticks":
                seen.update(m["data"])
        if symbols <= set(seen):
            return seen
    raise AssertionError("no ticks")


def test_the_websocket_origin_rule_is_the_csrf_rule(ticks_api: Any) -> None:
    """A browser page's Origin must be the server's own with its scheme (ws counts as http): the configured
    base URL, or the Host it was reached at; the same Host over another scheme is another origin."""
    for origin in ("https://testserver", "http://testserver.evil.example"):
        with pytest.raises(WebSocketDisconnect) as refused:
            with ticks_api.websocket_connect("/api/ws/ticks", headers={"origin": origin}) as ws:
                ws.receive_text()
        assert refused.value.code == 1008 and refused.value.reason == "Origin not allowed"
    base = ticks_api.platform.settings.public_base_url
    for origin in ("http://TestServer", base):
        with ticks_api.websocket_connect("/api/ws/ticks", headers={"origin": origin}) as ws:
            assert json.loads(ws.receive_text())["type"] == "status"
