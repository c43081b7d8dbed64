"""Technical indicators over symbols x days matrices, vectorised with numpy.

Every function takes matrices shaped (symbols, days) and returns one of the same shape. The value at
day t uses only bars at or before t, and is NaN until the row has enough history.

Missing bars (NaN: a symbol not yet listed, suspended, or delisted) are skipped per row: windows,
offsets and recursions count a symbol's own bars, so a suspension does not erase months of history.
Internally each row is packed to the left ("aligned" layout: the row's valid bars in time order,
then NaN), computed there, and scattered back to the original columns; rows that are already packed
(the usual case: no gaps, or only a tail of missing bars) are used as they are.

Definitions (the loop references in tests/unit/test_indicators.py follow them literally):
- sma(p): mean of the last p values, exact for prices on the paise grid (integer-paise window sums;
  see `_sma`) so that equal means compare equal and a crossover never depends on where the data
  window starts. The Bollinger middle band is this SMA.
- ema(p): seeded at the p-th bar with the SMA of the first p values, then
  ema[t] = a * x[t] + (1 - a) * ema[t-1] with a = 2 / (p + 1).
- rsi(p) (Wilder): changes d[t] = c[t] - c[t-1]; the first average gain/loss is the simple mean of the
  first p gains/losses (valid at the (p+1)-th bar), then avg[t] = (avg[t-1] * (p - 1) + x[t]) / p;
  rsi = 100 * avg_gain / (avg_gain + avg_loss), which is 100 with no losses and 50 on a flat window.
- atr(p) (Wilder): true range tr[t] = max(h - l, |h - c[t-1]|, |l - c[t-1]|) from the second bar;
  seeded with the mean of the first p true ranges, then Wilder-smoothed like rsi.
- roc(p): 100 * (x[t] / x[t-p] - 1) (NaN when x[t-p] is 0).
- highest(p) / lowest(p): max / min of the last p values (the current bar included).
- bollinger(p, k): middle = sma(p); upper/lower = middle +/- k * population std (ddof=0) of the
  last p values.
- avg_volume(p): sma(p) of volume.

Recursions (ema, rsi, atr) are evaluated in blocks of 64 days as a small matrix product, which is
much faster than a day-by-day loop and agrees with it to ~1e-13 relative.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from domain.bars import BarMatrix
from domain.rules import Indicator

FloatMatrix = npt.NDArray[np.float64]
BoolMatrix = npt.NDArray[np.bool_]

_BLOCK = 64


# ---------------------------------------------------------------------------------------------
# layout: pack each row's valid bars to the left and back


class Layout:
    """Maps a matrix between its original columns and the aligned (left-packed) layout.

    `valid` marks the bars that exist. When every row is already packed (valid bars first, then
    only missing ones) the mapping is the identity and costs nothing.
    """

    def __init__(self, valid: BoolMatrix) -> None:
        self.shape: tuple[int, int] = (int(valid.shape[0]), int(valid.shape[1]))
        n_sym, n_days = self.shape
        # packed already <=> no missing bar is followed by a valid one in any row
        self.identity = bool(n_days < 2 or not np.any(valid[:, 1:] & ~valid[:, :-1]))
        self.counts = valid.sum(axis=1)
        self.mask: BoolMatrix = np.arange(n_days)[None, :] < self.counts[:, None]
        if self.identity:
            self._pos: npt.NDArray[np.intp] | None = None
            return
        # a stable sort on "missing" puts each row's valid columns first, in time order
        self._pos = np.argsort(~valid, axis=1, kind="stable")
        rows = np.broadcast_to(np.arange(n_sym)[:, None], self.shape)
        self._orig_flat = (rows * n_days + self._pos)[self.mask]
        self._aligned_flat = np.flatnonzero(self.mask)

    def align(self, x: FloatMatrix) -> FloatMatrix:
        """`x` (original columns) in the aligned layout; slots past a row's bars are NaN."""
        if self.identity:
            return np.where(self.mask, x, np.nan)
        assert self._pos is not None
        out = np.take_along_axis(x, self._pos, axis=1).astype(np.float64)
        out[~self.mask] = np.nan
        return out

    def restore(self, a: npt.NDArray[Any], fill: Any) -> npt.NDArray[Any]:
        """An aligned matrix back in original columns; missing bars get `fill`."""
        if self.identity:
            if np.all(self.mask):
                return a
            return np.where(self.mask, a, fill)
        out = np.full(self.shape, fill, dtype=a.dtype)
        out.ravel()[self._orig_flat] = a.ravel()[self._aligned_flat]
        return out


def _general(kernel: Callable[..., FloatMatrix], *arrays: FloatMatrix, **kw: Any) -> FloatMatrix:
    """Run an aligned-layout kernel on matrices in any layout (validity = all inputs finite)."""
    arrs = [np.atleast_2d(np.asarray(a, dtype=np.float64)) for a in arrays]
    valid = np.ones(arrs[0].shape, dtype=bool)
    for a in arrs:
        valid &= np.isfinite(a)
    layout = Layout(valid)
    out = kernel(*[layout.align(a) for a in arrs], **kw)
    result: FloatMatrix = layout.restore(out, np.nan)
    return result


# ---------------------------------------------------------------------------------------------
# kernels on the aligned layout (valid prefix, NaN tail) -- any-NaN window -> NaN


_PAISE = 100.0
_GRID_TOL = 1e-6  # of a paisa: a price read from "1234.55" is within ~1e-10 paise of the grid


def _on_paise_grid(x: FloatMatrix) -> tuple[npt.NDArray[np.bool_], FloatMatrix]:
    """Per row: every finite value is a whole number of paise (prices on NSE's tick grid, volumes)
    small enough that its paise and their window sums are exact in int64 and float64; and `x` in
    whole paise (rounded; NaN stays NaN)."""
    scaled = x * _PAISE
    paise = np.rint(scaled)
    fin = np.isfinite(scaled)
    near = np.abs(scaled - paise) <= _GRID_TOL
    small = np.abs(scaled) < 2.0 ** 43
    ok: npt.NDArray[np.bool_] = np.all(~fin | (near & small), axis=1)
    return ok, paise


class WindowSums(NamedTuple):
    """What every SMA of one matrix starts from: the count of valid values before each column, which rows
    are on the paise grid, and those rows' integer prefix sums of paise (see `_sma`)."""

    valid: npt.NDArray[np.bool_]
    counts: npt.NDArray[np.int64]  # (symbols, days + 1): valid values before each column
    grid: npt.NDArray[np.bool_]  # per row: on the paise grid
    paise: npt.NDArray[np.int64] | None  # (grid rows, days + 1): paise before each column


def window_sums(x: FloatMatrix) -> WindowSums:
    n_sym, n = x.shape
    valid = np.isfinite(x)
    cnt = np.zeros((n_sym, n + 1), dtype=np.int64)
    np.cumsum(valid, axis=1, out=cnt[:, 1:])
    grid, whole = _on_paise_grid(x)
    cs = None
    if grid.any():
        if grid.all():  # the usual case: no row copies
            paise = np.where(valid, whole, 0.0).astype(np.int64)
        else:
            rows = np.flatnonzero(grid)
            paise = np.where(valid[rows], whole[rows], 0.0).astype(np.int64)
        cs = np.zeros((paise.shape[0], n + 1), dtype=np.int64)
        np.cumsum(paise, axis=1, out=cs[:, 1:])
    return WindowSums(valid, cnt, grid, cs)


def _sma(x: FloatMatrix, period: int, sums: WindowSums | None = None) -> FloatMatrix:
    """Mean of the last `period` values, computed so that the result depends only on the window's
    values (never on where the data starts) and exact ties stay ties:

    - rows on the paise grid (every NSE price, every volume): the window sum is an exact integer
      number of paise (int64 prefix sums), and the mean is that integer divided by 100 x period in
      one correctly rounded float division. Two windows (of any lengths) whose exact means are equal
      give the same float, and unequal exact means never swap order -- so ``sma(10) crosses_above
      sma(30)`` fires on the same day whichever date the data window starts on;
    - other rows (prices adjusted by a corporate-action ratio): each window is summed on its own
      (numpy's pairwise sum over the window's values), which is still window-independent.

    `sums`: `window_sums(x)`, shared by every period over the same `x` (else computed here).
    """
    n = x.shape[1]
    out = np.full(x.shape, np.nan)
    if period > n:
        return out
    if sums is None:
        sums = window_sums(x)
    valid, cnt, grid, cs = sums
    full = (cnt[:, period:] - cnt[:, :-period]) == period
    if cs is not None:
        wsum = cs[:, period:] - cs[:, :-period]
        if grid.all():
            window = out[:, period - 1:]
            np.divide(wsum, _PAISE * period, out=window)
            window[~full] = np.nan
        else:
            rows = np.flatnonzero(grid)
            out[rows, period - 1:] = np.where(full[rows], wsum / (_PAISE * period), np.nan)
    if not grid.all():
        rows = np.flatnonzero(~grid)
        windows = np.lib.stride_tricks.sliding_window_view(np.where(valid[rows], x[rows], 0.0), period, axis=1)
        step = max(1, 4_000_000 // max(1, rows.size * period))
        for lo in range(0, n - period + 1, step):
            hi = min(n - period + 1, lo + step)
            part = windows[:, lo:hi].sum(axis=-1)
            out[rows, period - 1 + lo:period - 1 + hi] = np.where(full[rows, lo:hi], part / period, np.nan)
    return out


def _recurse(x: FloatMatrix, seed: npt.NDArray[np.float64], start: int, a: float, b: float) -> FloatMatrix:
    """y[start] = seed, y[t] = b * y[t-1] + a * x[t] for t > start, along axis 1 (NaN before start).

    `x` must be finite from start + 1 on (callers zero-fill the NaN tail and mask the result)."""
    n_sym, n = x.shape
    out = np.full((n, n_sym), np.nan)  # days-major so each block is a contiguous matrix product
    if start >= n:
        return out.T
    xt = np.ascontiguousarray(x.T)
    out[start] = seed
    k = np.arange(_BLOCK)
    lag = k[:, None] - k[None, :]
    powers = b ** np.arange(_BLOCK + 1, dtype=np.float64)
    weights = np.where(lag >= 0, a * powers[np.clip(lag, 0, _BLOCK)], 0.0)
    prev = out[start].copy()
    t0 = start + 1
    while t0 < n:
        length = min(_BLOCK, n - t0)
        block = weights[:length, :length] @ xt[t0:t0 + length]
        block += powers[1:length + 1, None] * prev[None, :]
        out[t0:t0 + length] = block
        prev = block[-1]
        t0 += length
    return out.T


def _ema(x: FloatMatrix, period: int) -> FloatMatrix:
    n = x.shape[1]
    if period > n:
        return np.full(x.shape, np.nan)
    valid = np.isfinite(x)
    seed = x[:, :period].mean(axis=1)  # NaN when the row has fewer than `period` bars
    a = 2.0 / (period + 1.0)
    out = _recurse(np.where(valid, x, 0.0), seed, period - 1, a, 1.0 - a)
    out[~valid] = np.nan
    return out


def _wilder(x: FloatMatrix, period: int, valid: BoolMatrix) -> FloatMatrix:
    """Wilder smoothing of `x` whose first meaningful value is at column 1: seeded at column
    `period` with the mean of x[1..period]."""
    n = x.shape[1]
    if period + 1 > n:
        return np.full(x.shape, np.nan)
    seed = x[:, 1:period + 1].mean(axis=1)
    out = _recurse(np.where(valid, x, 0.0), seed, period, 1.0 / period, (period - 1.0) / period)
    out[~valid] = np.nan
    return out


def _rsi(close: FloatMatrix, period: int) -> FloatMatrix:
    diff = np.full(close.shape, np.nan)
    diff[:, 1:] = close[:, 1:] - close[:, :-1]
    valid = np.isfinite(close)
    gain = np.where(diff > 0, diff, 0.0)
    loss = np.where(diff < 0, -diff, 0.0)
    gain[~np.isfinite(diff)] = np.nan
    loss[~np.isfinite(diff)] = np.nan
    avg_gain = _wilder(gain, period, valid)
    avg_loss = _wilder(loss, period, valid)
    denom = avg_gain + avg_loss
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(denom > 0, 100.0 * avg_gain / np.where(denom > 0, denom, 1.0), 50.0)
    out[~np.isfinite(denom)] = np.nan
    return out


def _true_range(high: FloatMatrix, low: FloatMatrix, close: FloatMatrix) -> FloatMatrix:
    tr = np.full(close.shape, np.nan)
    prev = close[:, :-1]
    h = high[:, 1:]
    lo = low[:, 1:]
    tr[:, 1:] = np.maximum(h - lo, np.maximum(np.abs(h - prev), np.abs(lo - prev)))
    return tr


def _atr(high: FloatMatrix, low: FloatMatrix, close: FloatMatrix, period: int) -> FloatMatrix:
    valid = np.isfinite(close) & np.isfinite(high) & np.isfinite(low)
    return _wilder(_true_range(high, low, close), period, valid)


def _roc(x: FloatMatrix, period: int) -> FloatMatrix:
    out = np.full(x.shape, np.nan)
    if period >= x.shape[1]:
        return out
    past = x[:, :-period]
    with np.errstate(invalid="ignore", divide="ignore"):
        out[:, period:] = np.where(past != 0, 100.0 * (x[:, period:] / np.where(past != 0, past, 1.0) - 1.0),
                                   np.nan)
    out[:, period:][~np.isfinite(past)] = np.nan
    return out


def _rolling_extreme(x: FloatMatrix, period: int, fn: Callable[..., FloatMatrix]) -> FloatMatrix:
    """max/min over the last `period` values by doubling windows: O(n log p), exact."""
    n = x.shape[1]
    out = np.full(x.shape, np.nan)
    if period > n:
        return out
    m = x.copy()  # m[t] = extreme over the window of width w ending at t
    w = 1
    while 2 * w <= period:
        nxt = np.full(x.shape, np.nan)
        nxt[:, w:] = fn(m[:, w:], m[:, :-w])
        m = nxt
        w *= 2
    # [t-p+1, t] = [t-w+1, t] U [t-p+1, t-p+w]
    shift = period - w
    out[:, period - 1:] = fn(m[:, period - 1:], m[:, w - 1:n - shift])
    return out


def _rolling_std(x: FloatMatrix, period: int) -> FloatMatrix:
    """Population std of the last `period` values; chunked so temporaries stay under ~4M values."""
    n_sym, n = x.shape
    out = np.full(x.shape, np.nan)
    if period > n:
        return out
    windows = np.lib.stride_tricks.sliding_window_view(x, period, axis=1)  # (sym, n-p+1, p) view
    step = max(1, 4_000_000 // max(1, n_sym * period))
    for lo in range(0, n - period + 1, step):
        hi = min(n - period + 1, lo + step)
        out[:, period - 1 + lo:period - 1 + hi] = windows[:, lo:hi].std(axis=-1)
    return out


def _bollinger(x: FloatMatrix, period: int, k: float) -> tuple[FloatMatrix, FloatMatrix, FloatMatrix]:
    mid = _sma(x, period)
    dev = _rolling_std(x, period)
    return mid + k * dev, mid, mid - k * dev


# ---------------------------------------------------------------------------------------------
# public functions: any layout (leading, interior or trailing NaN per row)


def sma(x: FloatMatrix, period: int) -> FloatMatrix:
    """Simple moving average of the last `period` values of each row."""
    return _general(_sma, x, period=period)


def ema(x: FloatMatrix, period: int) -> FloatMatrix:
    """Exponential moving average, a = 2 / (period + 1), seeded with the SMA of the first `period`."""
    return _general(_ema, x, period=period)


def rsi(close: FloatMatrix, period: int) -> FloatMatrix:
    """Wilder's RSI (0-100); first value at the row's (period + 1)-th bar."""
    return _general(_rsi, close, period=period)


def atr(high: FloatMatrix, low: FloatMatrix, close: FloatMatrix, period: int) -> FloatMatrix:
    """Wilder's average true range; first value at the row's (period + 1)-th bar."""
    return _general(_atr, high, low, close, period=period)


def roc(x: FloatMatrix, period: int) -> FloatMatrix:
    """Rate of change in percent over `period` bars."""
    return _general(_roc, x, period=period)


def highest(x: FloatMatrix, period: int) -> FloatMatrix:
    """Highest value of the last `period` bars (current bar included)."""
    return _general(_rolling_extreme, x, period=period, fn=np.maximum)


def lowest(x: FloatMatrix, period: int) -> FloatMatrix:
    """Lowest value of the last `period` bars (current bar included)."""
    return _general(_rolling_extreme, x, period=period, fn=np.minimum)


def bollinger(x: FloatMatrix, period: int, k: float = 2.0) -> tuple[FloatMatrix, FloatMatrix, FloatMatrix]:
    """(upper, middle, lower) Bollinger bands: SMA(period) +/- k x population std over `period`."""
    upper = _general(lambda a: _bollinger(a, period, k)[0], x)
    middle = sma(x, period)
    lower = _general(lambda a: _bollinger(a, period, k)[2], x)
    return upper, middle, lower


def avg_volume(volume: FloatMatrix, period: int) -> FloatMatrix:
    """Average volume: the SMA of volume over `period` bars."""
    return sma(volume, period)


def shift(x: npt.NDArray[Any], offset: int, fill: Any = np.nan) -> npt.NDArray[Any]:
    """The value `offset` bars earlier along axis 1 (`fill` for the first `offset` columns)."""
    if offset == 0:
        return x
    out = np.full(x.shape, fill, dtype=x.dtype)
    if offset < x.shape[1]:
        out[:, offset:] = x[:, :-offset]
    return out


# ---------------------------------------------------------------------------------------------
# the per-run cache the rule evaluator and conviction read


class IndicatorCache:
    """Indicator series of one BarMatrix, each distinct (name, period, source, std) computed once.

    Series are kept in the aligned layout (see `Layout`); `restore` maps results back to the bar
    matrix's columns. A bar is valid when open, high, low and close are all finite; volume on
    missing bars is treated as missing, not zero.
    """

    def __init__(self, bars: BarMatrix) -> None:
        self.bars = bars
        valid = (np.isfinite(bars.close) & np.isfinite(bars.open)
                 & np.isfinite(bars.high) & np.isfinite(bars.low))
        self.layout = Layout(valid)
        self._fields: dict[str, FloatMatrix] = {}
        self._series: dict[tuple[Any, ...], FloatMatrix] = {}
        self._sums: dict[str, WindowSums] = {}  # per field, shared by its SMAs
        self.computed = 0  # distinct indicator series computed (tests check the cache works)

    @property
    def valid(self) -> BoolMatrix:
        """Aligned-layout mask of existing bars."""
        return self.layout.mask

    def field(self, name: str) -> FloatMatrix:
        """A price field (open, high, low, close, volume) in the aligned layout."""
        arr = self._fields.get(name)
        if arr is None:
            arr = self.layout.align(self.bars.field(name))
            self._fields[name] = arr
        return arr

    def series(self, ind: Indicator) -> FloatMatrix:
        """The indicator's values in the aligned layout, `offset` applied (bars, not calendar days)."""
        return shift(self.base(ind), ind.offset)

    def base(self, ind: Indicator) -> FloatMatrix:
        """The indicator without its offset, computed at most once per run."""
        key = ind.key()
        cached = self._series.get(key)
        if cached is None:
            cached = self._compute(ind)
            self._series[key] = cached
            self.computed += 1
        return cached

    def _compute(self, ind: Indicator) -> FloatMatrix:
        name = ind.name
        p = int(ind.period or 1)
        if name in ("open", "high", "low", "close", "volume"):
            return self.field(name)
        src = self.field(ind.source) if ind.source else None
        if name == "sma":
            assert src is not None and ind.source is not None
            return _sma(src, p, self._window_sums(ind.source))
        if name == "ema":
            assert src is not None
            return _ema(src, p)
        if name == "rsi":
            return _rsi(self.field("close"), p)
        if name == "atr":
            return _atr(self.field("high"), self.field("low"), self.field("close"), p)
        if name == "roc":
            assert src is not None
            return _roc(src, p)
        if name == "highest":
            assert src is not None
            return _rolling_extreme(src, p, np.maximum)
        if name == "lowest":
            assert src is not None
            return _rolling_extreme(src, p, np.minimum)
        if name in ("bb_upper", "bb_lower"):
            assert src is not None
            k = float(ind.std if ind.std is not None else 2.0)
            mid = self.base(Indicator("sma", p, 0, ind.source))
            dev = self._std(ind.source or "close", p)
            return mid + k * dev if name == "bb_upper" else mid - k * dev
        if name == "avg_volume":
            return _sma(self.field("volume"), p, self._window_sums("volume"))
        raise KeyError(f"unknown indicator {name!r}")

    def _window_sums(self, source: str) -> WindowSums:
        sums = self._sums.get(source)
        if sums is None:
            sums = window_sums(self.field(source))
            self._sums[source] = sums
        return sums

    def _std(self, source: str, period: int) -> FloatMatrix:
        key = ("_std", period, source, None)
        cached = self._series.get(key)
        if cached is None:
            cached = _rolling_std(self.field(source), period)
            self._series[key] = cached
        return cached

    def restore(self, aligned: npt.NDArray[Any], fill: Any) -> npt.NDArray[Any]:
        """An aligned-layout result in the bar matrix's columns (missing bars get `fill`)."""
        return self.layout.restore(aligned, fill)
