"""Sweep spaces, constraints, objectives and ranking; the shared indicator cache gives a standalone run's
numbers while computing each indicator once per window; the research desk's life cycle."""

from __future__ import annotations

import itertools
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from backtest.engine import BacktestConfig, run_backtest
from backtest.research import worker
from backtest.research.cli import with_value
from backtest.research.jobs import DataSpec, PlanContext, base_plan, load_shared
from backtest.research.sweeps import Combination, Space, SweepRequest, expand, rank_rows, score
from backtest.runner import execute_run
from domain.errors import Conflict, DomainError, InvalidTransition, NotFound
from domain.research import ResearchDesk
from infra.bars.store import BarStore
from infra.bars.synthetic import generate
from infra.bars.universes import custom_universe, load_universe

SYMBOLS = ["RELIANCE", "TCS", "INFY", "HDFCBANK", "ICICIBANK", "ITC"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bars")
    generate(BarStore(root), load_universe("nifty_50"), date(2019, 1, 1), date(2021, 6, 30))
    return root


def _ctx(data_dir: Path, limit: int = 1000) -> PlanContext:
    return PlanContext(data_dir, 1, lambda _id: None, limit)


def _req(**changes: Any) -> SweepRequest:
    body: dict[str, Any] = {"strategy": {"base_model": "v3_dip_buyer"}, "symbols": SYMBOLS,
                            "start_date": "2020-01-01", "end_date": "2021-06-30", "starting_capital": 1_000_000}
    body.update(changes)
    return SweepRequest(**body)


def test_grid_with_constraints_in_order(data_dir: Path) -> None:
    req = _req(grid={"stop_loss_pct": [4, 6, 8], "target_pct": [5, 10]}, constraints=["stop_loss_pct < target_pct"])
    space = Space(base_plan(_ctx(data_dir), req))
    values = expand(req, space, 100)
    assert values == [{"stop_loss_pct": 4, "target_pct": 5}, {"stop_loss_pct": 4, "target_pct": 10},
                      {"stop_loss_pct": 6, "target_pct": 10}, {"stop_loss_pct": 8, "target_pct": 10}]
    combo = space.build(0, {"stop_loss_pct": 4, "target_pct": 5, "max_positions": 3,
                            "entry_rules.all.0.right.period": 50, "rsi_period": 9})
    assert combo.strategy["exit_rules"]["stop_loss_pct"] == 4 and combo.strategy["exit_rules"]["target_pct"] == 5
    assert combo.config["max_positions"] == 3
    assert combo.strategy["entry_rules"]["all"][0]["right"]["period"] == 50
    assert combo.strategy["params"]["rsi_period"] == 9
    # the plan's own strategy body is untouched by a combination
    assert space.base.strategy["entry_rules"]["all"][0]["right"]["period"] == 200


def test_random_sample_is_seeded_and_typed(data_dir: Path) -> None:
    spec = {"stop_loss_pct": [3, 9.5], "max_positions": [2, 12], "entry_rules.all.1.right": [25, 45],
            "samples": 20, "seed": 7}
    space = Space(base_plan(_ctx(data_dir), _req(random=spec)))
    a = expand(_req(random=spec), space, 100)
    b = expand(_req(random=spec), space, 100)
    c = expand(_req(random={**spec, "seed": 8}), space, 100)
    assert a == b and a != c and len(a) == 20
    assert all(isinstance(v["max_positions"], int) and 2 <= v["max_positions"] <= 12 for v in a)
    assert all(isinstance(v["stop_loss_pct"], float) and 3 <= v["stop_loss_pct"] <= 9.5 for v in a)
    assert len({tuple(v.values()) for v in a}) == 20


def test_parameters_are_labelled_as_a_trader_reads_them(data_dir: Path) -> None:
    """Table headers and heatmap axes: settings in words, a rule path as its rule with the swept value as x."""
    space = Space(base_plan(_ctx(data_dir), _req(grid={"stop_loss_pct": [5]})))
    assert [space.describe(n) for n in ("stop_loss_pct", "max_positions", "slippage_bps", "limit_offset_pct",
                                        "rsi_period")] == \
        ["stop loss %", "max positions", "slippage (bps)", "limit offset %", "rsi period"]
    assert space.describe("entry_rules.all.1.right") == "entry: rsi(14) < x"  # v3's RSI threshold
    assert space.describe("entry_rules.all.1.left.period") == "entry: rsi(x) < 35"
    assert space.describe("entry_rules.all.0.right.period") == "entry: close > sma(x)"
    bollinger = {"all": [{"left": {"ind": "close"}, "op": "<", "right": {"ind": "bb_lower", "period": 20, "std": 2}}]}
    exits = {"exit_when": {"any": [{"left": {"ind": "rsi", "period": 14}, "op": ">", "right": 70}]}}
    space = Space(base_plan(_ctx(data_dir), _req(strategy={"base_model": "v3_dip_buyer", "entry_rules": bollinger,
                                                           "exit_rules": exits}, grid={"target_pct": [9]})))
    assert space.describe("entry_rules.all.0.right.std") == "entry: close < bb_lower(20, x)"
    assert space.describe("exit_rules.exit_when.any.0.right") == "exit: rsi(14) > x"


def test_a_parameter_with_its_value_reads_as_the_rule() -> None:
    """x is replaced where a rule's label has it (never inside a word such as `max`); other labels say `= value`."""
    assert [with_value(label, value) for label, value in (
        ("entry: rsi(14) < x", "40"), ("entry: close > sma(x)", "50"), ("entry: close < bb_lower(20, x)", "2.5"),
        ("entry: sma(20)[-x] < close", "3"), ("max positions", "3"), ("stop loss %", "5"))] == [
        "entry: rsi(14) < 40", "entry: close > sma(50)", "entry: close < bb_lower(20, 2.5)",
        "entry: sma(20)[-3] < close", "max positions = 3", "stop loss % = 5"]


def test_space_errors_name_the_parameter_by_its_place_not_its_text(data_dir: Path) -> None:
    space = Space(base_plan(_ctx(data_dir), _req(grid={"stop_loss_pct": [5]})))
    with pytest.raises(DomainError, match=r"^grid: parameter 3 is not a sweep parameter") as err:
        space.where("sharpe", 2)
    assert "sharpe" not in err.value.detail.split(":")[1]
    with pytest.raises(DomainError, match=r"^grid: parameter 2: its dotted path .* \(step 3 is not there\)"):
        space.build(0, {"stop_loss_pct": 5, "entry_rules.all.7.right": 3})
    with pytest.raises(DomainError, match=r"^combination 5 \(in grid order\): ") as err:
        space.build(4, {"max_positions": 0})
    with pytest.raises(DomainError, match="at most 3 per job"):
        expand(_req(grid={"stop_loss_pct": [4, 5, 6, 7]}), space, 3)
    with pytest.raises(DomainError, match="constraint 1 names something that is neither a swept parameter"):
        expand(_req(grid={"stop_loss_pct": [4]}, constraints=["stop_loss_pct < target_pct"]), space, 3)
    with pytest.raises(DomainError, match="no combination satisfies"):
        expand(_req(grid={"stop_loss_pct": [4]}, constraints=["stop_loss_pct > 10"]), space, 3)


def test_objectives_and_ranking() -> None:
    m = {"sharpe": 1.2, "calmar": 0.5, "max_drawdown": 10.0, "total_trades": 12}
    assert score(m, "sharpe") == 1.2
    assert score(m, {"sharpe": 1, "calmar": 2, "max_drawdown": -0.1}) == pytest.approx(1.2)
    assert score({**m, "calmar": None}, {"sharpe": 1, "calmar": 1}) is None
    combos = [Combination(i, {"x": i}, {}, {}) for i in range(5)]
    metrics: list[dict[str, Any]] = [{"sharpe": 1.0, "total_trades": 10}, {"sharpe": 2.0, "total_trades": 3},
               {"sharpe": None, "total_trades": 0}, {"sharpe": 1.0, "total_trades": 10},
               {"sharpe": 0.5, "total_trades": 20}]
    rows = rank_rows(combos, metrics, "sharpe", min_trades=5)
    assert [r["index"] for r in rows] == [0, 3, 4, 1, 2]  # ties by order; too few trades and undefined last
    assert [r["eligible"] for r in rows] == [True, True, True, False, False]
    assert [r["rank"] for r in rows] == [1, 2, 3, 4, 5]


def test_shared_indicator_cache_matches_a_standalone_run_and_computes_each_series_once(data_dir: Path) -> None:
    universe = custom_universe(SYMBOLS)
    spec = DataSpec(str(data_dir), universe.symbols, universe.sectors, None, "2020-01-01", "2021-06-30")
    shared = load_shared(spec)
    config = {"start_date": "2020-01-01", "end_date": "2021-06-30", "starting_capital": 1_000_000.0,
              "position_size_pct": 10.0, "max_positions": 5, "max_per_sector": None, "slippage_bps": 5.0,
              "charges": "zerodha_delivery"}
    strategy = {"base_model": "v3_dip_buyer"}
    first = worker.run_window(shared, strategy, config)
    key = next(k for k in worker._CACHES if k[0] == shared.key)
    computed = worker._CACHES[key].computed
    assert computed > 0
    for stop in (4, 6, 9):
        worker.run_window(shared, {**strategy, "exit_rules": {"stop_loss_pct": stop, "target_pct": 12,
                                                              "max_hold_days": 20}}, {**config, "max_positions": 8})
    assert worker._CACHES[key].computed == computed  # no indicator computed again for other settings
    worker.run_window(shared, {**strategy, "params": {"rsi_period": 9}}, config)
    assert worker._CACHES[key].computed == computed + 1  # RSI(9): the one new series

    alone = execute_run(str(data_dir), SYMBOLS, list(universe.sectors), None, worker.warm_start_for(
        "2020-01-01", shared.first_stored), strategy, config)
    assert alone["summary"] == worker.run_combination(shared, (strategy, config))
    assert first.trades == alone["trades"]
    # and the engine without a shared cache agrees with the engine given one
    plain = run_backtest(shared.bars, strategy, BacktestConfig(**config))  # type: ignore[arg-type]
    assert plain.summary == first.summary


def test_desk_one_active_job_and_its_life_cycle() -> None:
    desk = ResearchDesk.open(5)
    desk.submit(1, "sweep", {}, 10)
    with pytest.raises(Conflict, match="Research job 1 is still queued"):
        desk.submit(2, "sweep", {}, 10)
    desk.start(1, "local:2")
    desk.progress(1, 4, 10)
    assert desk.job(1).done == 4
    desk.complete(1, {"best": None}, "ab", None, [])
    with pytest.raises(InvalidTransition):
        desk.progress(1, 5, 10)
    desk.submit(2, "sweep", {}, 3)
    assert desk.cancel_or_delete(2) == "cancelled"
    with pytest.raises(InvalidTransition):
        desk.start(2, "local:2")
    assert desk.cancel_or_delete(1) == "deleted"
    with pytest.raises(NotFound):
        desk.job(1)
    rebuilt = ResearchDesk.rehydrate(desk.aggregate_id, desk.collect_events())
    assert {j: s.status for j, s in rebuilt.jobs.items()} == {2: "cancelled"}


def test_walk_forward_windows_rolling_and_anchored() -> None:
    from backtest.research.walkforward import split_windows, stitch
    from domain.calendar import nse_calendar

    days = nse_calendar().trading_days(date(2020, 1, 1), date(2021, 12, 31))
    rolling = split_windows(days, 4, "rolling", 0.75)
    oos = len(days) // (4 + 3)
    ins = len(days) - 4 * oos  # about 3 OOS lengths, and the days left over
    assert [w.oos_start for w in rolling] == [days[ins + k * oos].isoformat() for k in range(4)]
    assert rolling[0].is_start == days[0].isoformat() and rolling[1].is_start == days[oos].isoformat()
    assert rolling[-1].oos_end == days[-1].isoformat()
    assert all(w.is_end < w.oos_start for w in rolling)
    assert all(a.oos_end < b.oos_start for a, b in itertools.pairwise(rolling))
    anchored = split_windows(days, 4, "anchored", 0.75)
    assert {w.is_start for w in anchored} == {days[0].isoformat()}
    assert [w.oos_start for w in anchored] == [w.oos_start for w in rolling]
    with pytest.raises(DomainError, match="cannot hold 40 out-of-sample windows"):
        split_windows(days, 40, "rolling", 0.75)
    assert stitch([[("a", 100.0), ("b", 110.0)], [("c", 100.0), ("d", 90.0)]], 100.0) == [
        ("a", 100.0), ("b", 110.0), ("c", 110.0), ("d", 99.0)]
