"""XIRR: the annual rate that makes the net present value of dated cash flows zero (Excel's XIRR).

NPV(r) = sum(cf_i / (1 + r) ** ((d_i - d_0) / 365)). Sign convention: money put in is negative, money
taken out (and the final value) positive.

Several roots. When the flows change sign more than once (money in, out, in again), NPV can cross zero
more than once: the same flows can have, say, +345 % and -51 % a year as equally valid rates. Excel
returns whichever root its Newton iteration happens to reach from its guess. Here every root is found
(NPV is scanned on a grid of rates from -99.99 % to 10^6 % and each sign change bisected) and the one
returned is the root nearest the simple annualized return -- (money out / money in) ** (1 / years) - 1,
years from the first flow to the last -- which is the figure a person would sanity-check the rate
against. `xirr_detail` also lists every root and says why there is no rate when there is none:
``one_sign`` (all flows in or all out), ``no_root`` (NPV never crosses zero in the range).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt

DateLike = str | date
Vector = npt.NDArray[np.float64]

# rates scanned for sign changes of NPV: fine near the usual range, geometric above it
_GRID = np.unique(np.concatenate([
    np.array([-0.9999, -0.999, -0.995]),
    np.linspace(-0.99, 1.0, 200),
    np.geomspace(1.0, 1e4, 120),
]))


@dataclass(frozen=True)
class XirrResult:
    """The chosen rate (None when there is none), every root found, and the reason for no rate."""

    rate: float | None
    roots: tuple[float, ...] = ()
    reason: str | None = None  # one_sign | no_root | no_flows (when rate is None)
    simple_annualized: float | None = None


def _day(d: DateLike) -> date:
    return d if isinstance(d, date) else date.fromisoformat(str(d)[:10])


def _prepared(flows: Sequence[tuple[DateLike, float]]) -> tuple[Vector, Vector]:
    """(t, cf): each non-zero flow's years from the first flow (days / 365) and its amount, by date."""
    pts = sorted((_day(d), float(cf)) for d, cf in flows if cf)
    if not pts:
        return np.zeros(0), np.zeros(0)
    d0 = pts[0][0]
    return np.array([(d - d0).days / 365.0 for d, _ in pts]), np.array([cf for _, cf in pts])


def _npv(rates: Vector | float, t: Vector, cf: Vector) -> Vector:
    """NPV at each of `rates` (one numpy pass over the flows per rate); inf or NaN where it overflows."""
    r = np.atleast_1d(np.asarray(rates, dtype=np.float64))
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        npv: Vector = (cf[None, :] * np.power(1.0 + r[:, None], -t[None, :])).sum(axis=1)
    return npv


def _safe_npv(rate: float, t: Vector, cf: Vector) -> float | None:
    v = float(_npv(rate, t, cf)[0])
    return v if math.isfinite(v) else None


def simple_annualized(t: Vector, cf: Vector) -> float | None:
    """(money out / money in) ** (1 / years) - 1 over the span of the flows (None over a zero span)."""
    out = float(cf[cf > 0].sum())
    inv = -float(cf[cf < 0].sum())
    years = float(t[-1] - t[0]) if t.size else 0.0
    if inv <= 0 or out <= 0 or years <= 0:
        return None
    return float((out / inv) ** (1.0 / years) - 1.0)


def _roots(t: Vector, cf: Vector, tol: float) -> list[float]:
    roots: list[float] = []
    prev_r: float | None = None
    prev_v: float | None = None
    for r, v in zip(_GRID.tolist(), _npv(_GRID, t, cf).tolist(), strict=True):
        if not math.isfinite(v):
            prev_r = prev_v = None
            continue
        if v == 0:
            roots.append(r)
        elif prev_v is not None and prev_r is not None and prev_v != 0 and (prev_v < 0) != (v < 0):
            root = _bisect(t, cf, prev_r, r, prev_v, tol)
            if root is not None:
                roots.append(root)
        prev_r, prev_v = r, v
    return roots


def _bisect(t: Vector, cf: Vector, lo: float, hi: float, flo: float, tol: float) -> float | None:
    for _ in range(300):
        mid = (lo + hi) / 2
        fm = _safe_npv(mid, t, cf)
        if fm is None:
            return None
        if abs(hi - lo) < tol or fm == 0:
            return mid
        if (fm < 0) == (flo < 0):
            lo, flo = mid, fm
        else:
            hi = mid
    return (lo + hi) / 2


def _newton(t: Vector, cf: Vector, rate: float, tol: float) -> float:
    """Polish a bracketed root with a few Newton steps (kept only if it stays a root nearby)."""
    start = rate
    for _ in range(20):
        base = 1.0 + rate
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            disc = np.power(base, -t)
            f = float((cf * disc).sum())
            df = float((-t * cf * disc / base).sum())
        if df == 0 or not math.isfinite(f) or not math.isfinite(df):
            return start
        nxt = rate - f / df
        if nxt <= -1.0 or not math.isfinite(nxt) or abs(nxt - start) > 1e-6 * max(1.0, abs(start)):
            return start
        if abs(nxt - rate) < tol:
            return nxt
        rate = nxt
    return rate


def xirr_detail(flows: Sequence[tuple[DateLike, float]], tol: float = 1e-10) -> XirrResult:
    """Every root of NPV in -99.99 % .. 10^6 % a year, and the one nearest the simple annualized return."""
    t, cf = _prepared(flows)
    if not t.size:
        return XirrResult(None, reason="no_flows")
    simple = simple_annualized(t, cf)
    if bool(np.all(cf > 0)) or bool(np.all(cf < 0)):
        return XirrResult(None, reason="one_sign", simple_annualized=simple)
    roots = tuple(_newton(t, cf, r, tol) for r in _roots(t, cf, tol))
    if not roots:
        return XirrResult(None, reason="no_root", simple_annualized=simple)
    target = simple if simple is not None else 0.0
    best = min(roots, key=lambda r: (abs(r - target), r))
    return XirrResult(best, roots=roots, simple_annualized=simple)


def xirr(flows: Sequence[tuple[DateLike, float]], guess: float = 0.1, tol: float = 1e-10) -> float | None:
    """The XIRR of `flows` as a fraction (0.25 = 25 % a year), or None when there is none. With several
    roots, the one nearest the simple annualized return (see the module docstring). `guess` is accepted
    for compatibility with Excel's signature; the roots are found by scanning, not from it."""
    del guess
    return xirr_detail(flows, tol).rate
