"""Issue 4's acceptance as a new user would do it, against real processes: `tradertape serve` (embedded
default, with its scheduler) and `tradertape sim advance` as a separate command. Log in, fork
v3_dip_buyer, backtest it, deploy a paper portfolio, scan, approve two signals, place the cart, advance
20 days, and see fills, positions, exits and P&L on the dashboard."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import requests

from tests.support.processes import Server, health, run_cli, tt_env

ROOT = Path(__file__).parents[2]


_cli = run_cli


def _caught_up(base: str) -> None:
    deadline = time.monotonic() + 30
    while health(base)["projection_lag"] and time.monotonic() < deadline:
        time.sleep(0.1)


def test_new_user_paper_trades_a_forked_strategy(tmp_path: Path) -> None:
    # The history `make run` generates (nifty_100 from 2015), cut at a close where the dips strategy has
    # several candidates. That day is in the past, so the wall-clock expiry sweep (which would rightly
    # expire signals of stale data) is slowed down for the test.
    # fills here come from the daily bars `sim advance` appends; fills on live ticks (which would depend on
    # the time of day) are covered by tests/integration/test_paper_ticks.py
    env = tt_env(tmp_path, expiry_sweep_seconds=3600, paper_tick_fills="false")
    _cli(env, "data", "generate", "--universe", "nifty_100", "--from", "2015-01-01", "--to", "2026-07-31")
    server = Server(env, tmp_path / "serve.log").start()
    try:
        base, s = server.url, requests.Session()
        s.headers["X-Requested-With"] = "tradertape"  # as the web app sends (CSRF, api/csrf.py)
        addr = "new.trader@example.com"
        assert s.post(base + "/api/auth/magic-link", json={"email": addr}).status_code == 200
        mail = next((tmp_path / "var" / "mail").glob("*.eml")).read_text()
        otp = re.search(r"code: (\d{6})", mail).group(1)  # type: ignore[union-attr]
        assert s.post(base + "/api/auth/verify-link", json={"email": addr, "otp": otp}).status_code == 200

        template = next(t for t in s.get(base + "/api/strategies", params={"is_template": True}).json()
                        if t["base_model"] == "v3_dip_buyer")
        fork = s.post(base + f"/api/strategies/{template['id']}/fork", json={"name": "My dips"}).json()
        bt = s.post(base + "/api/backtest/run", json={
            "strategy_id": fork["id"], "universe": "nifty_100", "start_date": "2024-01-01",
            "end_date": "2026-07-31", "starting_capital": 1_000_000, "max_positions": 10})
        assert bt.status_code == 200 and bt.json()["summary"]["total_trades"] > 0
        pf = s.post(base + "/api/model/portfolios/deploy", json={
            "strategy_id": fork["id"], "name": "Dip paper", "mode": "paper", "capital": 1_000_000,
            "universe": "nifty_100", "position_size_pct": 10, "max_positions": 5, "max_per_sector": 2}).json()

        pending: list[dict[str, Any]] = []
        for _ in range(10):  # scan; if fewer than two wait for approval, let a day pass
            assert s.post(base + "/api/model/scan", json={"portfolio_id": pf["id"]}).status_code == 200
            pending = s.get(base + "/api/model/signals", params={"portfolio_id": pf["id"],
                                                                 "status": "pending_approval"}).json()
            if len(pending) >= 2:
                break
            _cli(env, "sim", "advance", "--days", "1")
            _caught_up(base)
        assert len(pending) >= 2
        for sig in pending[:2]:
            r = s.post(base + f"/api/model/signals/{sig['id']}/approve")
            assert r.status_code == 200 and r.json()["status"] == "in_cart"
        placed = s.post(base + "/api/model/cart/place").json()
        assert len(placed["placed"]) == 2 and placed["refused"] == []

        out = _cli(env, "sim", "advance", "--days", "20")
        assert "Advanced 20 trading day(s)" in out
        _caught_up(base)
        dash = s.get(base + "/api/model/dashboard", params={"portfolio_id": pf["id"]}).json()
        assert len(dash["equity_curve"]) >= 21
        mine = {x["id"]: x for x in s.get(base + "/api/model/signals", params={"portfolio_id": pf["id"],
                                                                             "limit": 500}).json()}
        outcome = [mine[p["id"]] for p in placed["placed"]]
        # a limit (GTT) entry fills when the next day trades at or below it, else it expires unfilled
        assert all(x["status"] in ("executed", "expired") for x in outcome), outcome
        filled = [x for x in outcome if x["status"] == "executed"]
        assert filled and all(x["fill_price"] and x["position_id"] for x in filled)
        closed = s.get(base + "/api/model/positions", params={"portfolio_id": pf["id"], "status": "closed"}).json()
        held = s.get(base + "/api/model/positions", params={"portfolio_id": pf["id"], "status": "open"}).json()
        assert closed or held
        # every filled entry became a position that is either still held or closed
        assert {x["position_id"] for x in filled} <= {p["id"] for p in closed + held}
        realized = round(sum(p["realized_pnl"] for p in closed), 2)
        unrealized = round(sum(p["unrealized_pnl"] for p in held), 2)
        assert abs(dash["total_pnl"] - (realized + unrealized)) <= 0.05 * max(1, len(closed) + len(held))
        h = health(base)
        assert h["scheduler"]["enabled"] is True and h["scheduler"]["last_error"] is None
    finally:
        server.stop()
