"""Research sweeps over HTTP: queue, progress, results best first, heatmap, the best run recorded as an ordinary
backtest (and identical when re-run alone), limits, cancellation, deletion, privacy."""

from __future__ import annotations

import time
from datetime import date
from typing import Any

import pytest

from infra.bars.store import BarStore
from infra.bars.synthetic import generate
from infra.bars.universes import load_universe

SYMBOLS = ["RELIANCE", "TCS", "INFY", "HDFCBANK", "ICICIBANK", "ITC", "SBIN", "LT", "AXISBANK", "MARUTI"]


def _generate(client: Any) -> Any:
    generate(BarStore(client.platform.settings.data_dir), load_universe("nifty_50"), date(2019, 1, 1),
             date(2021, 12, 31))
    return client


@pytest.fixture
def lab(database_url: str, api_factory: Any) -> Any:  # the database first: it outlives the app
    """Generated NIFTY 50 bars, signed in; on SQLite and on Postgres."""
    client = _generate(api_factory(database_url))
    client.login()
    return client


def _sweep(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "strategy": {"base_model": "v3_dip_buyer"}, "symbols": SYMBOLS, "start_date": "2020-01-01",
        "end_date": "2021-12-31", "starting_capital": 1_000_000, "position_size_pct": 10, "max_positions": 10,
        "slippage_bps": 5,
        "grid": {"stop_loss_pct": [5, 8], "entry_rules.all.1.right": [30, 40], "max_positions": [3, 10]},
        "objective": "sharpe", "top_n": 2,
    }
    body.update(changes)
    return body


def _wait(client: Any, route: str, job_id: int, statuses: tuple[str, ...] = ("done", "failed", "cancelled"),
          limit_s: float = 240.0) -> dict[str, Any]:
    deadline = time.monotonic() + limit_s
    while True:
        job = client.get(f"/api/research/{route}/{job_id}").json()
        if job["status"] in statuses or time.monotonic() > deadline:
            return dict(job)
        time.sleep(0.2)


def test_sweep_ranks_every_combination_and_records_the_best_as_ordinary_runs(lab: Any) -> None:
    r = lab.post("/api/research/sweeps", json=_sweep())
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    assert isinstance(job_id, int)

    job = _wait(lab, "sweeps", job_id)
    assert job["status"] == "done", job
    assert job["progress"] == 1.0 and job["kind"] == "sweep"
    rows = job["results"]
    assert len(rows) == 8 == job["results_total"]
    combos = {(r["params"]["stop_loss_pct"], r["params"]["entry_rules.all.1.right"], r["params"]["max_positions"])
              for r in rows}
    assert len(combos) == 8
    eligible = [r for r in rows if r["eligible"]]
    assert eligible and rows[: len(eligible)] == eligible
    objectives = [r["objective"] for r in eligible]
    assert objectives == sorted(objectives, reverse=True)
    assert all(r["objective"] == r["metrics"]["sharpe"] for r in eligible)
    assert [r["rank"] for r in rows] == list(range(1, 9))
    assert job["params"]["labels"] == {"stop_loss_pct": "stop loss %", "entry_rules.all.1.right": "entry: rsi(14) < x",
                                       "max_positions": "max positions"}  # headers and axes in words

    # the best two combinations are ordinary backtest runs, the first is best_run_id
    assert len(job["run_ids"]) == 2 and job["best_run_id"] == job["run_ids"][0]
    best = lab.get(f"/api/backtest/runs/{job['best_run_id']}").json()
    assert best["summary"] == rows[0]["metrics"]
    assert best["params"]["research_job_id"] == job_id
    second = lab.get(f"/api/backtest/runs/{job['run_ids'][1]}").json()
    assert second["summary"] == rows[1]["metrics"]

    # the best combination re-run alone through the ordinary endpoint gives identical numbers
    p = rows[0]["params"]
    strategy = {"base_model": "v3_dip_buyer", "exit_rules": {**best["params"]["strategy"]["exit_rules"]},
                "entry_rules": best["params"]["strategy"]["entry_rules"]}
    assert strategy["exit_rules"]["stop_loss_pct"] == p["stop_loss_pct"]
    assert strategy["entry_rules"]["all"][1]["right"] == p["entry_rules.all.1.right"]
    alone = lab.post("/api/backtest/run", json={
        "strategy": strategy, "symbols": SYMBOLS, "start_date": "2020-01-01", "end_date": "2021-12-31",
        "starting_capital": 1_000_000, "position_size_pct": 10, "max_positions": p["max_positions"],
        "slippage_bps": 5})
    assert alone.status_code == 200, alone.text
    assert alone.json()["summary"] == rows[0]["metrics"]
    assert alone.json()["trades"] == best["trades"]

    # heatmap of two parameters: the best objective over the third, per cell
    h = lab.get(f"/api/research/sweeps/{job_id}/heatmap",
                params={"x": "stop_loss_pct", "y": "max_positions"})
    assert h.status_code == 200, h.text
    heat = h.json()
    assert heat["x_values"] == [5, 8] and heat["y_values"] == [3, 10]
    for yi, y in enumerate(heat["y_values"]):
        for xi, x in enumerate(heat["x_values"]):
            cell = [r["objective"] for r in eligible
                    if r["params"]["stop_loss_pct"] == x and r["params"]["max_positions"] == y]
            assert heat["values"][yi][xi] == (max(cell) if cell else None)
    trades = lab.get(f"/api/research/sweeps/{job_id}/heatmap",
                     params={"x": "stop_loss_pct", "y": "max_positions", "metric": "total_trades"}).json()
    top = max((r for r in eligible if r["params"]["stop_loss_pct"] == 5 and r["params"]["max_positions"] == 3),
              key=lambda r: (r["objective"], -r["index"]), default=None)
    assert trades["values"][0][0] == (top["metrics"]["total_trades"] if top else None)
    bad = lab.get(f"/api/research/sweeps/{job_id}/heatmap", params={"x": "stop_loss_pct", "y": "nope"})
    assert bad.status_code == 400 and "not a parameter of this sweep" in bad.json()["detail"]
    assert bad.json()["detail"].startswith("y ") and "nope" not in bad.json()["detail"]  # named, not echoed

    listed = lab.get("/api/research/jobs").json()
    assert [j["id"] for j in listed] == [job_id] and listed[0]["status"] == "done"
    assert listed[0]["url"] == f"/api/research/sweeps/{job_id}" and lab.get(listed[0]["url"]).status_code == 200

    # paging of the results
    page = lab.get(f"/api/research/sweeps/{job_id}", params={"limit": 3, "offset": 2}).json()
    assert page["results"] == rows[2:5]


def test_another_users_job_is_404_and_a_finished_job_is_deleted(lab: Any, api_factory: Any) -> None:
    job_id = lab.post("/api/research/sweeps", json=_sweep(grid={"stop_loss_pct": [5, 8]}, top_n=0)).json()["id"]
    job = _wait(lab, "sweeps", job_id)
    assert job["status"] == "done" and job["best_run_id"] is None and job["run_ids"] == []

    other = api_factory()
    other.login()
    assert other.get(f"/api/research/sweeps/{job_id}").status_code == 404
    assert other.get(f"/api/research/sweeps/{job_id}/heatmap", params={"x": "a", "y": "b"}).status_code == 404
    assert other.delete(f"/api/research/sweeps/{job_id}").status_code == 404
    assert other.get("/api/research/jobs").json() == []
    # the same id under another kind's route is not that kind's job
    assert lab.get(f"/api/research/walk-forward/{job_id}").status_code == 404

    assert lab.delete(f"/api/research/sweeps/{job_id}").status_code == 204
    assert lab.get(f"/api/research/sweeps/{job_id}").status_code == 404
    assert lab.get("/api/research/jobs").json() == []
    assert not any(p.is_dir() and not p.name.startswith(".")
                   for p in (lab.platform.settings.analytics_dir / "research").iterdir())


def test_one_running_job_per_user_and_cancellation(lab: Any) -> None:
    big = _sweep(grid={"stop_loss_pct": list(range(1, 41)), "target_pct": list(range(5, 55))}, top_n=0)
    first = lab.post("/api/research/sweeps", json=big)
    assert first.status_code == 202, first.text
    job_id = first.json()["id"]
    again = lab.post("/api/research/sweeps", json=_sweep())
    assert again.status_code == 409
    assert f"Research job {job_id} is still" in again.json()["detail"]

    assert lab.delete(f"/api/research/sweeps/{job_id}").status_code == 204
    job = lab.get(f"/api/research/sweeps/{job_id}").json()
    assert job["status"] == "cancelled" and job["results"] == []
    assert lab.app.state.research.wait(job_id, 120)
    assert lab.get(f"/api/research/sweeps/{job_id}").json()["status"] == "cancelled"

    # with the first one cancelled, the next is accepted
    nxt = lab.post("/api/research/sweeps", json=_sweep(grid={"stop_loss_pct": [5]}, top_n=0))
    assert nxt.status_code == 202
    assert _wait(lab, "sweeps", nxt.json()["id"])["status"] == "done"


def test_bounded_combinations_and_clear_errors(api_factory: Any) -> None:
    client = api_factory(research_max_combinations=6)
    generate(BarStore(client.platform.settings.data_dir), load_universe("nifty_50"), date(2019, 1, 1),
             date(2021, 12, 31))
    client.login()
    r = client.post("/api/research/sweeps", json=_sweep())  # 8 combinations
    assert r.status_code == 400
    assert r.json()["detail"] == "the sweep has 8 combinations after constraints; at most 6 per job"
    # constraints bring it under the bound
    ok = client.post("/api/research/sweeps", json=_sweep(constraints=["max_positions > 3"]))
    assert ok.status_code == 202, ok.text
    assert _wait(client, "sweeps", ok.json()["id"])["results_total"] == 4

    r = client.post("/api/research/sweeps", json=_sweep(grid={"nonsense": [1, 2]}))
    assert r.status_code == 400 and r.json()["detail"].startswith("grid: parameter 1 is not a sweep parameter")
    r = client.post("/api/research/sweeps", json=_sweep(grid={"stop_loss_pct": [5, 150]}))
    assert r.status_code == 400 and "combination 2 (in grid order): exit_rules.stop_loss_pct" in r.json()["detail"]
    r = client.post("/api/research/sweeps", json=_sweep(random={"stop_loss_pct": [3, 9], "samples": 4, "seed": 1}))
    assert r.status_code == 422  # grid and random
    r = client.post("/api/research/sweeps", json=_sweep(objective="luck"))
    assert r.status_code == 422
    r = client.post("/api/research/sweeps", json=_sweep(constraints=["import os"]))
    assert r.status_code == 422
    r = client.post("/api/research/sweeps", json=_sweep(start_date="2030-01-01", end_date="2030-06-30"))
    assert r.status_code == 400 and "outside the available history" in r.json()["detail"]


def test_an_empty_grid_and_a_token_capital_are_422s(api: Any) -> None:
    """Refused before anything is queued: an empty grid (once a job that failed with an Arrow error) and a
    capital below ₹1,000, on every research kind that takes a backtest body."""
    api.login()
    walk = {k: v for k, v in _sweep(windows=2).items() if k != "top_n"}
    for route, body in (("sweeps", _sweep()), ("walk-forward", walk)):
        r = api.post(f"/api/research/{route}", json={**body, "grid": {}})
        assert r.status_code == 422, r.text
        [err] = r.json()["detail"]
        assert err["loc"] == ["body", "grid"] and "grid: give at least one {param: [values]}" in err["msg"]
    for route, body in (("sweeps", _sweep()), ("walk-forward", walk), ("lookahead", _sweep(grid=None, top_n=None)),
                        ("monte-carlo", _sweep(grid=None, top_n=None))):
        body = {k: v for k, v in body.items() if v is not None and k not in ("objective",)}
        r = api.post(f"/api/research/{route}", json={**body, "starting_capital": 1e-9})
        assert r.status_code == 422, (route, r.text)
        assert [e["loc"] for e in r.json()["detail"]] == [["body", "starting_capital"]], route


def _dip(stop: float, rsi: float) -> dict[str, Any]:
    """v3_dip_buyer's body with a stop and an RSI threshold."""
    return {"base_model": "v3_dip_buyer",
            "exit_rules": {"stop_loss_pct": stop, "target_pct": 12, "max_hold_days": 20},
            "entry_rules": {"all": [{"left": {"ind": "close"}, "op": ">", "right": {"ind": "sma", "period": 200}},
                                    {"left": {"ind": "rsi", "period": 14}, "op": "<", "right": rsi}]}}


def test_walk_forward_refits_per_window_and_each_oos_run_stands_alone(lab: Any) -> None:
    body = _sweep(grid={"stop_loss_pct": [4, 9], "entry_rules.all.1.right": [30, 45]}, windows=3,
                  mode="anchored", in_sample_ratio=0.6, start_date="2019-06-01", min_trades=1)
    del body["top_n"]
    r = lab.post("/api/research/walk-forward", json=body)
    assert r.status_code == 202, r.text
    job = _wait(lab, "walk-forward", r.json()["id"])
    [listed] = [j for j in lab.get("/api/research/jobs").json() if j["id"] == job["id"]]
    assert listed["kind"] == "walk_forward" and listed["url"] == f"/api/research/walk-forward/{job['id']}"
    assert job["status"] == "done", job
    assert job["kind"] == "walk_forward" and job["total"] == 3 * (4 + 1) and job["progress"] == 1.0
    assert job["params"]["labels"] == {"stop_loss_pct": "stop loss %", "entry_rules.all.1.right": "entry: rsi(14) < x"}
    windows = job["windows"]
    assert [w["window"] for w in windows] == [0, 1, 2]
    assert {w["in_sample"]["start"] for w in windows} == {"2019-06-03"}  # anchored
    curve = job["oos_equity"]
    assert curve[0]["date"] == windows[0]["out_of_sample"]["start"]
    assert curve[-1]["date"] == windows[-1]["out_of_sample"]["end"] <= "2021-12-31"
    level = 1_000_000.0
    for w in windows:
        assert w["params"] is not None, w
        # the chosen parameters' OOS run equals a standalone backtest of that window
        strategy = _dip(w["params"]["stop_loss_pct"], w["params"]["entry_rules.all.1.right"])
        alone = lab.post("/api/backtest/run", json={
            "strategy": strategy, "symbols": SYMBOLS, "start_date": w["out_of_sample"]["start"],
            "end_date": w["out_of_sample"]["end"], "starting_capital": 1_000_000, "position_size_pct": 10,
            "max_positions": 10, "slippage_bps": 5})
        assert alone.status_code == 200, alone.text
        assert alone.json()["summary"] == w["out_of_sample_metrics"]
        # stitched: this window's part of the curve is its own curve scaled to start where the last ended
        own = alone.json()["equity_curve"]
        part = [p for p in curve if w["out_of_sample"]["start"] <= p["date"] <= w["out_of_sample"]["end"]]
        assert [p["date"] for p in part] == [p["date"] for p in own]
        assert part[-1]["equity"] == pytest.approx(own[-1]["equity"] * level / 1_000_000, abs=0.01)
        level = own[-1]["equity"] * level / 1_000_000
        # the chosen parameters are the in-sample best
        sweep = lab.post("/api/backtest/run", json={
            "strategy": strategy, "symbols": SYMBOLS, "start_date": w["in_sample"]["start"],
            "end_date": w["in_sample"]["end"], "starting_capital": 1_000_000, "position_size_pct": 10,
            "max_positions": 10, "slippage_bps": 5}).json()
        assert sweep["summary"] == w["in_sample_metrics"]
        assert w["in_sample_objective"] == w["in_sample_metrics"]["sharpe"]
    assert job["summary"]["out_of_sample"]["final_equity"] == pytest.approx(level, abs=0.05)
    # window 0's choice has the best in-sample Sharpe of the four combinations (ties: the first)
    w0 = windows[0]
    sharpes: list[Any] = []
    for stop in (4, 9):
        for rsi in (30, 45):
            s = lab.post("/api/backtest/run", json={
                "strategy": _dip(stop, rsi), "symbols": SYMBOLS, "start_date": w0["in_sample"]["start"],
                "end_date": w0["in_sample"]["end"], "starting_capital": 1_000_000, "position_size_pct": 10,
                "max_positions": 10, "slippage_bps": 5}).json()["summary"]
            if s["sharpe"] is not None and s["total_trades"] >= 1:
                sharpes.append((-s["sharpe"], len(sharpes), stop, rsi))
    best = min(sharpes)
    assert (w0["params"]["stop_loss_pct"], w0["params"]["entry_rules.all.1.right"]) == (best[2], best[3])
    # best_run_id: the latest window's choice, run over the whole span as an ordinary backtest
    run = lab.get(f"/api/backtest/runs/{job['best_run_id']}").json()
    assert job["run_ids"] == [job["best_run_id"]] and run["params"]["research_job_id"] == job["id"]
    assert (run["params"]["start_date"], run["params"]["end_date"]) == ("2019-06-01", "2021-12-31")
    latest = windows[-1]["params"]
    assert run["params"]["strategy"]["exit_rules"]["stop_loss_pct"] == latest["stop_loss_pct"]
    assert run["params"]["strategy"]["entry_rules"]["all"][1]["right"] == latest["entry_rules.all.1.right"]
    alone = lab.post("/api/backtest/run", json={
        "strategy": _dip(latest["stop_loss_pct"], latest["entry_rules.all.1.right"]), "symbols": SYMBOLS,
        "start_date": "2019-06-01", "end_date": "2021-12-31", "starting_capital": 1_000_000,
        "position_size_pct": 10, "max_positions": 10, "slippage_bps": 5}).json()
    assert alone["summary"] == run["summary"]
    wfe = job["summary"]["walk_forward_efficiency"]
    mean_is = job["summary"]["in_sample_mean_cagr"]
    if mean_is > 0:
        assert wfe == pytest.approx(job["summary"]["out_of_sample"]["cagr"] / mean_is, abs=1e-3)
    else:
        assert wfe is None


def test_what_a_sweep_can_vary_is_listed_in_words_for_a_strategy_you_may_read(api_factory: Any) -> None:
    """GET /api/research/parameters?strategy_id=: the settings, exits, model parameters and each number of the
    strategy's own rules (with its own value), every name one a sweep accepts; another's private strategy is a 404."""
    alice, bob = api_factory(), api_factory()
    alice.login()
    bob.login()
    rules = {"all": [{"left": {"ind": "rsi", "period": 9}, "op": "<", "right": 28},
                     {"left": {"ind": "close"}, "op": ">", "right": {"ind": "ema", "period": 50}}]}
    mine = alice.post("/api/strategies", json={"name": "mine", "base_model": "v3_dip_buyer", "entry_rules": rules,
                                               "exit_rules": {"stop_loss_pct": 6}})
    assert mine.status_code == 201, mine.text
    r = alice.get("/api/research/parameters", params={"strategy_id": mine.json()["id"]})
    assert r.status_code == 200, r.text
    rows = {p["name"]: p for p in r.json()}
    assert rows["entry_rules.all.0.right"] == {"name": "entry_rules.all.0.right", "label": "entry: rsi(9) < x",
                                               "value": 28}
    assert rows["entry_rules.all.0.left.period"]["label"] == "entry: rsi(x) < 28"
    assert rows["entry_rules.all.1.right.period"] == {"name": "entry_rules.all.1.right.period",
                                                      "label": "entry: close > ema(x)", "value": 50}
    assert rows["stop_loss_pct"] == {"name": "stop_loss_pct", "label": "stop loss %", "value": 6}
    assert rows["max_positions"]["value"] is None and rows["max_positions"]["label"] == "max positions"
    # every name listed is one a sweep of that strategy accepts
    from backtest.research.sweeps import CONFIG_PARAMS, EXIT_PARAMS
    assert set(CONFIG_PARAMS) | set(EXIT_PARAMS) <= set(rows)

    assert bob.get("/api/research/parameters", params={"strategy_id": mine.json()["id"]}).status_code == 404
    template = next(s for s in bob.get("/api/strategies", params={"limit": 500}).json() if s["is_template"])
    assert bob.get("/api/research/parameters", params={"strategy_id": template["id"]}).status_code == 200
    assert bob.get("/api/research/parameters", params={"strategy_id": "x"}).status_code == 422


def test_a_job_read_while_its_tables_go_away_answers_its_state_not_a_500(lab: Any, monkeypatch: Any) -> None:
    """A job that ends (dropping its partial snapshot) or is deleted between a GET reading its state and reading its
    tables: the GET reads both again and answers the job as it is now (seen once as a 500 under load)."""
    job_id = lab.post("/api/research/sweeps", json=_sweep(grid={"stop_loss_pct": [5, 8]}, top_n=0)).json()["id"]
    done = _wait(lab, "sweeps", job_id)
    assert done["status"] == "done" and done["results_total"] == 2
    tables = lab.app.state.research.tables
    count = tables.count
    vanished: list[str] = []

    def gone_once(ref: str, table: str) -> int:  # the file is gone the first time it is read
        if not vanished:
            vanished.append(ref)
            raise FileNotFoundError(ref)
        return int(count(ref, table))

    monkeypatch.setattr(tables, "count", gone_once)
    again = lab.get(f"/api/research/sweeps/{job_id}")
    assert again.status_code == 200 and vanished
    assert again.json()["results"] == done["results"] and again.json()["results_total"] == 2

    def deleted_meanwhile(ref: str, table: str) -> int:  # the owner deletes the job while its GET reads it
        monkeypatch.setattr(tables, "count", count)
        assert lab.delete(f"/api/research/sweeps/{job_id}").status_code == 204
        raise FileNotFoundError(ref)

    monkeypatch.setattr(tables, "count", deleted_meanwhile)
    gone = lab.get(f"/api/research/sweeps/{job_id}")
    assert gone.status_code == 404 and gone.json()["detail"] == f"Research job {job_id} not found"
