"""`tradertape research sweeps|walk-forward BODY.json`: the job runs in a local pool with a progress bar,
prints the best rows, saves the outcome; bad bodies are refused with the reason."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from api.cli import main
from backtest.engine import BacktestConfig, run_backtest
from domain.money import format_inr, format_number
from infra.bars.store import BarStore
from infra.bars.synthetic import generate
from infra.bars.universes import load_universe

SYMBOLS = ["RELIANCE", "TCS", "INFY", "HDFCBANK", "ICICIBANK", "ITC"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bars")
    generate(BarStore(root), load_universe("nifty_50"), date(2019, 1, 1), date(2021, 12, 31))
    return root


def _write(tmp_path: Path, body: dict[str, Any]) -> str:
    path = tmp_path / "body.json"
    path.write_text(json.dumps(body))
    return str(path)


BODY = {"strategy": {"base_model": "v3_dip_buyer"}, "symbols": SYMBOLS, "start_date": "2020-06-01",
        "end_date": "2021-12-31", "starting_capital": 1000000, "max_positions": 5,
        "grid": {"stop_loss_pct": [5, 9], "max_positions": [3, 6]}, "objective": "sortino"}


def test_sweep_from_the_command_line(data_dir: Path, tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "out.json"
    main(["research", "sweeps", _write(tmp_path, BODY), "--data-dir", str(data_dir), "--workers", "2",
          "--out", str(out)])
    printed = capsys.readouterr().out
    assert "4 backtests in" in printed and "Best 4 of 4 combinations" in printed
    saved = json.loads(out.read_text())
    rows = saved["tables"]["results"]
    assert [r["rank"] for r in rows] == [1, 2, 3, 4] and saved["kind"] == "sweep"
    # a row's metrics are the engine's summary of that combination
    r = rows[-1]
    bars = BarStore(data_dir).read(SYMBOLS, "2019-01-01", "2021-12-31")
    cfg = BacktestConfig("2020-06-01", "2021-12-31", 1_000_000.0, max_positions=r["params"]["max_positions"])
    alone = run_backtest(bars, {"base_model": "v3_dip_buyer", "exit_rules": {
        "stop_loss_pct": r["params"]["stop_loss_pct"], "target_pct": 12, "max_hold_days": 20}}, cfg)
    assert alone.summary["total_trades"] == r["metrics"]["total_trades"]


def test_the_table_names_parameters_in_words_and_fits_a_terminal(data_dir: Path, tmp_path: Path,
                                                                  capsys: Any) -> None:
    """Four swept parameters, one of them a rule's threshold by its dotted path: the headers say what each is
    (the rule with x for the swept value), wrap between words, and every line fits 80 columns."""
    body = {**BODY, "grid": {"stop_loss_pct": [5, 9], "target_pct": [12], "entry_rules.all.1.right": [30, 40],
                             "max_positions": [3]}}
    main(["research", "sweeps", _write(tmp_path, body), "--data-dir", str(data_dir), "--workers", "1"])
    printed = capsys.readouterr().out
    table = printed[printed.index("Best 4 of 4"):].splitlines()
    assert all(len(line) <= 80 for line in table), max(table, key=len)
    rule = next(i for i, line in enumerate(table) if line.strip().startswith("─"))
    # the header's lines read column by column, each column's words top to bottom (the columns are right-aligned:
    # each ends where a value of the first row ends)
    header = table[rule - 3:rule]
    ends = [m.end() for m in re.finditer(r"\S+", table[rule + 1])]
    starts = [0, *ends[:-1]]
    columns = [" ".join(" ".join(line[a:b] for line in header).split()) for a, b in zip(starts, ends, strict=True)]
    assert columns == ["rank", "stop loss %", "target %", "entry: rsi(14) < x", "max positions", "objective",
                       "CAGR %", "Sharpe", "max DD %", "trades"]
    assert "entry_rules" not in printed and "…" not in printed
    if "—" in printed:  # an ineligible row is marked, and the mark explained under the table
        assert "objective —: not eligible" in printed


def test_too_many_parameters_for_columns_fold_into_one_column(data_dir: Path, tmp_path: Path, capsys: Any) -> None:
    """Seven swept parameters are too wide for 80 columns: they become one column of `label = value` lines, and
    the objective and the metrics keep their columns (nothing is cut off)."""
    grid = {"stop_loss_pct": [5], "target_pct": [12], "entry_rules.all.1.right": [35], "max_positions": [4],
            "position_size_pct": [9.5], "max_per_sector": [3], "slippage_bps": [5, 10]}
    main(["research", "sweeps", _write(tmp_path, {**BODY, "grid": grid}), "--data-dir", str(data_dir),
          "--workers", "1"])
    printed = capsys.readouterr().out
    table = printed[printed.index("Best 2 of 2"):].splitlines()
    assert all(len(line) <= 80 for line in table), max(table, key=len)
    header = " ".join(" ".join(table[1:table.index(next(t for t in table if t.startswith("─")))]).split())
    assert "parameters" in header and header.endswith("Sharpe DD % trades")
    # the first row's lines: its rank, then one parameter a line (the metrics on the first line only)
    first = table.index(next(t for t in table if t.startswith("─"))) + 1
    shown = [re.match(r"\s*\d*\s(.+? (?:= |< )[\d.]+)", line).group(1) for line in table[first:first + 7]]  # type: ignore[union-attr]
    assert shown[:6] == ["stop loss % = 5", "target % = 12", "entry: rsi(14) < 35", "max positions = 4",
                         "position size % = 9.5", "max per sector = 3"]
    assert shown[6] in ("slippage (bps) = 5", "slippage (bps) = 10")
    assert table[first].split()[0] == "1" and len(table[first].split()) > 8  # rank ... and the row's figures


def test_walk_forward_from_the_command_line(data_dir: Path, tmp_path: Path, capsys: Any) -> None:
    """Each window on two lines (its in-sample and out-of-sample dates), its chosen parameters under their labels
    and its efficiency, numbered from 1 as the web app numbers them; the stitched out-of-sample line after."""
    body = {**{k: v for k, v in BODY.items() if k != "objective"}, "objective": "cagr", "windows": 2,
            "grid": {"stop_loss_pct": [5, 9], "entry_rules.all.1.right": [30, 40]}}
    out = tmp_path / "wf.json"
    main(["research", "walk-forward", _write(tmp_path, body), "--data-dir", str(data_dir), "--workers", "1",
          "--out", str(out)])
    printed = capsys.readouterr().out
    table = printed[printed.index("Walk-forward windows"):].splitlines()
    assert all(len(line) <= 80 for line in table), max(table, key=len)
    windows = json.loads(out.read_text())["tables"]["results"]
    for k, w in enumerate(windows):
        first = next(line for line in table if line.split()[:2] == [str(k + 1), w["in_sample"]["start"]])
        second = table[table.index(first) + 1].split()
        assert first.split()[2] == w["out_of_sample"]["start"] and second == [w["in_sample"]["end"],
                                                                             w["out_of_sample"]["end"]]
        if w["params"]:
            chosen = w["params"]
            assert first.split()[3:5] == [str(chosen["stop_loss_pct"]), str(chosen["entry_rules.all.1.right"])]
    assert "rsi(14)" in printed and "entry_rules" not in printed and "OOS / IS: the window's walk-forward" in printed
    assert "Out of sample (stitched): CAGR " in printed


def test_each_command_explains_itself_with_a_body_the_api_accepts(capsys: Any) -> None:
    """`tradertape research KIND --help` says what the job does and shows an example body: each example is one the
    API's request model accepts (so the help cannot drift from the API)."""
    from backtest.research.kinds import KINDS

    for kind in KINDS.values():
        with pytest.raises(SystemExit):
            main(["research", kind.route, "--help"])
        text = capsys.readouterr().out
        assert f"POST /api/research/{kind.route}" in " ".join(text.split())
        example = text[text.index("example body"):]
        if "{" not in example.splitlines()[0] and kind.name == "walk_forward":  # "a sweep's, plus ..."
            assert '"windows": 5' in example
            continue
        body = json.loads(example[example.index("{"):example.rindex("}") + 1])
        kind.request_model(**body)  # raises if the API would refuse it


def test_bad_bodies_are_refused_with_the_reason(data_dir: Path, tmp_path: Path, capsys: Any) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["research", "sweeps", _write(tmp_path, {**BODY, "grid": {"bogus": [1]}}), "--data-dir", str(data_dir)])
    assert exc.value.code == 2 and "grid: parameter 1 is not a sweep parameter" in capsys.readouterr().out


def test_a_saved_strategy_by_id_or_a_strategy_file(data_dir: Path, tmp_path: Path, capsys: Any, api: Any,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    api.login()  # the app seeded the templates into its database; the CLI reads them from there
    template = next(s for s in api.get("/api/strategies", params={"limit": 100}).json()
                    if s["base_model"] == "v3_dip_buyer" and s["is_template"])
    monkeypatch.setenv("TRADERTAPE_DATABASE_URL", api.platform.settings.database_url)
    body = {k: v for k, v in BODY.items() if k != "strategy"}
    out_id, out_file = tmp_path / "by_id.json", tmp_path / "by_file.json"
    main(["research", "sweeps", _write(tmp_path, {**body, "strategy": {"base_model": "sma_crossover"}}),
          "--strategy-id", str(template["id"]), "--data-dir", str(data_dir), "--workers", "1", "--out", str(out_id)])
    by_id = json.loads(out_id.read_text())
    assert by_id["params"]["strategy_name"] == template["name"]
    strategy_file = tmp_path / "strategy.json"
    strategy_file.write_text(json.dumps({k: template[k] for k in ("base_model", "entry_rules", "exit_rules",
                                                                  "params")}))
    main(["research", "sweeps", _write(tmp_path, body), "--strategy", str(strategy_file), "--data-dir",
          str(data_dir), "--workers", "1", "--out", str(out_file)])
    by_file = json.loads(out_file.read_text())
    assert by_id["tables"]["results"] == by_file["tables"]["results"]  # the same strategy either way
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:  # a strategy nobody may read from the command line is not found
        main(["research", "sweeps", _write(tmp_path, body), "--strategy-id", "999999", "--data-dir",
              str(data_dir)])
    assert exc.value.code == 2 and "Strategy 999999 not found" in capsys.readouterr().out


def test_monte_carlo_and_lookahead_from_the_command_line(data_dir: Path, tmp_path: Path, capsys: Any) -> None:
    base = {k: v for k, v in BODY.items() if k not in ("grid", "objective")}
    out = tmp_path / "mc.json"
    main(["research", "monte-carlo", _write(tmp_path, {**base, "simulations": 200, "seed": 4}),
          "--data-dir", str(data_dir), "--workers", "1", "--out", str(out)])
    printed = capsys.readouterr().out
    saved = json.loads(out.read_text())
    assert saved["kind"] == "monte_carlo" and [r["method"] for r in saved["tables"]["results"]] == ["trades",
                                                                                                    "returns"]
    trades, returns = saved["tables"]["results"]
    lines = printed.splitlines()
    assert "Closed trades in 200 random orders (seed 4)" in lines
    assert any(line.startswith("1 backtest, then 2 x 200 simulated paths in ") for line in lines)  # not "3 backtests"
    assert any(line.startswith("Daily returns redrawn in blocks of ") and line.endswith(": 200 paths (seed 4)")
               for line in lines)
    # a table per method: its percentiles as columns, the max drawdown's row as the saved figures say
    assert lines[lines.index("Closed trades in 200 random orders (seed 4)") + 1].split() == \
        ["percentile", "5", "%", "25", "%", "50", "%", "75", "%", "95", "%"]
    dd_rows = [line.split()[3:] for line in lines if line.strip().startswith("max DD %")]
    for row, method in zip(dd_rows, (trades, returns), strict=True):
        assert row == [format_number(v, 2) for v in method["max_drawdown"]["percentiles"].values()]
    final = next(line for line in lines if line.strip().startswith("final equity ₹"))  # whole rupees, grouped
    assert final.split()[2:] == [format_inr(v, 0) for v in trades["final_equity"]["percentiles"].values()]
    text = " ".join(printed.split())
    assert f"Chance of a 30 % drawdown: {trades['probability_of_ruin'] * 100:.1f} %" in text
    assert "realised P&L only, so the final equity is the same in every order" in text

    main(["research", "lookahead", _write(tmp_path, {**base, "cuts": 2, "warmup_days": [40]}),
          "--data-dir", str(data_dir), "--workers", "1"])
    printed = capsys.readouterr().out
    text = " ".join(printed.split())
    assert "Look-ahead: clean over 2 cuts (" in text and "nothing known before a cut changed" in text
    rows = [line.split() for line in printed.splitlines() if line.split()[:2] == ["40", "rsi(14)"]]
    assert len(rows) == 1 and float(rows[0][2]) >= 0  # the largest change of RSI with 40 days of history
