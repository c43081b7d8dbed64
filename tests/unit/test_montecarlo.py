"""Monte Carlo of a backtest (backtest/research/montecarlo.py): properties a trader relies on."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backtest.engine import BacktestConfig, run_backtest
from backtest.research.montecarlo import (
    MonteCarloSettings,
    bootstrap_returns,
    monte_carlo,
    reshuffle_trades,
    years_between,
)
from domain.bars import BarMatrix
from domain.errors import DomainError

PNL = [12_000.0, -8_000.0, 5_000.0, -15_000.0, 20_000.0, -3_000.0, 7_500.0, -11_000.0, 9_000.0, 4_000.0]


def test_same_seed_same_numbers_other_seed_other_paths() -> None:
    s = MonteCarloSettings(simulations=500, seed=42)
    a = reshuffle_trades(PNL, 100_000, 2.0, s)
    b = reshuffle_trades(PNL, 100_000, 2.0, s)
    c = reshuffle_trades(PNL, 100_000, 2.0, MonteCarloSettings(simulations=500, seed=43))
    assert a == b
    assert a["max_drawdown"] != c["max_drawdown"]
    r1 = bootstrap_returns(np.linspace(-0.02, 0.025, 300).tolist(), 100_000, 1.2, s)
    assert r1 == bootstrap_returns(np.linspace(-0.02, 0.025, 300).tolist(), 100_000, 1.2, s)


def test_batching_does_not_change_the_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Paths are held in batches to bound memory; the batch size is not part of the answer."""
    import backtest.research.montecarlo as mc

    s = MonteCarloSettings(simulations=1234, seed=5)
    r = np.random.default_rng(1).normal(0.0004, 0.01, 400).tolist()
    whole = (reshuffle_trades(PNL, 100_000, 2.0, s), bootstrap_returns(r, 100_000, 1.6, s))
    monkeypatch.setattr(mc, "_CHUNK_CELLS", 1)  # one group of paths per batch
    assert (reshuffle_trades(PNL, 100_000, 2.0, s), bootstrap_returns(r, 100_000, 1.6, s)) == whole
    assert sum(whole[0]["max_drawdown"]["histogram"]["counts"]) == 1234


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(-20_000, 20_000).map(float), min_size=2, max_size=60), st.integers(0, 2**31))
def test_reshuffling_fixed_size_trades_keeps_final_equity(pnl: list[float], seed: int) -> None:
    out = reshuffle_trades(pnl, 1_000_000, 3.0, MonteCarloSettings(simulations=50, seed=seed))
    final = out["final_equity"]
    expected = round(1_000_000 + sum(pnl), 2)
    assert final["min"] == final["max"] == expected == out["original"]["final_equity"]
    # the drawdown of any order is at least the worst single losing trade's fall from the capital peak...
    worst = max(0.0, -min(pnl)) / (1_000_000 + sum(p for p in pnl if p > 0)) * 100
    assert out["max_drawdown"]["min"] >= round(worst, 4) - 1e-4
    # ...and at most all losses in a row from the highest possible peak
    assert out["max_drawdown"]["max"] <= -sum(p for p in pnl if p < 0) / 1_000_000 * 100 + 1e-4


def test_percentiles_are_ordered_and_the_histogram_counts_every_path() -> None:
    out = reshuffle_trades(PNL, 50_000, 1.5, MonteCarloSettings(simulations=2000, seed=1, bins=15))
    dd = out["max_drawdown"]
    values = [dd["percentiles"][k] for k in ("5", "25", "50", "75", "95")]
    assert values == sorted(values) and dd["min"] <= values[0] and values[-1] <= dd["max"]
    assert sum(dd["histogram"]["counts"]) == 2000 and len(dd["histogram"]["edges"]) == 16


def test_ruin_probability_counts_paths_past_the_drawdown() -> None:
    # capital 1,00,000 and trades -30k, +40k, -30k: the win first falls 60k from a 1,40,000 peak (42.9 %),
    # the win between the losses falls 30 % at worst, the win last falls 60 % -- each order a third of the time
    pnl = [-30_000.0, 40_000.0, -30_000.0]
    s = MonteCarloSettings(simulations=6000, seed=9, ruin_drawdown_pct=50)
    out = reshuffle_trades(pnl, 100_000, 1.0, s)
    assert out["probability_of_ruin"] == pytest.approx(1 / 3, abs=0.03)
    assert out["max_drawdown"]["min"] == 30.0 and out["max_drawdown"]["max"] == 60.0
    at_40 = reshuffle_trades(pnl, 100_000, 1.0, MonteCarloSettings(simulations=6000, seed=9, ruin_drawdown_pct=40))
    assert at_40["probability_of_ruin"] == pytest.approx(2 / 3, abs=0.03)
    at_25 = reshuffle_trades(pnl, 100_000, 1.0, MonteCarloSettings(simulations=200, seed=9, ruin_drawdown_pct=25))
    assert at_25["probability_of_ruin"] == 1.0  # every order falls at least 30 %


def test_bootstrap_of_constant_returns_has_no_spread() -> None:
    r = [0.001] * 500
    out = bootstrap_returns(r, 100_000, 2.0, MonteCarloSettings(simulations=100, seed=3, block_days=5))
    expected = 100_000 * 1.001 ** 500
    assert out["final_equity"]["min"] == pytest.approx(expected, abs=0.01)
    assert out["final_equity"]["max"] == pytest.approx(expected, abs=0.01)
    assert out["max_drawdown"]["max"] == 0.0 and out["probability_of_ruin"] == 0.0
    assert out["cagr"]["mean"] == pytest.approx(((expected / 100_000) ** (1 / 2.0) - 1) * 100, abs=1e-3)


def test_bootstrap_median_is_near_the_original_and_spread_grows_with_volatility() -> None:
    rng = np.random.default_rng(0)
    calm = rng.normal(0.0005, 0.005, 750).tolist()
    wild = rng.normal(0.0005, 0.03, 750).tolist()
    s = MonteCarloSettings(simulations=3000, seed=11)
    a = bootstrap_returns(calm, 100_000, 3.0, s)
    b = bootstrap_returns(wild, 100_000, 3.0, s)
    # the median path compounds the same returns: within a few percent of the run's own final equity
    assert a["final_equity"]["percentiles"]["50"] == pytest.approx(a["original"]["final_equity"], rel=0.05)
    assert b["max_drawdown"]["percentiles"]["50"] > 3 * a["max_drawdown"]["percentiles"]["50"]
    assert b["cagr"]["std"] > 3 * a["cagr"]["std"]


def test_a_wipe_out_day_ends_the_path() -> None:
    r = [0.01] * 20 + [-1.0] + [0.01] * 20
    out = bootstrap_returns(r, 100_000, 0.2, MonteCarloSettings(simulations=500, seed=2))
    # paths that drew the -100 % day end at 0 and are ruined; CAGR is -100 for them
    assert out["final_equity"]["min"] == 0.0 and out["cagr"]["min"] == -100.0
    hit = 1 - (40 / 41) ** 41
    assert out["probability_of_ruin"] == pytest.approx(hit, abs=0.06)


@pytest.mark.parametrize("kw, message", [
    ({"simulations": 0}, "simulations"), ({"simulations": 10**6}, "simulations"), ({"seed": -1}, "seed"),
    ({"ruin_drawdown_pct": 0}, "ruin_drawdown_pct"), ({"block_days": 0}, "block_days"),
    ({"percentiles": (5.0, 101.0)}, "percentiles"), ({"bins": 0}, "bins"),
])
def test_bad_settings_say_what_to_change(kw: dict[str, object], message: str) -> None:
    with pytest.raises(DomainError, match=message):
        reshuffle_trades(PNL, 100_000, 1.0, MonteCarloSettings(**kw))  # type: ignore[arg-type]


def test_too_few_trades_or_days_is_refused() -> None:
    with pytest.raises(DomainError, match="at least 2 closed trades"):
        reshuffle_trades([100.0], 100_000, 1.0)
    with pytest.raises(DomainError, match="at least 2 trading days"):
        bootstrap_returns([0.01], 100_000, 1.0)


def _bars() -> BarMatrix:
    rng = np.random.default_rng(4)
    dates = np.arange(np.datetime64("2021-01-01"), np.datetime64("2022-12-31"), dtype="datetime64[D]")
    dates = dates[np.is_busday(dates)]
    n = len(dates)
    close = np.round(100 * np.exp(np.cumsum(rng.normal(0.0003, 0.02, (6, n)), axis=1)), 2)
    open_ = np.round(close * (1 + rng.normal(0, 0.004, close.shape)), 2)
    high = np.maximum(open_, close) + 0.5
    low = np.minimum(open_, close) - 0.5
    return BarMatrix(symbols=tuple(f"S{i}" for i in range(6)), dates=dates, open=open_, high=high, low=low,
                     close=close, volume=np.full(close.shape, 1e5), sectors=tuple("X" for _ in range(6)))


def test_monte_carlo_of_a_real_backtest_reads_its_trades_and_curve() -> None:
    cfg = BacktestConfig(start_date="2021-06-01", end_date="2022-12-30", starting_capital=1_000_000,
                         position_size_pct=15, max_positions=6)
    res = run_backtest(_bars(), {"base_model": "sma_crossover"}, cfg).to_dict()
    assert len(res["trades"]) >= 5
    years = years_between(res["equity_curve"][0]["date"], res["equity_curve"][-1]["date"])
    trades = monte_carlo(res, "trades", MonteCarloSettings(simulations=300, seed=1))
    assert trades["samples"] == len(res["trades"]) and trades["years"] == round(years, 4)
    closed_pnl = sum(t["pnl"] for t in res["trades"])
    assert trades["final_equity"]["mean"] == pytest.approx(1_000_000 + closed_pnl, abs=0.01)
    daily = monte_carlo(res, "returns", MonteCarloSettings(simulations=300, seed=1))
    # the run's own path, rebuilt from its returns, ends at its final equity and has its max drawdown
    assert daily["original"]["final_equity"] == pytest.approx(res["summary"]["final_equity"], abs=0.05)
    assert daily["original"]["max_drawdown"] == pytest.approx(res["summary"]["max_drawdown"], abs=1e-3)
    assert daily["samples"] == len(res["equity_curve"])
    with pytest.raises(DomainError, match="method"):
        monte_carlo(res, "bogus")


def test_the_cli_text_shows_percentiles_in_indian_money_and_the_ruin_probability() -> None:
    from backtest.research.jobs import TextTable
    from backtest.research.robustness import MONTE_CARLO
    from domain.money import format_number

    row = reshuffle_trades([150_000.0, -90_000.0, 60_000.0], 10_000_000, 1.0,
                           MonteCarloSettings(simulations=100, seed=1, ruin_drawdown_pct=0.5))
    head, table = MONTE_CARLO.render({"total_trades": 3, "final_equity": 10_120_000.0, "max_drawdown": 0.9},
                                     {"results": [row]})
    assert head == "Backtest: 3 closed trades, final equity ₹1,01,20,000.00, max drawdown 0.90 %"
    assert isinstance(table, TextTable)
    assert table.title == "Closed trades in 100 random orders (seed 1)"
    assert table.headers == ["percentile", "5 %", "25 %", "50 %", "75 %", "95 %"]
    # rows: final equity in whole rupees (the same in every order), CAGR and max drawdown to two decimals
    assert table.rows[0] == ["final equity", *["₹1,01,20,000"] * 5]
    assert table.rows[2] == ["max DD %", *[format_number(v, 2) for v in row["max_drawdown"]["percentiles"].values()]]
    assert table.caption is not None and table.caption.endswith(
        f"Chance of a 0.5 % drawdown: {row['probability_of_ruin'] * 100:.1f} %")
    assert "the final equity is the same in every order" in table.caption
