"""`tradertape agent` as a real process against `tradertape serve` and the Kite stub: the Kite login
hand-over, GTT placement for a live portfolio, fills reported and positions opened, protective OCO exits,
snapshots and reconciliation -- with the agent SIGKILLed at chosen and at random points: no order is
ever placed twice and every fill is recorded once."""

from __future__ import annotations

import random
import re
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from tests.support.kite_stub import KiteState, kite_stub
from tests.support.live import Http, live_portfolio_with_placed_signals, make_bars, wait_until
from tests.support.processes import Proc, Server, tt_env

SLOTS = 8


def _otp(mail_dir: Path, address: str) -> str:
    for _ in range(200):
        for f in sorted(mail_dir.glob("*.eml"), reverse=True):
            text = f.read_text()
            if f"To: {address}" in text and (m := re.search(r"code: (\d{6})", text)):
                return m.group(1)
        time.sleep(0.05)
    raise AssertionError("no sign-in email")


def _until(what: str, check: Callable[[], Any], timeout: float = 60.0) -> Any:
    return wait_until(what, check, timeout, interval=0.1)


def test_agent_places_reports_and_survives_sigkill(tmp_path: Path) -> None:
    make_bars(tmp_path / "var" / "data")
    with kite_stub(KiteState()) as (root, kite):
        env = tt_env(tmp_path, scheduler="false", kite_api_root=root)
        server = Server(env, tmp_path / "serve.log").start()
        agents: list[Proc] = []
        try:
            base = server.url
            s = requests.Session()
            s.headers["X-Requested-With"] = "tradertape"  # as the web app sends (CSRF, api/csrf.py)
            s.post(base + "/api/auth/magic-link", json={"email": "trader@example.com"}).raise_for_status()
            s.post(base + "/api/auth/verify-link",
                   json={"email": "trader@example.com", "otp": _otp(tmp_path / "var" / "mail", "trader@example.com")}
                   ).raise_for_status()
            s.post(base + "/api/auth/kite-credentials",
                   json={"api_key": kite.api_key, "api_secret": kite.api_secret}).raise_for_status()
            key = s.post(base + "/api/auth/agent-key").json()["key"]
            # the user logs in to Kite; Kite redirects to the callback with a request token
            login = s.get(base + "/api/auth/kite/login-url").json()["login_url"]
            state = parse_qs(parse_qs(urlsplit(login).query)["redirect_params"][0])["state"][0]
            r = s.get(base + "/api/auth/kite/callback",
                      params={"request_token": kite.issue_request_token(), "status": "success", "state": state})
            assert r.status_code == 200, r.text
            pf, placed = live_portfolio_with_placed_signals(Http(s, base), slots=SLOTS)
            ids = {p["id"] for p in placed}

            # the API.md example: pending signals with requests and the Bearer key
            headers = {"Authorization": f"Bearer {key}"}
            pending = requests.get(f"{base}/api/agent/pending-signals", headers=headers)
            assert pending.status_code == 200 and {x["id"] for x in pending.json()} == ids

            agent_env = dict(env, TRADERTAPE_AGENT_KEY=key, TRADERTAPE_LOG_LEVEL="INFO")
            args = ["agent", "--server", base, "--kite-root", root, "--poll", "0.1", "--sync-every", "0.5",
                    "--state-dir", str(tmp_path / "agent")]

            def run_agent(crash: str | None = None) -> Proc:
                e = dict(agent_env, TRADERTAPE_AGENT_CRASH=crash) if crash else agent_env
                proc = Proc(args, e, tmp_path / "agent.log").start()
                agents.append(proc)
                return proc

            # crashes at every critical point of a placement, in turn (the agent SIGKILLs itself there)
            for crash in ("before_place:2", "after_place:2", "after_journal:2", "after_report:2"):
                proc = run_agent(crash)
                assert proc.p is not None
                assert proc.p.wait(60) == -9, f"agent did not crash at {crash}: {(tmp_path / 'agent.log').read_text()}"
            status = s.get(base + "/api/auth/status").json()
            assert status["connected"] is True and status["user_id"] == "AB1234"

            rng = random.Random(7)
            log_path = tmp_path / "agent.log"

            def kill_at_random(slow: float) -> None:
                """Start an agent, SIGKILL it at a random moment of its work while Kite answers slowly."""
                kite.delay = slow
                started = log_path.read_text().count("agent started")
                victim = run_agent()
                _until("the agent to start", lambda: log_path.read_text().count("agent started") > started)
                time.sleep(rng.uniform(0.0, 0.6))
                victim.kill9()
                kite.delay = 0.0

            kill_at_random(0.05)
            proc = run_agent()

            def working() -> list[dict[str, Any]]:
                return list(requests.get(f"{base}/api/agent/pending-signals", headers=headers,
                                         params={"state": "working"}).json())

            _until("every entry at the broker", lambda: {x["id"] for x in working()} == ids)
            entries = [p for p in kite.placements if p["side"] == "BUY"]
            assert len(entries) == SLOTS, entries
            assert Counter(p["symbol"] for p in entries) == Counter(p["symbol"] for p in placed)  # none twice
            by_gtt = {str(p["id"]): p for p in entries}
            assert all(x["gtt_id"] in by_gtt for x in working())

            # Kite triggers every entry GTT; the agent reports the fills and places the protective exits,
            # SIGKILLed at random moments meanwhile
            proc.kill9()
            assert kite.trigger_all() == SLOTS
            for _ in range(3):
                kill_at_random(0.1)
            proc = run_agent()

            def open_positions() -> list[dict[str, Any]]:
                return list(s.get(base + "/api/model/positions",
                                  params={"portfolio_id": pf["id"], "status": "open"}).json())

            positions = _until("positions open", lambda: len(open_positions()) == SLOTS and open_positions())
            signals = {x["id"]: x for x in s.get(base + "/api/model/signals",
                                                 params={"portfolio_id": pf["id"]}).json()}
            for p in placed:
                sig = signals[p["id"]]
                # filled at the limit, put onto the tick grid Kite enforces today (never above the limit)
                tick = kite.tick_of(sig["symbol"])
                assert sig["status"] == "executed"
                assert sig["limit_price"] - tick < sig["fill_price"] <= sig["limit_price"]
            assert sorted(p["signal_id"] for p in positions) == sorted(ids)  # one position per fill

            # protective exits: one two-leg OCO SELL GTT per position, placed once
            _until("protective OCOs", lambda: len([p for p in kite.placements if p["side"] == "SELL"]) == SLOTS)
            exits = [p for p in kite.placements if p["side"] == "SELL"]
            assert all(len(p["triggers"]) == 2 for p in exits)
            assert Counter(p["symbol"] for p in exits) == Counter(p["symbol"] for p in positions)

            # snapshots reach the server; the model and the broker agree
            def recon() -> Any:
                got = s.get(base + "/api/model/dashboard", params={"portfolio_id": pf["id"]}).json()["reconciliation"]
                return got if got["synced_at"] and got["in_sync"] else None

            _until("reconciliation in sync", recon)

            # the targets are hit: positions close at their targets
            assert kite.trigger_all() == SLOTS
            closed = _until("positions closed", lambda: len(found := s.get(
                base + "/api/model/positions", params={"portfolio_id": pf["id"], "status": "closed"}).json()
            ) == SLOTS and found)
            assert {c["exit_reason"] for c in closed} == {"target"}
            assert Counter(p["side"] for p in kite.placements) == {"BUY": SLOTS, "SELL": SLOTS}
            log = (tmp_path / "agent.log").read_text()
            assert "placed GTT" in log and "filled" in log
        finally:
            for a in agents:
                a.stop()
            server.stop()
