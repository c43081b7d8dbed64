"""Monte Carlo and look-ahead jobs over HTTP: queued, run in the executor, results read back; the Monte Carlo's
run recorded as an ordinary backtest; validation, privacy, deletion."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.test_research_api import SYMBOLS, _wait, lab

__all__ = ["lab"]  # the fixture: generated NIFTY 50 bars, signed in


def _body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "strategy": {"base_model": "sma_crossover"}, "symbols": SYMBOLS, "start_date": "2020-01-01",
        "end_date": "2021-12-31", "starting_capital": 1_000_000, "position_size_pct": 10, "max_positions": 10,
    }
    body.update(changes)
    return body


def test_monte_carlo_of_a_backtest_reads_back_distributions_and_records_the_run(lab: Any) -> None:
    r = lab.post("/api/research/monte-carlo", json=_body(simulations=400, seed=3, ruin_drawdown_pct=15,
                                                         block_days=5))
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    job = _wait(lab, "monte-carlo", job_id)
    assert job["status"] == "done", job
    assert job["kind"] == "monte_carlo" and job["progress"] == 1.0 and job["total"] == 3
    rows = {row["method"]: row for row in job["results"]}
    assert set(rows) == {"trades", "returns"} and job["results_total"] == 2

    # the analysed run is an ordinary backtest run: its trades are what was reshuffled
    run = lab.get(f"/api/backtest/runs/{job['best_run_id']}").json()
    assert run["params"]["research_job_id"] == job_id
    trades = rows["trades"]
    assert trades["samples"] == len(run["trades"]) == job["summary"]["total_trades"] >= 2
    closed = round(1_000_000 + sum(t["pnl"] for t in run["trades"]), 2)
    assert trades["final_equity"]["min"] == pytest.approx(closed, abs=0.01)
    assert trades["final_equity"]["max"] == pytest.approx(closed, abs=0.01)
    returns = rows["returns"]
    assert returns["block_days"] == 5 and returns["samples"] == len(run["equity_curve"])
    assert returns["original"]["final_equity"] == pytest.approx(run["summary"]["final_equity"], abs=0.05)
    for row in rows.values():
        assert row["simulations"] == 400 and row["seed"] == 3 and row["ruin_drawdown_pct"] == 15
        pct = row["max_drawdown"]["percentiles"]
        assert [pct[k] for k in ("5", "25", "50", "75", "95")] == sorted(pct.values())
        assert sum(row["cagr"]["histogram"]["counts"]) == 400
        assert 0 <= row["probability_of_ruin"] <= 1
    assert job["summary"]["methods"]["returns"]["probability_of_ruin"] == returns["probability_of_ruin"]

    # the same request and seed give the same numbers
    again = lab.post("/api/research/monte-carlo", json=_body(simulations=400, seed=3, ruin_drawdown_pct=15,
                                                             block_days=5)).json()["id"]
    assert _wait(lab, "monte-carlo", again)["results"] == job["results"]


def test_monte_carlo_of_a_recorded_run_by_its_id(lab: Any, api_factory: Any) -> None:
    body = _body()
    run = lab.post("/api/backtest/run", json=body).json()
    settings = {"simulations": 300, "seed": 9, "ruin_drawdown_pct": 20, "block_days": 3}
    r = lab.post("/api/research/monte-carlo", json={"run_id": run["id"], **settings})
    assert r.status_code == 202, r.text
    job = _wait(lab, "monte-carlo", r.json()["id"])
    assert job["status"] == "done", job
    # nothing is re-run: the job is about that run, and resamples its own trades and curve
    assert job["best_run_id"] == run["id"] and job["run_ids"] == [run["id"]]
    assert job["params"]["run_id"] == run["id"] and job["params"]["start_date"] == "2020-01-01"
    rows = {row["method"]: row for row in job["results"]}
    assert rows["trades"]["samples"] == len(run["trades"]) and rows["returns"]["samples"] == len(run["equity_curve"])
    # ... and gives the numbers the same backtest body would
    from_body = lab.post("/api/research/monte-carlo", json={**body, **settings}).json()["id"]
    assert _wait(lab, "monte-carlo", from_body)["results"] == job["results"]

    both = lab.post("/api/research/monte-carlo", json={**body, "run_id": run["id"]})
    assert both.status_code == 422 and "run_id or a backtest body" in both.text
    neither = lab.post("/api/research/monte-carlo", json={"simulations": 10})
    assert neither.status_code == 422
    other = api_factory()
    other.login()
    theirs = other.post("/api/research/monte-carlo", json={"run_id": run["id"]})
    assert theirs.status_code == 404 and theirs.json()["detail"] == f"Backtest run {run['id']} not found"


def test_lookahead_reports_a_template_clean_with_recursion_figures(lab: Any) -> None:
    r = lab.post("/api/research/lookahead", json=_body(strategy={"base_model": "v3_dip_buyer"}, cuts=3, seed=5,
                                                       warmup_days=[20, 220]))
    assert r.status_code == 202, r.text
    job = _wait(lab, "lookahead", r.json()["id"])
    assert job["status"] == "done", job
    assert job["kind"] == "lookahead" and job["total"] == 6 and job["progress"] == 1.0
    s = job["summary"]
    assert s["clean"] is True and s["findings_total"] == 0 and set(s["differences"].values()) == {0}
    assert len(s["cuts"]) == 3 and all("2020-01-01" < c < "2021-12-31" for c in s["cuts"])
    assert job["results"] == [] and job["results_total"] == 0
    rec = {(row["warmup_days"], row["name"]): row for row in job["recursion"]}
    assert {w for w, _ in rec} == {20, 220}
    # the trend SMA(200) cannot exist with 20 days of history; RSI(14) exists but starts elsewhere
    assert rec[(20, "sma(200)")]["missing_values"] > 0
    assert rec[(220, "sma(200)")]["max_diff_pct"] == 0.0
    assert rec[(20, "rsi(14)")]["max_diff_pct"] > 0


def test_bad_bodies_privacy_and_deletion(lab: Any, api_factory: Any) -> None:
    for route, extra in (("monte-carlo", {"simulations": 0}), ("monte-carlo", {"methods": ["trades", "trades"]}),
                         ("monte-carlo", {"methods": ["luck"]}), ("lookahead", {"cuts": 51}),
                         ("lookahead", {"warmup_days": [-5]})):
        bad = lab.post(f"/api/research/{route}", json=_body(**extra))
        assert bad.status_code == 422, (route, extra, bad.text)
    r = lab.post("/api/research/lookahead", json=_body(start_date="2030-01-01", end_date="2030-06-30"))
    assert r.status_code == 400 and "outside the available history" in r.json()["detail"]
    # a window too short to cut inside is refused now, not queued to fail (2 trading days, a weekend between)
    r = lab.post("/api/research/lookahead", json=_body(start_date="2020-06-05", end_date="2020-06-08"))
    assert r.status_code == 400 and "holds 2 trading day(s)" in r.json()["detail"], r.text
    assert lab.get("/api/research/jobs").json() == []

    job_id = lab.post("/api/research/lookahead", json=_body(cuts=1, warmup_days=[])).json()["id"]
    assert _wait(lab, "lookahead", job_id)["status"] == "done"
    other = api_factory()
    other.login()
    assert other.get(f"/api/research/lookahead/{job_id}").status_code == 404
    assert other.delete(f"/api/research/lookahead/{job_id}").status_code == 404
    assert lab.get(f"/api/research/monte-carlo/{job_id}").status_code == 404  # another kind's route
    assert lab.delete(f"/api/research/lookahead/{job_id}").status_code == 204
    assert lab.get(f"/api/research/lookahead/{job_id}").status_code == 404
