"""`tradertape serve` (the embedded default) runs the Telegram bot when TRADERTAPE_TELEGRAM_BOT_TOKEN is set:
a chat linked from the served app is answered by that process, and its commands act there (a stub Bot API
server on loopback stands in for Telegram)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import requests

from tests.support.processes import Server, run_cli, tt_env
from tests.support.telegram_stub import telegram_stub

CHAT = 424242


def test_serve_starts_the_bot_and_a_linked_chat_is_answered_by_it(tmp_path: Path) -> None:
    with telegram_stub() as stub:
        env = tt_env(tmp_path, telegram_bot_token=stub.token, telegram_api_url=stub.url,
                     expiry_sweep_seconds=3600, paper_tick_fills="false")
        run_cli(env, "data", "generate", "--universe", "nifty_50", "--from", "2020-01-01", "--to", "2020-12-31")
        server = Server(env, tmp_path / "serve.log").start()
        try:
            base, s = server.url, requests.Session()
            s.headers["X-Requested-With"] = "tradertape"
            addr = "bot.user@example.com"
            assert s.post(base + "/api/auth/magic-link", json={"email": addr}).status_code == 200
            mail = next((tmp_path / "var" / "mail").glob("*.eml")).read_text()
            otp = re.search(r"code: (\d{6})", mail).group(1)  # type: ignore[union-attr]
            assert s.post(base + "/api/auth/verify-link", json={"email": addr, "otp": otp}).status_code == 200
            template = next(t for t in s.get(base + "/api/strategies", params={"is_template": True}).json()
                            if t["base_model"] == "v3_dip_buyer")
            r = s.post(base + "/api/model/portfolios/deploy", json={
                "strategy_id": template["id"], "name": "Bot paper", "mode": "paper", "capital": 1_000_000,
                "universe": "nifty_50", "position_size_pct": 10, "max_positions": 5})
            assert r.status_code == 201, r.text
            pf = r.json()

            state = s.get(base + "/api/notifications/telegram").json()
            assert state["configured"] is True and state["linked"] is False
            code = s.post(base + "/api/notifications/telegram/link").json()["code"]
            stub.send_text(CHAT, f"/start {code}")
            stub.wait_for(CHAT, "Linked to your TraderTape account", timeout=60)
            assert s.get(base + "/api/notifications/telegram").json()["linked"] is True

            before = len(stub.messages_to(CHAT))
            stub.send_text(CHAT, "/status")
            status = stub.wait_for(CHAT, "Today's P&L", after=before, timeout=60)["text"]
            assert f"#{pf['id']} Bot paper (paper, active): equity \u20b910,00,000.00" in status

            before = len(stub.messages_to(CHAT))
            stub.send_text(CHAT, f"/pause {pf['id']}")
            stub.wait_for(CHAT, f"Portfolio {pf['id']} is paused.", after=before, timeout=60)
            deadline = time.monotonic() + 30  # the served process recorded the bot's command; its read model follows
            while time.monotonic() < deadline:
                listed = s.get(base + "/api/model/portfolios", params={"status": "paused"}).json()
                if listed:
                    break
                time.sleep(0.1)
            assert [p["id"] for p in listed] == [pf["id"]]
        finally:
            server.stop()
