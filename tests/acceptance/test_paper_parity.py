"""Parity: a paper portfolio with auto_approve, advanced through the simulated market day by day, makes
exactly the trades `POST /api/backtest/run` makes over the same window and data -- symbols, dates,
prices, quantities, exit reasons, P&L and charges -- and ends with the same equity."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from infra.bars.store import BarStore
from infra.bars.synthetic import extend, generate
from infra.bars.universes import load_universe

UNIVERSE = "nifty_50"
DAYS = 90


def _template(client: Any, base_model: str) -> int:
    templates = client.get("/api/strategies", params={"is_template": True}).json()
    return int(next(t["id"] for t in templates if t["base_model"] == base_model))


@pytest.mark.parametrize(("base_model", "params"), [
    ("v3_dip_buyer", {}),  # limit GTT entries, stop, target, max hold
    ("sma_crossover", {"fast": 5, "slow": 20}),  # market entries at the next open, exit rule (cross below)
    ("momentum_breakout", {}),  # trailing stop
])
def test_paper_portfolio_reproduces_the_backtest(api: Any, base_model: str, params: dict[str, Any]) -> None:
    store = BarStore(api.platform.settings.data_dir)
    universe = load_universe(UNIVERSE)
    generate(store, universe, date(2019, 1, 1), date(2020, 6, 30))
    api.login()
    strategy_id = _template(api, base_model)
    if params:
        template = api.get(f"/api/strategies/{strategy_id}").json()
        body = {k: template[k] for k in ("base_model", "entry_rules", "exit_rules")}
        if base_model == "sma_crossover":
            body["entry_rules"] = {"all": [{"left": {"ind": "sma", "period": 5}, "op": "crosses_above",
                                            "right": {"ind": "sma", "period": 20}}]}
            body["exit_rules"] = {**template["exit_rules"], "exit_when": {"all": [
                {"left": {"ind": "sma", "period": 5}, "op": "crosses_below", "right": {"ind": "sma", "period": 20}}]}}
        r = api.post("/api/strategies", json={"name": "parity", **body, "params": {**template["params"], **params}})
        assert r.status_code == 201, r.text
        strategy_id = r.json()["id"]
    limits = {"position_size_pct": 15, "max_positions": 6, "max_per_sector": 2}
    r = api.post("/api/model/portfolios/deploy", json={
        "strategy_id": strategy_id, "name": "parity", "mode": "paper", "capital": 2_000_000, "universe": UNIVERSE,
        "auto_approve": True, "slippage_bps": 5, **limits})
    assert r.status_code == 201, r.text
    pf = r.json()
    start = pf["deployed_on"]

    clock = api.app.state.market_clock
    clock.run_due()  # the deployment day's close: its scan
    for _ in range(DAYS):
        day = extend(store, universe, 1)[0].isoformat()
        clock.run_due(day)  # the market clock's step: fills and exits on the new bars, then the scan
    end = store.last_date().isoformat()  # type: ignore[union-attr]
    api.app.state.read_your_writes.wait([], api.platform.store.max_position())

    r = api.post("/api/backtest/run", json={
        "strategy_id": strategy_id, "universe": UNIVERSE, "start_date": start, "end_date": end,
        "starting_capital": 2_000_000, "slippage_bps": 5, **limits})
    assert r.status_code == 200, r.text
    bt = r.json()

    closed = api.get("/api/model/positions", params={"portfolio_id": pf["id"], "status": "closed",
                                                     "limit": 500}).json()
    paper = sorted(
        (p["symbol"], p["entry_date"], p["avg_price"], p["exit_date"], p["exit_price"], p["quantity"],
         p["exit_reason"], round(p["realized_pnl"], 2), round(p["charges"], 2)) for p in closed)
    backtest = sorted(
        (t["symbol"], t["entry_date"], t["entry_price"], t["exit_date"], t["exit_price"], t["quantity"],
         t["exit_reason"], round(t["pnl"], 2), round(t["charges"], 2)) for t in bt["trades"])
    assert len(backtest) >= 4, f"the window should hold trades to compare, got {backtest}"
    assert paper == backtest

    still_open = api.get("/api/model/positions", params={"portfolio_id": pf["id"], "status": "open"}).json()
    assert sorted((p["symbol"], p["entry_date"], p["avg_price"], p["quantity"]) for p in still_open) == sorted(
        (p["symbol"], p["entry_date"], p["entry_price"], p["quantity"]) for p in bt["open_positions"])
    dash = api.get("/api/model/dashboard", params={"portfolio_id": pf["id"]}).json()
    assert dash["equity"] == pytest.approx(bt["summary"]["final_equity"], abs=0.01)
    curve = [(p["date"], p["equity"]) for p in dash["equity_curve"]]
    assert curve == [(p["date"], pytest.approx(p["equity"], abs=0.01)) for p in bt["equity_curve"]]
