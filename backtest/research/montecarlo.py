"""Monte Carlo analysis of one backtest: how much of its result was the order of luck.

Two resamplings, both seeded (the same seed, inputs and simulation count give the same numbers on any
machine):

Simulations are drawn in groups of `GROUP` paths, group k from its own generator seeded with
(seed, k), so the answer does not depend on how the groups are batched or where they run.

- **Trade reshuffle** (`reshuffle_trades`): the run's closed trades, as rupee P&L, in a random order
  (a permutation of all of them, each once). Each simulation is an equity path starting at the
  starting capital that moves by one trade's P&L at a time. The trades are taken at their rupee size,
  so the final equity is the same in every order (capital + total P&L); what changes is the path:
  its drawdowns, and whether it touches ruin on the way. Max drawdown here is measured trade by trade
  (at the closes where trades exit), the peak starting at the starting capital as in the run's own
  metrics.
- **Bootstrapped daily returns** (`bootstrap_returns`): the run's daily close-to-close returns
  (`domain.metrics.daily_returns`, the first against the starting capital) drawn with replacement into
  a path as long as the run; with `block_days` > 1 they are drawn in consecutive blocks of that many
  days (a moving-block bootstrap, keeping some of the returns' clustering). Final equity, CAGR and
  max drawdown all vary.

For each of final equity (rupees), CAGR (percent a year) and max drawdown (percent, positive) the
answer gives mean, standard deviation, minimum, maximum, the chosen percentiles and a histogram, plus
the run's own value computed the same way (`original`). CAGR uses the run's span: years = (last date -
first date + 1 day) / 365.25, as `domain.metrics`; -100 once equity is gone. The probability of ruin is
the fraction of simulations whose max drawdown reached `ruin_drawdown_pct` (or whose equity fell to
zero or below).

This module is a pure library (numpy only): it reads a finished backtest's trades and equity curve and
runs no backtest itself.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from domain.errors import DomainError
from domain.metrics import daily_returns

FloatArray = npt.NDArray[np.float64]

METHODS = ("trades", "returns")
DEFAULT_PERCENTILES = (5.0, 25.0, 50.0, 75.0, 95.0)
MAX_SIMULATIONS = 100_000
GROUP = 100  # simulations drawn from one seeded generator
_CHUNK_CELLS = 2_000_000  # simulations x steps held at once (~16 MB of float64)


@dataclass(frozen=True)
class MonteCarloSettings:
    """How many paths, from which seed, and what counts as ruin."""

    simulations: int = 1000
    seed: int = 0
    ruin_drawdown_pct: float = 30.0
    percentiles: tuple[float, ...] = DEFAULT_PERCENTILES
    block_days: int = 1  # bootstrap block length in trading days (1 = independent days)
    bins: int = 20  # histogram bins per metric

    def validate(self) -> MonteCarloSettings:
        if isinstance(self.simulations, bool) or not isinstance(self.simulations, int) \
                or not 1 <= self.simulations <= MAX_SIMULATIONS:
            raise DomainError(f"simulations must be a whole number from 1 to {MAX_SIMULATIONS:,}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise DomainError("seed must be a whole number, 0 or more")
        if not isinstance(self.ruin_drawdown_pct, int | float) or not 0 < self.ruin_drawdown_pct <= 100:
            raise DomainError("ruin_drawdown_pct must be a number above 0 and at most 100")
        if not self.percentiles or any(not 0 <= p <= 100 for p in self.percentiles):
            raise DomainError("percentiles must be numbers from 0 to 100")
        if isinstance(self.block_days, bool) or not isinstance(self.block_days, int) \
                or not 1 <= self.block_days <= 250:
            raise DomainError("block_days must be a whole number from 1 to 250")
        if isinstance(self.bins, bool) or not isinstance(self.bins, int) or not 1 <= self.bins <= 200:
            raise DomainError("bins must be a whole number from 1 to 200")
        return self


Progress = Callable[[int], None]  # called with the simulations finished so far


def years_between(first_day: str, last_day: str) -> float:
    """The span `domain.metrics` uses for CAGR: (last - first + 1 day) / 365.25."""
    first = _dt.date.fromisoformat(first_day)
    last = _dt.date.fromisoformat(last_day)
    return ((last - first).days + 1) / 365.25


def _cagr(final: FloatArray, starting_capital: float, years: float) -> FloatArray:
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = final / starting_capital
        out = np.where(ratio > 0, (np.power(np.where(ratio > 0, ratio, 1.0), 1.0 / years) - 1.0) * 100.0, -100.0)
    return out.astype(np.float64)


def _max_drawdown(paths: FloatArray, starting_capital: float) -> FloatArray:
    """Per row: the largest fall below the running peak (the peak starting at the capital), percent."""
    peak = np.maximum.accumulate(np.maximum(paths, starting_capital), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        dd = np.where(peak > 0, (peak - paths) / np.where(peak > 0, peak, 1.0) * 100.0, 0.0)
    return np.clip(dd.max(axis=1), 0.0, 100.0) if paths.shape[1] else np.zeros(paths.shape[0])


def _summary(values: FloatArray, percentiles: Sequence[float], bins: int, nd: int) -> dict[str, Any]:
    pct = np.percentile(values, list(percentiles))
    lo, hi = float(values.min()), float(values.max())
    if hi - lo <= 1e-9 * max(1.0, abs(hi)):  # one value (up to float noise): one visible bin around it
        lo = hi = float(np.median(values))
        counts, edges = np.histogram(np.full(values.size, lo), bins=bins, range=(lo - 0.5, hi + 0.5))
    else:
        counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    return {
        "mean": round(float(values.mean()), nd),
        "std": round(float(values.std()), nd),
        "min": round(lo, nd),
        "max": round(hi, nd),
        "percentiles": {_pct_key(p): round(float(v), nd) for p, v in zip(percentiles, pct, strict=True)},
        "histogram": {"edges": [round(float(x), nd) for x in edges], "counts": [int(c) for c in counts]},
    }


def _pct_key(p: float) -> str:
    return f"{p:g}"


def _simulate(method: str, steps: int, draw: Callable[[int, int], FloatArray], starting_capital: float,  # noqa: PLR0913
              years: float, settings: MonteCarloSettings, original: dict[str, float | None],
              extra: Mapping[str, Any], progress: Progress | None) -> dict[str, Any]:
    """Run `settings.simulations` paths -- `draw(group, n)` gives n equity paths of group k, each `steps`
    long -- in batches, and summarise them."""
    finals: list[FloatArray] = []
    drawdowns: list[FloatArray] = []
    ruined = 0
    done = 0
    for batch in _groups(settings.simulations, steps):
        paths = np.concatenate([draw(k, n) for k, n in batch])
        dd = _max_drawdown(paths, starting_capital)
        finals.append(paths[:, -1].copy())
        drawdowns.append(dd)
        ruined += int(np.count_nonzero((dd >= settings.ruin_drawdown_pct) | (paths.min(axis=1) <= 0)))
        done += paths.shape[0]
        if progress is not None:
            progress(done)
    final = np.concatenate(finals)
    dd = np.concatenate(drawdowns)
    cagr = _cagr(final, starting_capital, years)
    return {
        "method": method,
        "simulations": settings.simulations,
        "seed": settings.seed,
        "samples": steps,
        **extra,
        "starting_capital": starting_capital,
        "years": round(years, 4),
        "original": original,
        "final_equity": _summary(final, settings.percentiles, settings.bins, 2),
        "cagr": _summary(cagr, settings.percentiles, settings.bins, 4),
        "max_drawdown": _summary(dd, settings.percentiles, settings.bins, 4),
        "ruin_drawdown_pct": settings.ruin_drawdown_pct,
        "probability_of_ruin": round(ruined / settings.simulations, 6),
    }


def _groups(simulations: int, steps: int) -> list[list[tuple[int, int]]]:
    """Batches of (group index, paths in the group) holding about `_CHUNK_CELLS` values each."""
    per_batch = max(1, _CHUNK_CELLS // max(1, steps * GROUP))
    groups = [(k, min(GROUP, simulations - k * GROUP)) for k in range(-(-simulations // GROUP))]
    return [groups[i:i + per_batch] for i in range(0, len(groups), per_batch)]


def _rng(seed: int, group: int) -> np.random.Generator:
    return np.random.default_rng([seed, group])


def _original(path: FloatArray, starting_capital: float, years: float) -> dict[str, float | None]:
    final = float(path[-1]) if path.size else float(starting_capital)
    dd = float(_max_drawdown(path[None, :], starting_capital)[0]) if path.size else 0.0
    cagr = float(_cagr(np.array([final]), starting_capital, years)[0])
    return {"final_equity": round(final, 2), "cagr": round(cagr, 4) if math.isfinite(cagr) else None,
            "max_drawdown": round(dd, 4)}


def _checked(values: Sequence[float], starting_capital: float, years: float, too_few: str) -> FloatArray:
    """`values` as an array of at least 2 finite numbers (else DomainError saying `too_few`)."""
    if not starting_capital > 0:
        raise DomainError("starting_capital must be above 0")
    if not years > 0:
        raise DomainError("the run must span at least one day")
    arr = np.asarray(values, dtype=np.float64)
    if arr.size < 2:
        raise DomainError(too_few)
    if not np.all(np.isfinite(arr)):
        raise DomainError("every value to resample must be a finite number")
    return arr


def reshuffle_trades(pnl: Sequence[float], starting_capital: float, years: float,
                     settings: MonteCarloSettings = MonteCarloSettings(),
                     progress: Progress | None = None) -> dict[str, Any]:
    """Monte Carlo over the order of closed trades (rupee P&L, in exit order): see the module docstring."""
    settings = settings.validate()
    trades = _checked(pnl, starting_capital, years, "reshuffling trades needs a run with at least 2 closed trades")

    def draw(group: int, n: int) -> FloatArray:
        order = _rng(settings.seed, group).permuted(np.broadcast_to(trades, (n, trades.size)), axis=1)
        return np.asarray(starting_capital + np.cumsum(order, axis=1), dtype=np.float64)

    original = _original(starting_capital + np.cumsum(trades), starting_capital, years)
    return _simulate("trades", int(trades.size), draw, starting_capital, years, settings, original, {}, progress)


def bootstrap_returns(returns: Sequence[float], starting_capital: float, years: float,
                      settings: MonteCarloSettings = MonteCarloSettings(),
                      progress: Progress | None = None) -> dict[str, Any]:
    """Monte Carlo over daily returns drawn with replacement (in blocks of `settings.block_days`)."""
    settings = settings.validate()
    r = _checked(returns, starting_capital, years, "bootstrapping daily returns needs a run of at least 2 trading days")
    if np.any(r < -1.0):
        raise DomainError("daily returns must be at least -100 %")
    days = r.size
    block = min(settings.block_days, days)
    n_blocks = -(-days // block)
    starts_max = days - block + 1
    growth = np.log1p(np.where(r > -1.0, r, 0.0))
    wiped = r <= -1.0

    def draw(group: int, n: int) -> FloatArray:
        starts = _rng(settings.seed, group).integers(0, starts_max, size=(n, n_blocks))
        idx = (starts[:, :, None] + np.arange(block)[None, None, :]).reshape(n, -1)[:, :days]
        gone = np.logical_or.accumulate(wiped[idx], axis=1)
        return np.where(gone, 0.0, starting_capital * np.exp(np.cumsum(growth[idx], axis=1)))

    original = _original(np.asarray(starting_capital * np.cumprod(1.0 + r), dtype=np.float64), starting_capital,
                         years)
    return _simulate("returns", days, draw, starting_capital, years, settings, original, {"block_days": block},
                     progress)


def monte_carlo(result: Mapping[str, Any], method: str, settings: MonteCarloSettings = MonteCarloSettings(),
                progress: Progress | None = None) -> dict[str, Any]:
    """Monte Carlo of a finished backtest's answer (`BacktestResult.to_dict()` or a stored run: needs
    `equity_curve`, `trades` and `config.starting_capital`) by `method`: "trades" or "returns"."""
    if method not in METHODS:
        raise DomainError(f"method must be one of {', '.join(METHODS)}")
    curve = result.get("equity_curve") or []
    if len(curve) < 2:
        raise DomainError("the run's equity curve must have at least 2 trading days")
    capital = float(result["config"]["starting_capital"])
    years = years_between(str(curve[0]["date"]), str(curve[-1]["date"]))
    if method == "trades":
        return reshuffle_trades([float(t["pnl"]) for t in result.get("trades") or []], capital, years,
                                settings, progress)
    equity = [float(p["equity"]) for p in curve]
    return bootstrap_returns(daily_returns(equity, capital).tolist(), capital, years, settings, progress)
