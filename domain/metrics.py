"""Performance metrics of a daily equity curve and its closed trades.

Conventions (percent fields are numbers like 23.4 meaning 23.4 %):
- Daily returns: r[0] = equity[0] / starting_capital - 1, then r[i] = equity[i] / equity[i-1] - 1.
- cagr: (final / starting_capital) ** (1 / years) - 1 with years = (last date - first date + 1 day)
  / 365.25 over the curve's dates; null for a curve shorter than 2 days; -100 when equity is gone.
- sharpe: mean(r) / std(r, ddof=1) x sqrt(252), risk-free 0; sortino: mean(r) / downside deviation
  x sqrt(252) with downside deviation = sqrt(mean(min(r, 0) ** 2)); volatility: std(r, ddof=1) x
  sqrt(252) x 100; calmar: cagr / max_drawdown.
- max_drawdown: the largest fall from a running peak, in percent, as a positive number (the peak
  starts at the starting capital); max_drawdown_days: the longest stretch, in trading days, from a
  peak until equity is back at that peak (an unrecovered drawdown counts to the last day).
- Trades: a win has pnl > 0, anything else is a loss. win_rate = wins / trades x 100;
  profit_factor = gross wins / |gross losses|; expectancy = mean pnl (rupees); avg_win / avg_loss =
  mean pnl of wins / losses (rupees, avg_loss negative); best_trade / worst_trade = highest / lowest
  pnl_pct (percent of the entry value); streaks count consecutive wins / losses in exit order;
  avg_holding_days in trading days.
- exposure_pct: percent of curve days with at least one open position at the close.
- benchmark_return: benchmark close on the last curve day / on the first curve day - 1, in percent.
  beta = cov(r_strategy, r_benchmark) / var(r_benchmark) over the days both have a return (from the
  second curve day on); alpha = (mean(r_strategy) - beta x mean(r_benchmark)) x 252 x 100 (percent
  per year).
- monthly_returns: {"YYYY-MM": percent}, each month's last equity over the previous month's last
  equity (the first month over the starting capital).
Division guards: ratios whose denominator is zero or whose inputs are missing are null (None); sums
and counts of nothing are 0. No NaN or infinity is ever returned. Money is rounded to 2 decimals,
ratios and percents to 4.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from domain.rounding import round4

TRADING_DAYS = 252


def _r(x: float | None, nd: int = 4) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return round(float(x), nd)


def daily_returns(equity: Sequence[float], starting_capital: float) -> np.ndarray:
    """Close-to-close returns, the first against the starting capital."""
    eq = np.asarray(equity, dtype=np.float64)
    if eq.size == 0:
        return eq
    prev = np.concatenate(([starting_capital], eq[:-1]))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(prev != 0, eq / np.where(prev != 0, prev, 1.0) - 1.0, 0.0)
    return out


def drawdowns(equity: Sequence[float], starting_capital: float) -> np.ndarray:
    """Percent below the running peak (peak starting at the starting capital), positive numbers."""
    eq = np.asarray(equity, dtype=np.float64)
    if eq.size == 0:
        return eq
    peak = np.maximum.accumulate(np.maximum(eq, starting_capital))
    with np.errstate(divide="ignore", invalid="ignore"):
        dd = np.where(peak > 0, (peak - eq) / np.where(peak > 0, peak, 1.0) * 100.0, 0.0)
    return np.maximum(dd, 0.0)


def max_drawdown_days(equity: Sequence[float], starting_capital: float) -> int:
    """Longest peak-to-recovery stretch in trading days (unrecovered: up to the last day).

    A peak on day p recovered on day q lasts q - p days; the starting capital is a peak on day -1."""
    peak = starting_capital
    peak_idx = -1
    longest = 0
    for i, value in enumerate(equity):
        if value >= peak:
            if i - peak_idx > 1:
                longest = max(longest, i - peak_idx)
            peak, peak_idx = value, i
    if len(equity) - 1 > peak_idx:
        longest = max(longest, len(equity) - 1 - peak_idx)
    return longest


def monthly_returns(dates: Sequence[str], equity: Sequence[float], starting_capital: float) -> dict[str, float]:
    """{"YYYY-MM": percent return of that month} (see the module docstring)."""
    out: dict[str, float] = {}
    base = starting_capital
    month_end: dict[str, float] = {}
    for day, value in zip(dates, equity, strict=True):
        month_end[day[:7]] = value
    for month, value in month_end.items():
        out[month] = round4((value / base - 1.0) * 100.0) if base else 0.0
        base = value
    return out


def _streaks(wins: Sequence[bool]) -> tuple[int, int]:
    best_w = best_l = cur_w = cur_l = 0
    for w in wins:
        if w:
            cur_w, cur_l = cur_w + 1, 0
        else:
            cur_w, cur_l = 0, cur_l + 1
        best_w, best_l = max(best_w, cur_w), max(best_l, cur_l)
    return best_w, best_l


def trade_stats(trades: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Win rate, profit factor, expectancy, averages, extremes, streaks and holding of closed trades."""
    pnl = [float(t["pnl"]) for t in trades]
    pct = [float(t["pnl_pct"]) for t in trades]
    wins = [p for p in pnl if p > 0]
    losses = [p for p in pnl if p <= 0]
    gross_loss = -sum(losses)
    w_streak, l_streak = _streaks([p > 0 for p in pnl])
    n = len(pnl)
    return {
        "total_trades": n,
        "win_rate": _r(len(wins) / n * 100.0) if n else None,
        "profit_factor": _r(sum(wins) / gross_loss) if gross_loss > 0 else None,
        "expectancy": _r(sum(pnl) / n, 2) if n else None,
        "avg_win": _r(sum(wins) / len(wins), 2) if wins else None,
        "avg_loss": _r(sum(losses) / len(losses), 2) if losses else None,
        "best_trade": _r(max(pct)) if pct else None,
        "worst_trade": _r(min(pct)) if pct else None,
        "max_consecutive_wins": w_streak,
        "max_consecutive_losses": l_streak,
        "avg_holding_days": _r(sum(float(t["holding_days"]) for t in trades) / n) if n else None,
    }


def summarize(
    *,
    dates: Sequence[str],
    equity: Sequence[float],
    starting_capital: float,
    trades: Sequence[Mapping[str, Any]],
    invested_days: int,
    total_charges: float,
    benchmark: Sequence[float] | np.ndarray | None = None,
) -> dict[str, Any]:
    """The backtest summary (API "Backtest" `summary`) from the daily curve and the closed trades.

    `invested_days` is how many curve days had an open position at the close; `benchmark` holds the
    benchmark's closes on the curve's days (NaN where unknown) or is None."""
    n = len(equity)
    final = float(equity[-1]) if n else float(starting_capital)
    rets = daily_returns(equity, starting_capital)
    total_return = (final / starting_capital - 1.0) * 100.0 if starting_capital else 0.0

    cagr: float | None = None
    if n >= 2:
        first = _dt.date.fromisoformat(dates[0])
        last = _dt.date.fromisoformat(dates[-1])
        years = ((last - first).days + 1) / 365.25
        growth = final / starting_capital if starting_capital else 0.0
        cagr = (growth ** (1.0 / years) - 1.0) * 100.0 if growth > 0 else -100.0

    std = float(np.std(rets, ddof=1)) if rets.size >= 2 else 0.0
    mean = float(np.mean(rets)) if rets.size else 0.0
    downside = float(np.sqrt(np.mean(np.minimum(rets, 0.0) ** 2))) if rets.size else 0.0
    sharpe = mean / std * math.sqrt(TRADING_DAYS) if std > 0 else None
    sortino = mean / downside * math.sqrt(TRADING_DAYS) if downside > 0 else None
    dd = drawdowns(equity, starting_capital)
    max_dd = float(dd.max()) if dd.size else 0.0
    calmar = cagr / max_dd if (cagr is not None and max_dd > 0) else None

    bench_ret = alpha = beta = None
    if benchmark is not None and n:
        b = np.asarray(benchmark, dtype=np.float64)
        finite = np.flatnonzero(np.isfinite(b) & (b > 0))
        if finite.size >= 2:
            bench_ret = (b[finite[-1]] / b[finite[0]] - 1.0) * 100.0
        if n >= 3:
            with np.errstate(divide="ignore", invalid="ignore"):
                rb = b[1:] / b[:-1] - 1.0
            rs = rets[1:]
            ok = np.isfinite(rb) & np.isfinite(rs)
            if ok.sum() >= 2:
                var_b = float(np.var(rb[ok], ddof=1))
                if var_b > 0:
                    cov = float(np.cov(rs[ok], rb[ok], ddof=1)[0, 1])
                    beta = cov / var_b
                    alpha = (float(rs[ok].mean()) - beta * float(rb[ok].mean())) * TRADING_DAYS * 100.0

    out: dict[str, Any] = {
        "cagr": _r(cagr),
        "total_return": _r(total_return),
        "final_equity": round(final, 2),
        "sharpe": _r(sharpe),
        "sortino": _r(sortino),
        "calmar": _r(calmar),
        "max_drawdown": _r(max_dd),
        "max_drawdown_days": max_drawdown_days(equity, starting_capital),
        "volatility": _r(std * math.sqrt(TRADING_DAYS) * 100.0),
    }
    out.update(trade_stats(trades))
    out.update({
        "exposure_pct": _r(invested_days / n * 100.0) if n else 0.0,
        "total_charges": round(float(total_charges), 2),
        "benchmark_return": _r(bench_ret),
        "alpha": _r(alpha),
        "beta": _r(beta),
    })
    return out
