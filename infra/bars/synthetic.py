"""Deterministic synthetic daily history for a universe, so the product works before real data exists.

Model (daily log return of stock i on day t)::

    r = drift_i + beta_i * M_t + gamma_i * S_sector(i),t + e_i,t + jump_i,t

with a market factor M, one factor per sector S, idiosyncratic noise e (Student-t with 4 degrees of
freedom, scaled to unit variance: fat tails), and rare gap events (results days). The market and
sector volatility follow a persistent monthly regime, so calm and turbulent periods alternate. Each
stock's total volatility is drawn between 1.3 % and 2.3 % a day. Part of the return happens
overnight, which creates gaps at the open. High/low extend beyond the open/close body by a
half-normal wick. Volume is lognormal around the stock's turnover divided by its price, higher on
large-move days. Prices are rounded to the 0.05 tick.

Determinism: every random number is a pure function of (seed, entity, date, stream): a
counter-based hash (splitmix64), not a running generator stream. The only state carried from one
day to the next is the stored previous close. Hence generating 2015..2020 and then extending by N
days equals generating 2015..2020+N in one go, extending by 5 and 5 equals extending by 10, and the
same seed gives byte-identical bars (on the same numpy build).

Index series: each built-in index whose members are all generated (``NIFTY50``, ``NIFTY100``) is a
cap-weighted sum of member closes with fixed per-stock weights, so it too depends only on the day.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt

from domain.calendar import TradingCalendar, nse_calendar
from infra.bars.frames import DateLike, WriteResult, as_date
from infra.bars.store import BarStore
from infra.bars.universes import Universe, list_universes

__all__ = ["GenerateResult", "Progress", "extend", "generate"]

Progress = Callable[[str, int, int], None]
F64 = npt.NDArray[np.float64]
U64 = npt.NDArray[np.uint64]

TICK = 0.05
MIN_PRICE = 1.0
MARKET_VOL = 0.009
SECTOR_VOL = 0.006
GAP_PROBABILITY = 0.015
INDEX_BASE = {"NIFTY50": 8300.0, "NIFTY100": 8500.0}
DEFAULT_SEED = 42
_TURNOVER_MEDIAN = 1.5e9  # INR per day; large caps trade ~50-500 crore

# stream numbers: one independent uniform per (entity, day, stream)
_S_EPS_A, _S_EPS_B, _S_EPS_CHI_A, _S_EPS_CHI_B = 1, 2, 3, 4
_S_JUMP_HIT, _S_JUMP_SIZE = 5, 6
_S_WICK_A, _S_WICK_B, _S_VOL_A, _S_VOL_B = 7, 8, 9, 10
_S_FACTOR_A, _S_FACTOR_B, _S_FACTOR_CHI_A, _S_FACTOR_CHI_B = 11, 12, 13, 14
_S_REGIME_A, _S_REGIME_B = 15, 16

_MASK64 = (1 << 64) - 1


@dataclass(frozen=True)
class GenerateResult:
    symbols: tuple[str, ...]
    days: int
    first: date | None
    last: date | None
    write: WriteResult


def generate(
    store: BarStore,
    universe: Universe,
    start: DateLike,
    end: DateLike,
    seed: int = DEFAULT_SEED,
    calendar: TradingCalendar | None = None,
    *,
    progress: Progress | None = None,
) -> GenerateResult:
    """Write synthetic bars for every member (and covered index) on each trading day start..end.

    A stock continues from its last stored close before `start` when the store has one, else it
    starts at its own seed-derived price. So generating two adjacent ranges equals generating
    their union, and regenerating a stored range with the same seed changes nothing (the write is
    an idempotent merge).
    """
    cal = calendar or nse_calendar()
    first, last = as_date(start), as_date(end)
    days = cal.trading_days_array(first, last).astype(np.int64)
    model = _Model(universe, seed)
    if progress:
        progress("simulate", 0, 2)
    bars = model.simulate(days, prev_close=model.previous_closes(store, before=first))
    if progress:
        progress("write", 1, 2)
    result = store.write(_rows(model, days, bars)) if days.size else WriteResult()
    store.set_meta("synthetic", {"seed": seed, "universe": universe.name})
    store.mark_real(model.symbols, real=False)
    if progress:
        progress("done", 2, 2)
    return GenerateResult(
        symbols=model.symbols + tuple(i.symbol for i in model.indices),
        days=int(days.size),
        first=_from_day(int(days[0])) if days.size else None,
        last=_from_day(int(days[-1])) if days.size else None,
        write=result,
    )


def extend(
    store: BarStore,
    universe: Universe,
    n_days: int,
    seed: int | None = None,
    calendar: TradingCalendar | None = None,
) -> list[date]:
    """Append the next `n_days` trading days after the store's last date; returns those days.

    Each stock continues from its last stored close (a stock with no bars starts at its seed
    price). `seed` defaults to the one `generate` recorded in the store, else 42.
    """
    if n_days < 0:
        raise ValueError("n_days must be >= 0")
    last = store.last_date()
    if last is None:
        raise ValueError("The bar store is empty: run generate() first (tradertape data generate)")
    if n_days == 0:
        return []
    cal = calendar or nse_calendar()
    if seed is None:
        seed = int((store.meta("synthetic") or {}).get("seed", DEFAULT_SEED))
    new_days: list[date] = []
    d = last
    for _ in range(n_days):
        d = cal.next_trading_day(d)
        new_days.append(d)
    days = np.array(new_days, dtype="datetime64[D]").astype(np.int64)
    model = _Model(universe, seed)
    prev = model.previous_closes(store, before=new_days[0])
    store.append_days(_rows(model, days, model.simulate(days, prev_close=prev)))
    store.mark_real(model.symbols, real=False)  # their history is now partly synthetic
    return new_days


# -------------------------------------------------------------------- the model


@dataclass(frozen=True)
class _Index:
    symbol: str
    members: npt.NDArray[np.intp]  # rows of the model's symbols
    # index points per rupee of member close: the index is at its base level when every member
    # sits at its start price
    weight: F64


@dataclass(frozen=True)
class _Bars:
    open: F64
    high: F64
    low: F64
    close: F64
    volume: F64
    index_open: F64
    index_high: F64
    index_low: F64
    index_close: F64


class _Model:
    """Per-stock parameters and the day-by-day simulation for one universe and seed."""

    def __init__(self, universe: Universe, seed: int) -> None:
        self.seed = seed
        self.symbols = universe.symbols
        sectors = universe.sectors
        self.sector_names = tuple(sorted(set(sectors)))
        self.sector_of = np.array([self.sector_names.index(s) for s in sectors], dtype=np.intp)
        self.keys = np.array([_entity_key(seed, "stock", s) for s in self.symbols], dtype=np.uint64)
        self.sector_keys = np.array([_entity_key(seed, "sector", s) for s in self.sector_names], dtype=np.uint64)
        self.market_key = np.array([_entity_key(seed, "market", "")], dtype=np.uint64)

        p = _static_uniforms(self.keys, 8)  # (n, 8) per-stock parameter draws
        self.start_price = _round_tick(np.exp(np.log(50.0) + p[:, 0] * (np.log(5000.0) - np.log(50.0))))
        self.beta = 0.7 + 0.6 * p[:, 1]
        self.gamma = 0.6 + 0.6 * p[:, 2]
        self.total_vol = 0.013 + 0.010 * p[:, 3]
        self.drift = (0.02 + 0.12 * p[:, 4]) / 252.0 - 0.5 * self.total_vol**2
        self.turnover = _TURNOVER_MEDIAN * np.exp(1.2 * (p[:, 5] - 0.5) * 2.0)
        self.cap_weight = np.exp(1.6 * (p[:, 6] - 0.5) * 2.0)
        jump_var = GAP_PROBABILITY * (0.04**2 + 0.02**2 / 3.0)  # E[J^2] of a 2-6 % jump
        factor_var = (self.beta * MARKET_VOL) ** 2 + (self.gamma * SECTOR_VOL) ** 2
        self.idio_vol = np.sqrt(np.maximum(self.total_vol**2 - factor_var - jump_var, 0.005**2))
        self.indices = self._indices()

    def previous_closes(self, store: BarStore, before: date) -> F64:
        """Each stock's last stored raw close before `before`, or its start price if it has none."""
        stored = store.last_bars(self.symbols, before=before)
        return np.array(
            [stored[s]["close"] if s in stored else self.start_price[i] for i, s in enumerate(self.symbols)],
            dtype=np.float64,
        )

    def _indices(self) -> tuple[_Index, ...]:
        """Every built-in index whose members are all in this model."""
        row = {s: i for i, s in enumerate(self.symbols)}
        out: list[_Index] = []
        for candidate in list_universes():
            if not candidate.members or any(s not in row for s in candidate.symbols):
                continue
            members = np.array([row[s] for s in candidate.symbols], dtype=np.intp)
            shares = self.cap_weight[members] / self.start_price[members]
            divisor = float(np.sum(shares * self.start_price[members])) / INDEX_BASE.get(
                candidate.index_symbol, 10000.0
            )
            out.append(_Index(candidate.index_symbol, members, shares / divisor))
        return tuple(out)

    def simulate(self, days: npt.NDArray[np.int64], prev_close: F64) -> _Bars:
        n, m = len(self.symbols), days.size
        regime = self._regime(days)  # (m,)
        market = MARKET_VOL * regime * _fat_normal(self.market_key, days, _S_FACTOR_A)[0]
        sector = SECTOR_VOL * regime * _fat_normal(self.sector_keys, days, _S_FACTOR_A)[self.sector_of]
        eps = self.idio_vol[:, None] * _fat_normal(self.keys, days, _S_EPS_A)
        hit = _uniforms(self.keys, days, _S_JUMP_HIT) < GAP_PROBABILITY
        size = _uniforms(self.keys, days, _S_JUMP_SIZE)
        jump = np.where(hit, np.where(size < 0.5, -1.0, 1.0) * (0.02 + 0.08 * np.abs(size - 0.5)), 0.0)
        common = self.beta[:, None] * market[None, :] + self.gamma[:, None] * sector
        ret = np.clip(self.drift[:, None] + common + eps + jump, -0.18, 0.18)
        overnight = 0.35 * common + 0.2 * eps + jump
        growth = np.exp(ret)
        gap = np.exp(overnight)

        # the one sequential step: today's close builds on yesterday's *rounded* close, exactly as
        # it was stored, so a later extend() continues the same path
        close = np.empty((n, m), dtype=np.float64)
        prev = np.asarray(prev_close, dtype=np.float64).copy()
        for t in range(m):
            prev = np.maximum(_round_tick(prev * growth[:, t]), MIN_PRICE)
            close[:, t] = prev
        prev_close_matrix = np.concatenate([np.asarray(prev_close, dtype=np.float64)[:, None], close[:, :-1]], axis=1)
        open_ = np.maximum(_round_tick(prev_close_matrix * gap), MIN_PRICE)

        wick_hi, wick_lo = _normal_pair(self.keys, days, _S_WICK_A, _S_WICK_B)
        body_hi = np.maximum(open_, close)
        body_lo = np.minimum(open_, close)
        wick_scale = 0.55 * self.total_vol[:, None] * regime[None, :]
        high = np.maximum(np.ceil(body_hi * np.exp(np.abs(wick_hi) * wick_scale) / TICK) * TICK, body_hi)
        low = np.minimum(np.floor(body_lo * np.exp(-np.abs(wick_lo) * wick_scale) / TICK) * TICK, body_lo)
        high = np.round(high, 2).astype(np.float64)
        low = np.maximum(np.round(low, 2), TICK).astype(np.float64)

        vol_noise, _ = _normal_pair(self.keys, days, _S_VOL_A, _S_VOL_B)
        surprise = np.abs(ret - self.drift[:, None]) / self.total_vol[:, None]
        log_volume = (
            np.log(self.turnover[:, None] / prev_close_matrix)
            + 0.35 * (surprise - 0.8)
            + 0.3 * vol_noise
            + 0.5 * np.log(regime)[None, :]
        )
        volume = np.rint(np.exp(log_volume))

        index_bars = [self._index_bars(ix, open_, high, low, close) for ix in self.indices]
        return _Bars(
            open=open_,
            high=high,
            low=low,
            close=close,
            volume=volume,
            index_open=np.array([b[0] for b in index_bars]).reshape(len(index_bars), m),
            index_high=np.array([b[1] for b in index_bars]).reshape(len(index_bars), m),
            index_low=np.array([b[2] for b in index_bars]).reshape(len(index_bars), m),
            index_close=np.array([b[3] for b in index_bars]).reshape(len(index_bars), m),
        )

    @staticmethod
    def _index_bars(ix: _Index, open_: F64, high: F64, low: F64, close: F64) -> tuple[F64, F64, F64, F64]:
        w = ix.weight[:, None]
        rows = ix.members
        o = np.sum(w * open_[rows], axis=0)
        c = np.sum(w * close[rows], axis=0)
        h_sum = np.sum(w * high[rows], axis=0)
        l_sum = np.sum(w * low[rows], axis=0)
        # members do not all peak at the same minute: the index range is about half the weighted range
        top, bottom = np.maximum(o, c), np.minimum(o, c)
        h = top + 0.5 * (h_sum - top)
        lo = bottom - 0.5 * (bottom - l_sum)
        o, c, h, lo = (np.round(x, 2) for x in (o, c, h, lo))
        return o, np.maximum(h, np.maximum(o, c)), np.minimum(lo, np.minimum(o, c)), c

    def _regime(self, days: npt.NDArray[np.int64]) -> F64:
        """Volatility multiplier (mean ~1) that persists for months: a smoothed monthly draw."""
        months = days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
        z = np.zeros(days.size, dtype=np.float64)
        for lag, weight in ((0, 1.0), (1, 0.7), (2, 0.4)):
            z += weight * _normal_pair(self.market_key, months - lag, _S_REGIME_A, _S_REGIME_B)[0][0]
        z /= np.sqrt(1.0 + 0.7**2 + 0.4**2)
        sigma = 0.3
        return np.exp(sigma * z - 0.5 * sigma**2)


def _rows(model: _Model, days: npt.NDArray[np.int64], bars: _Bars) -> dict[str, np.ndarray]:
    m = days.size
    index_symbols = [ix.symbol for ix in model.indices]
    symbols = np.repeat(np.array(list(model.symbols) + index_symbols, dtype=np.str_), m)
    n_idx = len(index_symbols)

    def stack(stock: F64, index: F64) -> F64:
        return np.concatenate([stock.ravel(), index.ravel()]) if n_idx else stock.ravel()

    return {
        "symbol": symbols,
        "date": np.tile(days, len(model.symbols) + n_idx).astype("datetime64[D]"),
        "open": stack(bars.open, bars.index_open),
        "high": stack(bars.high, bars.index_high),
        "low": stack(bars.low, bars.index_low),
        "close": stack(bars.close, bars.index_close),
        # index volume is 0, as in Kite's index candles
        "volume": stack(bars.volume, np.zeros((n_idx, m))).astype(np.int64),
    }


# -------------------------------------------------------------------- counter-based randomness


def _entity_key(seed: int, kind: str, name: str) -> int:
    digest = hashlib.blake2b(f"{seed}\x00{kind}\x00{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def _mix(x: U64) -> U64:
    """splitmix64's finaliser: a bijective avalanche on uint64 (wraps modulo 2**64 by design)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _uniforms(keys: U64, days: npt.NDArray[np.int64], stream: int) -> F64:
    """U(0,1) draws of shape (len(keys), len(days)), each a function of (key, day, stream) only."""
    salt = np.uint64((stream * 0xD1B54A32D192ED03) & _MASK64)
    k = _mix(keys ^ salt)
    d = days.astype(np.int64).view(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    x = _mix(k[:, None] + d[None, :])
    return ((x >> np.uint64(11)).astype(np.float64) + 0.5) * (1.0 / 9007199254740992.0)


def _static_uniforms(keys: U64, count: int) -> F64:
    """Per-entity parameter draws (not tied to a date)."""
    return _uniforms(keys, np.arange(count, dtype=np.int64) - (1 << 40), 0)


def _normal_pair(keys: U64, days: npt.NDArray[np.int64], stream_a: int, stream_b: int) -> tuple[F64, F64]:
    """Two independent standard normals per (key, day) by Box-Muller."""
    u1 = _uniforms(keys, days, stream_a)
    u2 = _uniforms(keys, days, stream_b)
    radius = np.sqrt(-2.0 * np.log(u1))
    angle = 2.0 * np.pi * u2
    return radius * np.cos(angle), radius * np.sin(angle)


def _fat_normal(keys: U64, days: npt.NDArray[np.int64], stream: int) -> F64:
    """Unit-variance Student-t(4) draws: normal / sqrt(chi2_4 / 4), scaled by 1/sqrt(2)."""
    z, _ = _normal_pair(keys, days, stream, stream + 1)
    chi2 = -2.0 * (np.log(_uniforms(keys, days, stream + 2)) + np.log(_uniforms(keys, days, stream + 3)))
    return np.clip(z / np.sqrt(chi2 / 4.0) / np.sqrt(2.0), -10.0, 10.0)


def _round_tick(x: F64) -> F64:
    return np.round(np.round(x / TICK) * TICK, 2)


def _from_day(day: int) -> date:
    return date.fromordinal(date(1970, 1, 1).toordinal() + day)
