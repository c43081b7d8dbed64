"""Metrics on small hand-checkable curves and trade lists."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from domain.metrics import daily_returns, drawdowns, max_drawdown_days, monthly_returns, summarize, trade_stats


def trade(pnl: float, pct: float, days: int = 3) -> dict:
    return {"pnl": pnl, "pnl_pct": pct, "holding_days": days}


def test_daily_returns_start_from_capital() -> None:
    np.testing.assert_allclose(daily_returns([110.0, 99.0], 100.0), [0.10, -0.10])


def test_drawdown_and_longest_peak_to_recovery() -> None:
    eq = [100.0, 120.0, 90.0, 95.0, 130.0, 120.0]
    dd = drawdowns(eq, 100.0)
    assert dd.max() == pytest.approx(25.0)
    assert dd[2] == pytest.approx(25.0) and dd[4] == 0.0
    assert max_drawdown_days(eq, 100.0) == 3  # peak day 1 -> back at the peak on day 4


def test_unrecovered_drawdown_counts_to_the_end() -> None:
    assert max_drawdown_days([100.0, 99.0, 98.0, 97.0], 100.0) == 3
    assert max_drawdown_days([101.0, 102.0], 100.0) == 0


def test_trade_stats_golden() -> None:
    trades = [trade(100, 10), trade(-50, -5), trade(200, 20), trade(300, 15), trade(-25, -2.5, 5)]
    s = trade_stats(trades)
    assert s["total_trades"] == 5
    assert s["win_rate"] == 60.0
    assert s["profit_factor"] == pytest.approx(600 / 75, abs=1e-4)
    assert s["expectancy"] == 105.0
    assert s["avg_win"] == 200.0 and s["avg_loss"] == -37.5
    assert s["best_trade"] == 20.0 and s["worst_trade"] == -5.0
    assert s["max_consecutive_wins"] == 2 and s["max_consecutive_losses"] == 1
    assert s["avg_holding_days"] == pytest.approx(3.4)


def test_no_trades_gives_nulls_not_nan() -> None:
    s = trade_stats([])
    assert s["win_rate"] is None and s["profit_factor"] is None and s["total_trades"] == 0


def test_no_losses_profit_factor_is_null() -> None:
    assert trade_stats([trade(10, 1)])["profit_factor"] is None


def test_monthly_returns_chain_month_ends() -> None:
    dates = ["2021-01-04", "2021-01-29", "2021-02-01", "2021-02-26", "2021-03-31"]
    eq = [100.0, 110.0, 100.0, 121.0, 108.9]
    got = monthly_returns(dates, eq, 100.0)
    assert got == {"2021-01": 10.0, "2021-02": 10.0, "2021-03": -10.0}


def test_summary_sharpe_sortino_vol_match_formulas() -> None:
    eq = [101.0, 102.0, 100.0, 103.0, 104.0]
    dates = ["2022-01-03", "2022-01-04", "2022-01-05", "2022-01-06", "2022-01-07"]
    s = summarize(dates=dates, equity=eq, starting_capital=100.0, trades=[], invested_days=4, total_charges=1.234)
    r = np.array(eq) / np.array([100.0, *eq[:-1]]) - 1
    assert s["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(252), abs=1e-4)
    down = math.sqrt(np.mean(np.minimum(r, 0) ** 2))
    assert s["sortino"] == pytest.approx(r.mean() / down * math.sqrt(252), abs=1e-4)
    assert s["volatility"] == pytest.approx(r.std(ddof=1) * math.sqrt(252) * 100, abs=1e-4)
    assert s["total_return"] == 4.0 and s["final_equity"] == 104.0
    assert s["exposure_pct"] == 80.0 and s["total_charges"] == 1.23


def test_cagr_of_doubling_in_one_calendar_year() -> None:
    s = summarize(dates=["2021-01-01", "2021-12-31"], equity=[100.0, 200.0], starting_capital=100.0, trades=[],
                  invested_days=0, total_charges=0)
    assert s["cagr"] == pytest.approx((2 ** (365.25 / 365) - 1) * 100, abs=1e-4)
    assert s["calmar"] is None  # no drawdown


def test_beta_and_alpha_against_a_benchmark() -> None:
    rng = np.random.default_rng(1)
    rb = rng.normal(0.0005, 0.01, 300)
    bench = 1000 * np.cumprod(1 + rb)
    rs = 2 * rb[1:] + 0.0001
    eq = list(100.0 * np.cumprod(np.concatenate([[1.0], 1 + rs])))
    dates = [str(np.datetime64("2021-01-01") + i) for i in range(300)]
    s = summarize(dates=dates, equity=eq, starting_capital=100.0, trades=[], invested_days=300, total_charges=0,
                  benchmark=bench)
    assert s["beta"] == pytest.approx(2.0, abs=1e-6)
    assert s["alpha"] == pytest.approx(0.0001 * 252 * 100, abs=1e-4)
    assert s["benchmark_return"] == pytest.approx((bench[-1] / bench[0] - 1) * 100, abs=1e-4)


def test_flat_curve_summary_is_json_safe() -> None:
    s = summarize(dates=["2022-01-03", "2022-01-04"], equity=[100.0, 100.0], starting_capital=100.0, trades=[],
                  invested_days=0, total_charges=0, benchmark=np.array([np.nan, np.nan]))
    json.dumps(s, allow_nan=False)
    assert s["sharpe"] is None and s["sortino"] is None and s["max_drawdown"] == 0.0
    assert s["benchmark_return"] is None and s["beta"] is None


def test_empty_curve_is_json_safe() -> None:
    s = summarize(dates=[], equity=[], starting_capital=100.0, trades=[], invested_days=0, total_charges=0)
    json.dumps(s, allow_nan=False)
    assert s["final_equity"] == 100.0
