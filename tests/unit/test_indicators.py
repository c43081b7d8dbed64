"""Indicators against straightforward per-row loop references (written literally from the definitions)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from domain import indicators as ind
from domain.bars import BarMatrix
from domain.indicators import IndicatorCache, Layout
from domain.rules import Indicator

RTOL = 1e-10
ATOL = 1e-8

# ------------------------------------------------------------------ loop references (one row, valid bars only)


def ref_sma(x: list[float], p: int) -> list[float]:
    return [math.nan if t < p - 1 else sum(x[t - p + 1:t + 1]) / p for t in range(len(x))]


def ref_ema(x: list[float], p: int) -> list[float]:
    out = [math.nan] * len(x)
    if len(x) < p:
        return out
    a = 2.0 / (p + 1)
    out[p - 1] = sum(x[:p]) / p
    for t in range(p, len(x)):
        out[t] = a * x[t] + (1 - a) * out[t - 1]
    return out


def _wilder(values: list[float], p: int) -> list[float]:
    """values[0] is unused (no change on the first bar); seeded at index p."""
    out = [math.nan] * len(values)
    if len(values) < p + 1:
        return out
    out[p] = sum(values[1:p + 1]) / p
    for t in range(p + 1, len(values)):
        out[t] = (out[t - 1] * (p - 1) + values[t]) / p
    return out


def ref_rsi(c: list[float], p: int) -> list[float]:
    gains = [0.0] + [max(c[t] - c[t - 1], 0.0) for t in range(1, len(c))]
    losses = [0.0] + [max(c[t - 1] - c[t], 0.0) for t in range(1, len(c))]
    ag, al = _wilder(gains, p), _wilder(losses, p)
    out = []
    for g, lo in zip(ag, al, strict=True):
        if math.isnan(g):
            out.append(math.nan)
        elif g + lo == 0:
            out.append(50.0)
        else:
            out.append(100.0 * g / (g + lo))
    return out


def ref_atr(h: list[float], lo: list[float], c: list[float], p: int) -> list[float]:
    tr = [0.0] + [max(h[t] - lo[t], abs(h[t] - c[t - 1]), abs(lo[t] - c[t - 1])) for t in range(1, len(c))]
    return _wilder(tr, p)


def ref_roc(x: list[float], p: int) -> list[float]:
    return [math.nan if t < p else 100.0 * (x[t] / x[t - p] - 1.0) for t in range(len(x))]


def ref_highest(x: list[float], p: int) -> list[float]:
    return [math.nan if t < p - 1 else max(x[t - p + 1:t + 1]) for t in range(len(x))]


def ref_lowest(x: list[float], p: int) -> list[float]:
    return [math.nan if t < p - 1 else min(x[t - p + 1:t + 1]) for t in range(len(x))]


def ref_std(x: list[float], p: int) -> list[float]:
    out = []
    for t in range(len(x)):
        if t < p - 1:
            out.append(math.nan)
            continue
        w = x[t - p + 1:t + 1]
        m = sum(w) / p
        out.append(math.sqrt(sum((v - m) ** 2 for v in w) / p))
    return out


def per_row(ref, *mats: np.ndarray, **kw) -> np.ndarray:
    """Apply a one-row reference to each row's valid bars and scatter back (NaN on missing bars)."""
    out = np.full(mats[0].shape, np.nan)
    for i in range(mats[0].shape[0]):
        valid = np.all([np.isfinite(m[i]) for m in mats], axis=0)
        cols = np.flatnonzero(valid)
        vals = ref(*[m[i, cols].tolist() for m in mats], **kw)
        out[i, cols] = vals
    return out


def walk(rows: int = 5, days: int = 260, seed: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, (rows, days)), axis=1))
    high = close * (1 + np.abs(rng.normal(0, 0.01, (rows, days))))
    low = close * (1 - np.abs(rng.normal(0, 0.01, (rows, days))))
    volume = rng.integers(1000, 5000, (rows, days)).astype(float)
    return high, low, close, volume


def with_gaps(m: np.ndarray) -> np.ndarray:
    """Row 1 listed late, row 2 suspended mid-way, row 3 delisted early, row 4 a single day missing."""
    m = m.copy()
    m[1, :40] = np.nan
    m[2, 100:110] = np.nan
    m[3, 200:] = np.nan
    m[4, 150] = np.nan
    return m


CASES = [
    ("sma", lambda x: ind.sma(x, 20), lambda x: ref_sma(x, 20)),
    ("sma_long", lambda x: ind.sma(x, 200), lambda x: ref_sma(x, 200)),
    ("ema", lambda x: ind.ema(x, 12), lambda x: ref_ema(x, 12)),
    ("ema_long", lambda x: ind.ema(x, 100), lambda x: ref_ema(x, 100)),
    ("rsi", lambda x: ind.rsi(x, 14), lambda x: ref_rsi(x, 14)),
    ("rsi_2", lambda x: ind.rsi(x, 2), lambda x: ref_rsi(x, 2)),
    ("roc", lambda x: ind.roc(x, 10), lambda x: ref_roc(x, 10)),
    ("highest", lambda x: ind.highest(x, 55), lambda x: ref_highest(x, 55)),
    ("highest_pow2", lambda x: ind.highest(x, 16), lambda x: ref_highest(x, 16)),
    ("lowest", lambda x: ind.lowest(x, 20), lambda x: ref_lowest(x, 20)),
    ("lowest_1", lambda x: ind.lowest(x, 1), lambda x: ref_lowest(x, 1)),
]


@pytest.mark.parametrize(("name", "fast", "ref"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("gaps", [False, True], ids=["dense", "gaps"])
def test_indicator_vs_loop_reference_matches(name, fast, ref, gaps) -> None:
    _, _, close, _ = walk()
    x = with_gaps(close) if gaps else close
    got = fast(x)
    want = per_row(ref, x)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, equal_nan=True)
    assert np.array_equal(np.isnan(got), np.isnan(want))


@pytest.mark.parametrize("gaps", [False, True], ids=["dense", "gaps"])
def test_atr_vs_loop_reference_matches(gaps) -> None:
    high, low, close, _ = walk()
    if gaps:
        high, low, close = with_gaps(high), with_gaps(low), with_gaps(close)
    got = ind.atr(high, low, close, 14)
    want = per_row(lambda h, lo, c: ref_atr(h, lo, c, 14), high, low, close)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, equal_nan=True)


@pytest.mark.parametrize("gaps", [False, True], ids=["dense", "gaps"])
def test_bollinger_vs_loop_reference_matches(gaps) -> None:
    _, _, close, _ = walk()
    x = with_gaps(close) if gaps else close
    upper, mid, lower = ind.bollinger(x, 20, 2.5)
    sd = per_row(lambda v: ref_std(v, 20), x)
    m = per_row(lambda v: ref_sma(v, 20), x)
    np.testing.assert_allclose(mid, m, rtol=RTOL, atol=ATOL, equal_nan=True)
    np.testing.assert_allclose(upper, m + 2.5 * sd, rtol=RTOL, atol=ATOL, equal_nan=True)
    np.testing.assert_allclose(lower, m - 2.5 * sd, rtol=RTOL, atol=ATOL, equal_nan=True)


def test_avg_volume_is_sma_of_volume() -> None:
    *_, volume = walk()
    np.testing.assert_allclose(ind.avg_volume(volume, 20), per_row(lambda v: ref_sma(v, 20), volume),
                               rtol=RTOL, equal_nan=True)


def test_sma_with_leading_nan_row_starts_after_listing() -> None:
    x = np.array([[np.nan, np.nan, 1.0, 2.0, 3.0, 4.0]])
    got = ind.sma(x, 3)
    np.testing.assert_allclose(got, [[np.nan, np.nan, np.nan, np.nan, 2.0, 3.0]], equal_nan=True)


def test_ema_seed_is_sma_of_first_period_values() -> None:
    x = np.array([[1.0, 2.0, 3.0, 4.0]])
    got = ind.ema(x, 3)
    assert np.isnan(got[0, 1])
    assert got[0, 2] == pytest.approx(2.0)
    assert got[0, 3] == pytest.approx(0.5 * 4.0 + 0.5 * 2.0)


def test_rsi_flat_prices_is_50_and_rising_prices_is_100() -> None:
    flat = np.full((1, 20), 10.0)
    rising = np.arange(20, dtype=float)[None, :] + 1
    assert ind.rsi(flat, 14)[0, -1] == 50.0
    assert ind.rsi(rising, 14)[0, -1] == 100.0
    assert np.isnan(ind.rsi(rising, 14)[0, 13]) and not np.isnan(ind.rsi(rising, 14)[0, 14])


def test_period_longer_than_history_is_all_nan() -> None:
    x = np.arange(10, dtype=float)[None, :]
    for out in (ind.sma(x, 11), ind.ema(x, 11), ind.rsi(x, 10), ind.highest(x, 11), ind.roc(x, 10)):
        assert np.isnan(out).all()


def test_layout_round_trip_restores_original_columns() -> None:
    _, _, close, _ = walk()
    x = with_gaps(close)
    layout = Layout(np.isfinite(x))
    assert not layout.identity
    back = layout.restore(layout.align(x), np.nan)
    np.testing.assert_array_equal(back, x)


def test_layout_without_interior_gaps_is_identity() -> None:
    x = np.ones((2, 5))
    x[1, 3:] = np.nan  # delisted tail only
    assert Layout(np.isfinite(x)).identity


def _bars(close: np.ndarray) -> BarMatrix:
    n, d = close.shape
    dates = np.arange(np.datetime64("2021-01-01"), np.datetime64("2021-01-01") + d)
    return BarMatrix(symbols=tuple(f"S{i}" for i in range(n)), dates=dates, open=close, high=close * 1.01,
                     low=close * 0.99, close=close, volume=np.ones_like(close))


def test_cache_computes_each_distinct_series_once() -> None:
    _, _, close, _ = walk()
    cache = IndicatorCache(_bars(close))
    a = cache.series(Indicator("sma", 20, 0, "close"))
    b = cache.series(Indicator("sma", 20, 3, "close"))  # same series, other offset
    cache.series(Indicator("sma", 20, 0, "close"))
    assert cache.computed == 1
    np.testing.assert_array_equal(b[:, 3:], a[:, :-3])
    assert np.isnan(b[:, :3]).all()


def test_cache_series_match_public_functions_with_gaps() -> None:
    _, _, close, _ = walk()
    close = with_gaps(close)
    cache = IndicatorCache(_bars(close))
    got = cache.restore(cache.series(Indicator("rsi", 14)), np.nan)
    np.testing.assert_allclose(got, ind.rsi(close, 14), rtol=RTOL, equal_nan=True)
    got = cache.restore(cache.series(Indicator("bb_lower", 20, 0, "close", 2.0)), np.nan)
    np.testing.assert_allclose(got, ind.bollinger(close, 20, 2.0)[2], rtol=RTOL, equal_nan=True)
