"""XIRR: the annual rate that makes the net present value of dated cash flows zero (Excel's XIRR).

NPV(r) = sum(cf_i / (1 + r) ** ((d_i - d_0) / 365)). Newton's method from a guess, and when it does not
converge (or wanders out of (-1, inf)), bisection on a bracket found by scanning rates. Sign convention:
money put in is negative, money taken out (and the final value) positive.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date

DateLike = str | date


def _day(d: DateLike) -> date:
    return d if isinstance(d, date) else date.fromisoformat(str(d)[:10])


def _prepared(flows: Sequence[tuple[DateLike, float]]) -> list[tuple[float, float]]:
    pts = sorted((_day(d), float(cf)) for d, cf in flows if cf)
    if not pts:
        return []
    d0 = pts[0][0]
    return [((d - d0).days / 365.0, cf) for d, cf in pts]


def _npv(rate: float, pts: list[tuple[float, float]]) -> float:
    base = 1.0 + rate
    return sum(cf / base ** t for t, cf in pts)


def _dnpv(rate: float, pts: list[tuple[float, float]]) -> float:
    base = 1.0 + rate
    return sum(-t * cf / base ** (t + 1.0) for t, cf in pts)


def xirr(flows: Sequence[tuple[DateLike, float]], guess: float = 0.1, tol: float = 1e-10) -> float | None:
    """The XIRR of `flows` as a fraction (0.25 = 25 % a year), or None when there is none (all flows of
    one sign, or no sign change of the NPV over -99.99 % .. 10^6 %)."""
    pts = _prepared(flows)
    if not pts or all(cf > 0 for _, cf in pts) or all(cf < 0 for _, cf in pts):
        return None
    rate = guess
    for _ in range(100):
        try:
            f = _npv(rate, pts)
            df = _dnpv(rate, pts)
        except (OverflowError, ZeroDivisionError):
            break
        if df == 0 or not math.isfinite(f) or not math.isfinite(df):
            break
        step = f / df
        nxt = rate - step
        if nxt <= -1.0 or not math.isfinite(nxt):
            break
        if abs(nxt - rate) < tol:
            return nxt
        rate = nxt
    return _bisect(pts, tol)


def _bisect(pts: list[tuple[float, float]], tol: float) -> float | None:
    grid = [-0.9999, -0.99, -0.9, -0.5, -0.2, 0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 100.0, 1e3, 1e4]

    def safe(r: float) -> float | None:
        try:
            v = _npv(r, pts)
        except (OverflowError, ZeroDivisionError):
            return None
        return v if math.isfinite(v) else None

    prev_r, prev_v = None, None
    for r in grid:
        v = safe(r)
        if v is None:
            continue
        if v == 0:
            return r
        if prev_v is not None and prev_r is not None and (prev_v < 0) != (v < 0):
            lo, hi, flo = prev_r, r, prev_v
            for _ in range(300):
                mid = (lo + hi) / 2
                fm = safe(mid)
                if fm is None:
                    return None
                if abs(hi - lo) < tol or fm == 0:
                    return mid
                if (fm < 0) == (flo < 0):
                    lo, flo = mid, fm
                else:
                    hi = mid
            return (lo + hi) / 2
        prev_r, prev_v = r, v
    return None
