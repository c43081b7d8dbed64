"""Helpers shared by the agent tests: a user with a live portfolio whose signals are placed (queued for
the agent), over any HTTP client (FastAPI's TestClient or a requests.Session with a base URL)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from infra.bars.store import BarStore
from infra.bars.synthetic import generate
from infra.bars.universes import load_universe

UNIVERSE = "nifty_50"
# every stock is a candidate at every close: a scan fills the portfolio's slots at once
ALWAYS = {"all": [{"left": {"ind": "close"}, "op": ">", "right": 0}]}


def make_bars(data_dir: Path) -> None:
    generate(BarStore(data_dir), load_universe(UNIVERSE), date(2020, 1, 1), date(2020, 12, 31))


class Http:
    """`get`/`post` with paths, over a TestClient (relative URLs) or a requests.Session and a base URL."""

    def __init__(self, client: Any, base: str = "") -> None:
        self.client = client
        self.base = base

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(self.base + path, **kw)

    def post(self, path: str, **kw: Any) -> Any:
        return self.client.post(self.base + path, **kw)


def live_portfolio_with_placed_signals(http: Http, slots: int = 4, entry_order: str = "limit",
                                       auto_approve: bool = False, mode: str = "live",
                                       params: dict[str, Any] | None = None,
                                       exit_rules: dict[str, Any] | None = None,
                                       **deploy: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Create an always-true strategy, deploy it (live unless `mode`; `params` and `deploy` add to the
    strategy's params and the deploy body; `exit_rules` to its exit rules), scan, approve every signal and
    place the cart. Returns (portfolio, placed signals)."""
    body = {"name": "Always in", "description": "", "base_model": "v3_dip_buyer", "entry_rules": ALWAYS,
            "exit_rules": {"stop_loss_pct": 5, "target_pct": 10, "trailing_stop_pct": None, "max_hold_days": None,
                           "exit_when": None, **(exit_rules or {})},
            "params": {"entry_order": entry_order, "entry_validity_days": 5, **(params or {})}, "is_active": True}
    r = http.post("/api/strategies", json=body)
    assert r.status_code == 201, r.text
    deploy = {"strategy_id": r.json()["id"], "name": "Live", "mode": mode, "capital": 10_000_000,
              "universe": UNIVERSE, "position_size_pct": 5, "max_positions": slots, "auto_approve": auto_approve,
              **deploy}
    r = http.post("/api/model/portfolios/deploy", json=deploy)
    assert r.status_code == 201, r.text
    pf = r.json()
    r = http.post("/api/model/scan", json={"portfolio_id": pf["id"]})
    assert r.status_code == 200, r.text
    signals = r.json()["signals"]
    assert len(signals) == slots, signals
    for s in signals:
        r = http.post(f"/api/model/signals/{s['id']}/approve")
        assert r.status_code == 200, r.text
    r = http.post("/api/model/cart/place", json={"portfolio_id": pf["id"]})
    assert r.status_code == 200, r.text
    placed = r.json()["placed"]
    assert len(placed) == slots and all(p["status"] == "placed" for p in placed), placed
    if mode == "live":  # queued for the agent, not at the broker yet
        assert all(p["gtt_id"] is None for p in placed), placed
    return pf, placed


def wait_until(what: str, check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05) -> Any:
    """Poll `check` until it returns something truthy (returned); fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")
