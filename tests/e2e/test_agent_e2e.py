"""`tradertape agent` as a real process against `tradertape serve` and the Kite stub: the Kite login
hand-over, GTT placement for a live portfolio, fills reported and positions opened, protective OCO exits,
snapshots and reconciliation -- with the agent SIGKILLed at chosen and at random points: no order is
ever placed twice and every fill is recorded once."""

from __future__ import annotations

import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import requests

from tests.support.kite_live import kite_world
from tests.support.processes import Proc

SLOTS = 8


def test_agent_places_reports_and_survives_sigkill(tmp_path: Path) -> None:
    # the user signed in, saved Kite credentials, made an agent key and logged in to Kite (kite_world)
    with kite_world(tmp_path) as w:
        s, base, kite = w.s, w.base, w.kite
        pf, placed = w.portfolio(slots=SLOTS)
        ids = {p["id"] for p in placed}

        # the API.md example: pending signals with requests and the Bearer key
        headers = {"Authorization": f"Bearer {w.key}"}
        pending = requests.get(f"{base}/api/agent/pending-signals", headers=headers)
        assert pending.status_code == 200 and {x["id"] for x in pending.json()} == ids

        def run_agent(crash: str | None = None) -> Proc:
            return w.start_agent(**({"TRADERTAPE_AGENT_CRASH": crash} if crash else {}))

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
            w.until("the agent to start", lambda: log_path.read_text().count("agent started") > started)
            time.sleep(rng.uniform(0.0, 0.6))
            victim.kill9()
            kite.delay = 0.0

        kill_at_random(0.05)
        proc = run_agent()

        w.until("every entry at the broker", lambda: {x["id"] for x in w.working()} == ids)
        entries = [p for p in kite.placements if p["side"] == "BUY"]
        assert len(entries) == SLOTS, entries
        assert Counter(p["symbol"] for p in entries) == Counter(p["symbol"] for p in placed)  # none twice
        by_gtt = {str(p["id"]): p for p in entries}
        assert all(x["gtt_id"] in by_gtt for x in w.working())

        # Kite triggers every entry GTT; the agent reports the fills and places the protective exits,
        # SIGKILLed at random moments meanwhile
        proc.kill9()
        assert kite.trigger_all() == SLOTS
        for _ in range(3):
            kill_at_random(0.1)
        proc = run_agent()

        positions = w.until("positions open", lambda: len(found := w.positions(pf["id"], "open")) == SLOTS and found)
        signals = w.signals(pf["id"])
        for p in placed:
            sig = signals[p["id"]]
            # filled at the limit, put onto the tick grid Kite enforces today (never above the limit)
            tick = kite.tick_of(sig["symbol"])
            assert sig["status"] == "executed"
            assert sig["limit_price"] - tick < sig["fill_price"] <= sig["limit_price"]
        assert sorted(p["signal_id"] for p in positions) == sorted(ids)  # one position per fill

        # protective exits: one two-leg OCO SELL GTT per position, placed once
        w.until("protective OCOs", lambda: len([p for p in kite.placements if p["side"] == "SELL"]) == SLOTS)
        exits = [p for p in kite.placements if p["side"] == "SELL"]
        assert all(len(p["triggers"]) == 2 for p in exits)
        assert Counter(p["symbol"] for p in exits) == Counter(p["symbol"] for p in positions)

        # snapshots reach the server; the model and the broker agree
        def recon() -> Any:
            got = s.get(base + "/api/model/dashboard", params={"portfolio_id": pf["id"]}).json()["reconciliation"]
            return got if got["synced_at"] and got["in_sync"] else None

        w.until("reconciliation in sync", recon)

        # the targets are hit: positions close at their targets
        assert kite.trigger_all() == SLOTS
        closed = w.until("positions closed", lambda: len(found := w.positions(pf["id"], "closed")) == SLOTS and found)
        assert {c["exit_reason"] for c in closed} == {"target"}
        assert Counter(p["side"] for p in kite.placements) == {"BUY": SLOTS, "SELL": SLOTS}
        assert "placed GTT" in w.log and "filled" in w.log
