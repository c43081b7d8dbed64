"""`tradertape backtest run`: the same numbers as the API, a summary table, an HTML report, clear errors."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from api.cli import main
from backtest.report import fmt
from domain.money import format_inr
from infra.bars.store import BarStore
from infra.bars.synthetic import generate
from infra.bars.universes import load_universe


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    generate(BarStore(path), load_universe("nifty_50"), date(2019, 1, 1), date(2021, 12, 31))
    return path


def _run(data_dir: Path, *extra: str) -> None:
    main(["backtest", "run", "--data-dir", str(data_dir), "--universe", "nifty_50", "--from", "2020-01-01",
          "--to", "2021-12-31", "--capital", "1000000", "--max-positions", "10", "--max-per-sector", "2",
          "--slippage-bps", "5", *extra])


def test_cli_run_matches_the_api_and_writes_a_report(api_factory: Any, tmp_path: Path, data_dir: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    report, out_json = tmp_path / "out" / "report.html", tmp_path / "out" / "run.json"
    _run(data_dir, "--report", str(report), "--json", str(out_json), "--trades")
    printed = capsys.readouterr().out
    assert "Total return" in printed and "Max drawdown" in printed and "Win rate" in printed

    cli = json.loads(out_json.read_text())
    api = api_factory(data_dir=data_dir)
    api.login()
    template = next(t for t in api.get("/api/strategies", params={"is_template": True}).json()
                    if t["base_model"] == "v3_dip_buyer")
    r = api.post("/api/backtest/run", json={
        "strategy_id": template["id"], "universe": "nifty_50", "start_date": "2020-01-01", "end_date": "2021-12-31",
        "starting_capital": 1_000_000, "max_positions": 10, "max_per_sector": 2, "slippage_bps": 5})
    assert r.status_code == 200, r.text
    run = r.json()
    assert cli["trades"] == run["trades"] and cli["trades"]
    assert cli["summary"] == run["summary"]
    assert cli["equity_curve"] == run["equity_curve"]
    # the printed table shows the same final equity the API returned, in Indian grouping (₹10,xx,xxx.xx)
    final = run["summary"]["final_equity"]
    assert format_inr(final) in printed and re.search(r"₹\d{1,2},\d\d,\d{3}\.\d\d", format_inr(final))

    html = report.read_text()
    assert html.startswith("<!doctype html>") and html.count("<svg") == 2  # equity and drawdown charts
    assert 'aria-label="Equity"' in html and 'aria-label="Drawdown"' in html
    points = re.search(r'aria-label="Equity".*?points="([^"]+)"', html, re.S)
    assert points and len(points.group(1).split()) == len(run["equity_curve"])
    first_trade = run["trades"][0]
    assert f"<td>{first_trade['symbol']}</td><td>{first_trade['entry_date']}</td>" in html
    assert f"<td>{format_inr(final)}</td>" in html


def test_html_report_has_benchmark_axes_month_grid_and_distinct_columns(tmp_path: Path, data_dir: Path) -> None:
    report, out_json = tmp_path / "report.html", tmp_path / "run.json"
    _run(data_dir, "--report", str(report), "--json", str(out_json))
    run, html = json.loads(out_json.read_text()), report.read_text()
    equity_svg = re.search(r'<svg[^>]*aria-label="Equity".*?</svg>', html, re.S)
    assert equity_svg
    lines = re.findall(r'<polyline[^>]*points="([^"]+)"', equity_svg.group(0))
    assert len(lines) == 2, "strategy and benchmark lines"
    assert all(len(p.split()) == len(run["equity_curve"]) for p in lines)
    bench = BarStore(data_dir).read_symbol("NIFTY50", "2020-01-01", "2021-12-31")
    # the benchmark starts with the strategy at the starting capital and moves with the index
    start, end = (float(p.split(",")[1]) for p in (lines[1].split()[0], lines[1].split()[-1]))
    assert float(lines[0].split()[0].split(",")[1]) == start
    assert (end < start) == (bench[-1]["close"] > bench[0]["close"])  # SVG y grows downwards
    assert "Benchmark NIFTY50" in html
    # labelled axes on both charts
    assert html.count(">Date</text>") == 2 and ">Equity (₹)</text>" in html and "Drawdown from the peak (%)" in html
    # year x month grid: a row per year, a column per month
    grid = re.search(r"<h2>Monthly returns</h2><table>.*?</table>", html, re.S)
    assert grid
    heads = re.findall(r'<th scope="col">([^<]+)</th>', grid.group(0))
    assert heads == ["year", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
                     "year total"]
    assert re.findall(r"<tr><td>(\d{4})</td>", grid.group(0)) == ["2020", "2021"]
    jan_2020 = run["monthly_returns"]["2020-01"]
    assert f"<tr><td>2020</td><td>{fmt(jan_2020, '%')}</td>" in grid.group(0)
    # distinct trade column names
    trades = re.search(r"<h2>Trades.*?</thead>", html, re.S)
    assert trades
    columns = re.findall(r'<th scope="col">([^<]+)</th>', trades.group(0))
    assert len(columns) == len(set(columns)) == 10 and "entry price" in columns and "exit price" in columns


def test_cli_param_override_changes_the_run(tmp_path: Path, data_dir: Path) -> None:
    default, tight = tmp_path / "a.json", tmp_path / "b.json"
    _run(data_dir, "--json", str(default))
    _run(data_dir, "--json", str(tight), "--param", "rsi_period=5", "--param", "entry_order=next_open")
    a, b = json.loads(default.read_text()), json.loads(tight.read_text())
    assert a["strategy"]["params"]["rsi_period"] != 5
    assert b["strategy"]["params"]["rsi_period"] == 5 and b["strategy"]["params"]["entry_order"] == "next_open"
    assert b["trades"] != a["trades"]


@pytest.mark.parametrize(("extra", "message"), [
    (("--to", "2030-01-01"), "outside the available history"),
    (("--capital", "0"), "--capital must be more than 0"),
    (("--param", "rsi_period=-3"), "rsi_period"),
    (("--base-model", "no_such_model"), "no_such_model"),
])
def test_cli_bad_input_exits_2_with_a_message(data_dir: Path, capsys: pytest.CaptureFixture[str],
                                               extra: tuple[str, ...], message: str) -> None:
    with pytest.raises(SystemExit) as exc:
        _run(data_dir, *extra)
    assert exc.value.code == 2
    assert message in capsys.readouterr().out


def test_data_ensure_says_the_demo_history_is_synthetic_and_how_to_load_real_history(
        data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # `make run` runs `tradertape data ensure`: its console must not let demo prices pass for NSE's
    main(["data", "ensure", "--data-dir", str(data_dir)])  # (raises SystemExit on failure)
    printed = " ".join(capsys.readouterr().out.split())
    assert "SYNTHETIC" in printed
    assert "tradertape data import-csv" in printed and "tradertape data import-kite" in printed
