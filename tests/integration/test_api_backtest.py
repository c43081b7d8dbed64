"""Backtests over HTTP: runs by template and inline strategy, determinism, validation, stored runs."""

from __future__ import annotations

import json
import time
from datetime import date
from typing import Any

import pytest

from infra.bars.store import BarStore
from infra.bars.synthetic import generate
from infra.bars.universes import load_universe

SUMMARY_KEYS = {
    "cagr", "total_return", "final_equity", "sharpe", "sortino", "calmar", "max_drawdown", "max_drawdown_days",
    "volatility", "win_rate", "profit_factor", "expectancy", "avg_win", "avg_loss", "best_trade", "worst_trade",
    "max_consecutive_wins", "max_consecutive_losses", "total_trades", "avg_holding_days", "exposure_pct",
    "total_charges", "benchmark_return", "alpha", "beta",
}
TRADE_KEYS = {"symbol", "sector", "entry_date", "entry_price", "exit_date", "exit_price", "quantity", "pnl",
              "pnl_pct", "charges", "exit_reason", "holding_days", "conviction"}


@pytest.fixture
def bt(api: Any) -> Any:
    generate(BarStore(api.platform.settings.data_dir), load_universe("nifty_50"), date(2019, 1, 1),
             date(2021, 12, 31))
    api.login()
    return api


def _template_id(client: Any, base_model: str = "v3_dip_buyer") -> int:
    templates = client.get("/api/strategies", params={"is_template": True}).json()
    return int(next(t["id"] for t in templates if t["base_model"] == base_model))


def _request(strategy_id: int, /, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "strategy_id": strategy_id, "universe": "nifty_50", "start_date": "2019-01-01", "end_date": "2021-12-31",
        "starting_capital": 1_000_000, "position_size_pct": 10, "max_positions": 10, "max_per_sector": 2,
        "slippage_bps": 5,
    }
    body.update(changes)
    return body


def _matches_its_model(run: dict[str, Any]) -> None:
    """A run is sent as built (api/public/base.py, as_built): it must still be what its response model says,
    key for key and type for type (an int stays an int)."""
    from api.public.backtests import BacktestRunPublic

    again = BacktestRunPublic.model_validate(run).model_dump(mode="json", by_alias=True, exclude_unset=True)
    assert again == run and json.dumps(again, sort_keys=True) == json.dumps(run, sort_keys=True)


def test_run_template_returns_full_result_and_is_deterministic(bt: Any) -> None:
    body = _request(_template_id(bt))
    t0 = time.perf_counter()
    r = bt.post("/api/backtest/run", json=body)
    elapsed = time.perf_counter() - t0
    print(f"\nPOST /api/backtest/run v3_dip_buyer nifty_50 2019-2021: {elapsed * 1000:.0f} ms "
          f"(engine {r.json().get('diagnostics', {}).get('elapsed_ms')} ms)")
    assert r.status_code == 200, r.text
    run = r.json()
    assert run["status"] == "completed" and isinstance(run["id"], int) and run["created_at"]
    assert SUMMARY_KEYS <= set(run["summary"])
    assert run["trades"] and TRADE_KEYS <= set(run["trades"][0])
    assert run["equity_curve"][0]["date"] >= "2019-01-01" and run["equity_curve"][-1]["date"] <= "2021-12-31"
    assert {"date", "equity", "cash", "drawdown_pct"} <= set(run["equity_curve"][0])
    assert run["monthly_returns"] and "open_positions" in run
    assert {"signals_generated", "skipped_max_positions", "skipped_max_per_sector", "skipped_cash",
            "bars_processed", "elapsed_ms"} <= set(run["diagnostics"])
    assert run["params"]["universe"] == "nifty_50" and run["params"]["strategy"]["base_model"] == "v3_dip_buyer"
    assert run["params"]["benchmark"] == "NIFTY50"
    _matches_its_model(run)

    t0 = time.perf_counter()
    again = bt.post("/api/backtest/run", json=body).json()
    print(f"second (warm worker) run: {(time.perf_counter() - t0) * 1000:.0f} ms")
    assert again["id"] != run["id"]
    assert again["summary"] == run["summary"] and again["trades"] == run["trades"]


def test_inline_strategy_and_custom_symbols(bt: Any) -> None:
    inline = {"base_model": "sma_crossover", "params": {}}
    body = _request(0, strategy=inline, universe=None, symbols=["nse:reliance", "TCS", "INFY", "HDFCBANK"],
                    start_date="2020-01-01")
    del body["strategy_id"], body["universe"]
    r = bt.post("/api/backtest/run", json=body)
    assert r.status_code == 200, r.text
    run = r.json()
    assert run["params"]["symbols"] == ["RELIANCE", "TCS", "INFY", "HDFCBANK"]
    assert run["params"]["strategy"]["entry_rules"]["all"][0]["op"] == "crosses_above"
    assert {t["symbol"] for t in run["trades"]} <= {"RELIANCE", "TCS", "INFY", "HDFCBANK"}

    bad = dict(body, strategy={"base_model": "sma_crossover", "entry_rules": {"all": [
        {"left": {"ind": "magic"}, "op": ">", "right": 1}]}})
    r = bt.post("/api/backtest/run", json=bad)
    assert r.status_code == 422 and "entry_rules.all[0].left.ind" in str(r.json()["detail"])


@pytest.mark.parametrize("changes,status,fragment", [
    ({"start_date": "2021-01-01", "end_date": "2020-01-01"}, 400, "before start_date"),
    ({"starting_capital": 0}, 422, "starting_capital"),
    ({"position_size_pct": 150}, 422, "position_size_pct"),
    ({"max_positions": 0}, 422, "max_positions"),
    ({"max_per_sector": 0}, 422, "max_per_sector"),
    ({"slippage_bps": -1}, 422, "slippage_bps"),
    ({"charges": "free"}, 422, "charges"),
    ({"start_date": "2020-02-30"}, 422, "start_date"),
    ({"universe": "nifty_9000"}, 400, "Unknown universe; choose one of: nifty_50, nifty_100"),
    ({"universe": None, "symbols": ["RELIANCE", "NOTACOMPANY"]}, 400, "NOTACOMPANY"),
    ({"start_date": "2015-01-01"}, 400, "2019-01-01..2021-12-31"),
    ({"end_date": "2024-01-01"}, 400, "outside the available history"),
    ({"strategy_id": 987654}, 404, "987654"),
    ({"benchmark": "NOSUCHINDEX"}, 400, "NOSUCHINDEX"),
])
def test_invalid_requests_are_4xx_with_a_clear_detail(bt: Any, changes: dict[str, Any], status: int,
                                                      fragment: str) -> None:
    body = _request(_template_id(bt), **changes)
    body = {k: v for k, v in body.items() if v is not None}
    r = bt.post("/api/backtest/run", json=body)
    assert r.status_code == status, r.text
    assert fragment in str(r.json()["detail"])


def _detail(r: Any) -> str:
    return json.dumps(r.json()["detail"], ensure_ascii=False)


def test_a_range_of_holidays_says_so_and_quotes_no_coverage(bt: Any) -> None:
    """Republic Day, or a weekend, holds no trading day: say that, not where the engine's bars end."""
    tid = _template_id(bt)
    for start, end in (("2021-01-26", "2021-01-26"), ("2020-03-07", "2020-03-08")):
        r = bt.post("/api/backtest/run", json=_request(tid, start_date=start, end_date=end))
        assert r.status_code == 400, r.text
        detail = r.json()["detail"]
        assert detail == (f"no trading days between {start} and {end} (only weekends or NSE holidays): choose a "
                          "range with at least one trading day")
    # outside the stored history the answer quotes the history, the whole of it
    r = bt.post("/api/backtest/run", json=_request(tid, start_date="2022-01-26", end_date="2022-01-26"))
    assert r.status_code == 400 and "outside the available history 2019-01-01..2021-12-31" in r.json()["detail"]


@pytest.mark.parametrize("capital", [1e-9, 0.5, 999.99])
def test_starting_capital_below_1000_is_a_422(bt: Any, capital: float) -> None:
    r = bt.post("/api/backtest/run", json=_request(_template_id(bt), starting_capital=capital))
    assert r.status_code == 422, r.text
    [err] = r.json()["detail"]
    assert err["loc"] == ["body", "starting_capital"]
    assert err["msg"] == "Input should be greater than or equal to 1000" and str(capital) not in r.text


def test_errors_name_no_sent_text_but_valid_unknown_symbols(bt: Any) -> None:
    tid = _template_id(bt)
    custom = {"universe": None, "start_date": "2021-01-01", "end_date": "2021-03-31"}

    def post(**changes: Any) -> Any:
        body = {k: v for k, v in _request(tid, **{**custom, **changes}).items() if v is not None}
        return bt.post("/api/backtest/run", json=body)

    huge = "A" * 200_000
    r = post(symbols=["RELIANCE", huge])
    assert r.status_code == 422 and huge[:41] not in r.text and len(r.text) < 2000  # each symbol: at most 40
    for bad in ("TCS;DROP", "../../etc/passwd", "BSE:INFY", "A" * 31, "INFY*"):
        r = post(symbols=["RELIANCE", "TCS", bad])
        assert r.status_code == 422, r.text
        assert "symbols[3] is not a valid symbol" in _detail(r) and bad not in _detail(r)
    r = post(symbols=["RELIANCE", "RELI\u202eANCE"])  # refused as text before it is read as a symbol
    assert r.status_code == 422 and "\u202e" not in _detail(r) and "RELI" not in _detail(r)
    # a symbol of the symbol form that is not known is named: it tells which one of several to fix
    r = post(symbols=["RELIANCE", "NOTACOMPANY", "nse:infy"])
    assert r.status_code == 400 and r.json()["detail"].startswith("Unknown symbol(s): NOTACOMPANY. ")
    many = [f"NOSUCH{i}" for i in range(25)]
    r = post(symbols=many)
    assert r.status_code == 400
    assert r.json()["detail"].startswith(f"Unknown symbol(s): {', '.join(many[:10])} and 15 more. ")
    assert "NOSUCH10" not in r.json()["detail"]

    for benchmark in ("NOPE\x01", "NOPE!", "NIFTY 50", "../NIFTY50", "B" * 64):
        r = bt.post("/api/backtest/run", json=_request(tid, benchmark=benchmark))
        assert r.status_code == 422, r.text
        assert benchmark not in _detail(r) and "NOPE" not in _detail(r) and "BBBB" not in _detail(r)
        if benchmark.isprintable():  # (a control character is refused as text first)
            assert "benchmark is not a valid symbol" in _detail(r)
    r = bt.post("/api/backtest/run", json=_request(tid, benchmark="NOSUCHINDEX"))
    assert r.status_code == 400 and r.json()["detail"] == "Unknown benchmark NOSUCHINDEX: no bars stored for it"

    r = bt.post("/api/backtest/run", json=_request(tid, universe="../../etc/passwd"))
    assert r.status_code == 400 and r.json()["detail"] == "Unknown universe; choose one of: nifty_50, nifty_100"


def test_ownership_of_strategies_and_runs(api_factory: Any) -> None:
    alice, bob = api_factory(), api_factory()
    generate(BarStore(alice.platform.settings.data_dir), load_universe("nifty_50"), date(2019, 1, 1),
             date(2021, 12, 31))
    alice.login()
    bob.login()
    r = alice.post("/api/strategies", json={"name": "secret", "base_model": "v3_dip_buyer"})
    assert r.status_code == 201
    private_id = r.json()["id"]
    short = {"start_date": "2021-01-01", "end_date": "2021-06-30", "max_per_sector": None}

    r = bob.post("/api/backtest/run", json=_request(private_id, **short))
    assert r.status_code == 404 and str(private_id) in r.json()["detail"]

    ids = []
    for _ in range(3):
        r = alice.post("/api/backtest/run", json=_request(private_id, **short))
        assert r.status_code == 200, r.text
        ids.append(r.json()["id"])
    bob_run = bob.post("/api/backtest/run", json=_request(_template_id(bob), **short)).json()

    r = alice.get("/api/backtest/runs", params={"limit": 2})
    assert r.status_code == 200 and r.headers["X-Total-Count"] == "3"
    listed = r.json()
    assert [x["id"] for x in listed] == ids[::-1][:2]
    assert "trades" not in listed[0] and "equity_curve" not in listed[0] and "summary" in listed[0]
    assert [x["id"] for x in alice.get("/api/backtest/runs", params={"offset": 2}).json()] == [ids[0]]
    assert [x["id"] for x in bob.get("/api/backtest/runs").json()] == [bob_run["id"]]

    full = alice.get(f"/api/backtest/runs/{ids[0]}")
    assert full.status_code == 200 and "trades" in full.json() and "equity_curve" in full.json()
    assert full.json()["params"]["strategy_id"] == private_id
    assert bob.get(f"/api/backtest/runs/{ids[0]}").status_code == 404
    assert bob.delete(f"/api/backtest/runs/{ids[0]}").status_code == 404
    assert alice.delete(f"/api/backtest/runs/{ids[0]}").status_code == 204
    assert alice.get(f"/api/backtest/runs/{ids[0]}").status_code == 404
    assert alice.delete(f"/api/backtest/runs/{ids[0]}").status_code == 404
    assert alice.get("/api/backtest/runs").headers["X-Total-Count"] == "2"


@pytest.fixture
def bt_any(api_factory: Any, database_url: str) -> Any:
    """Like `bt`, on SQLite and on Postgres."""
    client = api_factory(database_url)
    generate(BarStore(client.platform.settings.data_dir), load_universe("nifty_50"), date(2019, 1, 1),
             date(2021, 12, 31))
    client.login()
    return client


def test_a_run_is_an_event_its_detail_reads_back_exactly_and_the_list_rebuilds(bt_any: Any) -> None:
    from streams.workers import make_projector

    bt = bt_any
    run = bt.post("/api/backtest/run", json=_request(_template_id(bt, "sma_crossover"))).json()
    stored = bt.get(f"/api/backtest/runs/{run['id']}").json()
    assert stored == run  # trades and equity curve come back from the analytics store unchanged
    events = [e for e in bt.platform.store.read(0, 10_000) if e.type == "BacktestCompleted"]
    assert len(events) == 1 and events[0].data["run_id"] == run["id"]
    assert events[0].data["summary"] == run["summary"] and "trades" not in events[0].data
    listed = bt.get("/api/backtest/runs").json()
    make_projector(bt.platform, "store").rebuild(bt.platform.store.max_position())
    assert bt.get("/api/backtest/runs").json() == listed
    assert bt.get(f"/api/backtest/runs/{run['id']}").json() == run
    assert bt.delete(f"/api/backtest/runs/{run['id']}").status_code == 204
    assert [e.type for e in bt.platform.store.read(0, 10_000)][-1] == "BacktestRunDeleted"
    assert not any(p.name == events[0].data["detail_ref"]
                   for p in (bt.platform.settings.analytics_dir / "backtests").iterdir())


def test_an_all_in_run_reports_refused_entries_and_warns_about_slots_it_cannot_fill(bt: Any) -> None:
    body = _request(_template_id(bt), position_size_pct=100, max_positions=3, max_per_sector=None)
    r = bt.post("/api/backtest/run", json=body)
    assert r.status_code == 200, r.text
    run = r.json()
    d = run["diagnostics"]
    assert any("3 x 100 % = 300 %" in w for w in d["warnings"])
    # sized at the signal's close, an all-in order is refused whenever the next open is higher
    assert d["refused_entries"] == len(run["refused_entries"]) > 0
    assert d["refused_entries"] == sum(d["refused_by_reason"].values())
    first = run["refused_entries"][0]
    assert {"symbol", "signal_date", "date", "quantity", "reason_code", "reason"} <= set(first)
    _matches_its_model(run)
    assert first["reason_code"] in ("insufficient_cash", "expired") and first["reason"]
    # the stored detail reads back the same list
    detail = bt.get(f"/api/backtest/runs/{run['id']}").json()
    assert detail["refused_entries"] == run["refused_entries"]
