"""Conviction scores (0-100) that rank a day's candidates, one formula per base model.

Each formula implements the words of its catalog entry in `domain.base_models`, with the base
model's own parameters (not the periods of a customised rule set):

- v3_dip_buyer: 0.7 x (100 - RSI(rsi_period)) [RSI 35 -> 45.5, RSI 0 -> 70] plus
  30 x clip(distance of the close above SMA(trend_period) in % / 20, 0, 1).
- momentum_breakout: 25 x min(volume / avg_volume(volume_period), 2) [0-50] plus
  50 x min(breakout distance in % above the prior high / 5, 1), the prior high being
  highest(high, lookback) of the previous bar.
- sma_crossover: 50 + 10 x (SMA(fast) / SMA(slow) - 1) x 100.
- bollinger_reversion: 50 + 10 x (lower band - close) / lower band x 100, bands of (period, std).

Every score is clipped to 0-100. Where an input is missing (NaN, e.g. not enough history for the
model's own periods) the score is 0, so such candidates rank last instead of poisoning the sort.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from domain.bars import BarMatrix
from domain.base_models import get_base_model
from domain.indicators import FloatMatrix, IndicatorCache
from domain.rules import Indicator


def _pct_above(a: FloatMatrix, b: FloatMatrix) -> FloatMatrix:
    """(a / b - 1) x 100, NaN where b is not positive."""
    with np.errstate(invalid="ignore", divide="ignore"):
        out: FloatMatrix = np.where(b > 0, (a / np.where(b > 0, b, 1.0) - 1.0) * 100.0, np.nan)
    return out


def conviction_aligned(base_model: str, params: Mapping[str, Any], cache: IndicatorCache) -> FloatMatrix:
    """Conviction in the cache's aligned layout (NaN where an input is missing)."""
    model = get_base_model(base_model)
    p = {**model.defaults(), **params}
    close = cache.field("close")
    with np.errstate(invalid="ignore", divide="ignore"):
        if base_model == "v3_dip_buyer":
            rsi = cache.series(Indicator("rsi", int(p["rsi_period"])))
            trend = cache.series(Indicator("sma", int(p["trend_period"]), source="close"))
            dist = _pct_above(close, trend)
            score = 0.7 * (100.0 - rsi) + 30.0 * np.clip(dist / 20.0, 0.0, 1.0)
        elif base_model == "momentum_breakout":
            volume = cache.field("volume")
            avg = cache.series(Indicator("avg_volume", int(p["volume_period"])))
            ratio = np.where(avg > 0, volume / np.where(avg > 0, avg, 1.0), np.nan)
            prior_high = cache.series(Indicator("highest", int(p["lookback"]), offset=1, source="high"))
            dist = _pct_above(close, prior_high)
            score = 25.0 * np.minimum(ratio, 2.0) + 50.0 * np.minimum(dist / 5.0, 1.0)
        elif base_model == "sma_crossover":
            fast = cache.series(Indicator("sma", int(p["fast"]), source="close"))
            slow = cache.series(Indicator("sma", int(p["slow"]), source="close"))
            score = 50.0 + 10.0 * _pct_above(fast, slow)
        elif base_model == "bollinger_reversion":
            lower = cache.series(Indicator("bb_lower", int(p["period"]), source="close", std=float(p["std"])))
            below = np.where(lower > 0, (lower - close) / np.where(lower > 0, lower, 1.0) * 100.0, np.nan)
            score = 50.0 + 10.0 * below
        else:  # pragma: no cover - get_base_model already rejected unknown names
            raise KeyError(base_model)
    out: FloatMatrix = np.clip(score, 0.0, 100.0)
    return out


def conviction(base_model: str, params: Mapping[str, Any], source: IndicatorCache | BarMatrix) -> FloatMatrix:
    """The conviction matrix (symbols x days, 0-100) of `base_model` with `params`.

    `source` is the run's IndicatorCache (shares indicator series with the rules) or a BarMatrix.
    Missing inputs give 0.
    """
    cache = source if isinstance(source, IndicatorCache) else IndicatorCache(source)
    aligned = conviction_aligned(base_model, params, cache)
    aligned = np.where(np.isfinite(aligned), aligned, 0.0)
    out: FloatMatrix = cache.restore(aligned, 0.0)
    return out
