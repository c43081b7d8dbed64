"""The API.md tick-subscription example against `tradertape serve` with `requests` and `websocket-client`."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import requests
import websocket

from tests.support.live import make_bars
from tests.support.processes import Server, tt_env


def test_api_md_tick_subscription_example_with_websocket_client(tmp_path: Path) -> None:
    make_bars(tmp_path / "var" / "data")
    server = Server(tt_env(tmp_path, scheduler="false", tick_always_open="true", tick_interval="0.1"),
                    tmp_path / "serve.log").start()
    try:
        s = requests.Session()
        s.headers["X-Requested-With"] = "tradertape"  # as the web app sends (CSRF, api/csrf.py)
        s.post(server.url + "/api/auth/magic-link", json={"email": "ticks@example.com"}).raise_for_status()
        otp = None
        for _ in range(100):
            for f in (tmp_path / "var" / "mail").glob("*.eml"):
                if (m := re.search(r"code: (\d{6})", f.read_text())):
                    otp = m.group(1)
            if otp:
                break
            time.sleep(0.05)
        s.post(server.url + "/api/auth/verify-link", json={"email": "ticks@example.com", "otp": otp}).raise_for_status()
        key = s.post(server.url + "/api/auth/agent-key").json()["key"]
        ws_url = server.url.replace("http://", "ws://") + "/api/ws/ticks"
        for how in ({"cookie": f"kite_session={s.cookies['kite_session']}"},
                    {"header": [f"Authorization: Bearer {key}"]}):
            ws = websocket.create_connection(ws_url, timeout=10, **how)
            try:
                status = json.loads(ws.recv())
                assert status["type"] == "status" and status["connected"] is True and status["market_open"] is True
                ws.send(json.dumps({"action": "subscribe", "symbols": ["NSE:RELIANCE", "NSE:INFY"], "mode": "quote"}))
                got: dict[str, dict[str, object]] = {}
                kinds = set()
                while len(got) < 2:
                    msg = json.loads(ws.recv())
                    kinds.add(msg["type"])
                    if msg["type"] == "ticks":
                        got.update(msg["data"])
                assert "subscribed" in kinds
                assert {"ltp", "high", "low", "open", "close", "volume", "change", "timestamp"} <= set(got["NSE:INFY"])
                ws.send(json.dumps({"action": "unsubscribe", "symbols": ["NSE:RELIANCE"]}))
                while (msg := json.loads(ws.recv()))["type"] != "unsubscribed":
                    pass
                assert msg["symbols"] == ["NSE:RELIANCE"]
            finally:
                ws.close()
        # no credential: the connection opens and is closed at once with a code and a reason the client can
        # read (not a bare HTTP 403 that tells a script nothing)
        ws = websocket.create_connection(ws_url, timeout=10)
        try:
            opcode, data = ws.recv_data(control_frame=True)
        finally:
            ws.close()
        assert opcode == websocket.ABNF.OPCODE_CLOSE
        assert int.from_bytes(data[:2], "big") == 1008
        assert data[2:].decode() == "Not authenticated: sign in, or pass ?token=zt_..."
    finally:
        server.stop()
