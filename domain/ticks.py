"""NSE equity tick sizes (date-effective) and rounding prices onto the tick grid.

Regimes (reference §5.3):
- before 2024-06-10: 0.05 for every price;
- 2024-06-10 .. 2025-04-14: 0.01 below 250, 0.05 otherwise;
- from 2025-04-15: below 250 -> 0.01; 250-1,000 -> 0.05; above 1,000-5,000 -> 0.10;
  above 5,000-10,000 -> 0.50; above 10,000-20,000 -> 1.00; above 20,000 -> 5.00.

The exchange reviews the band monthly on the previous month's close; a simulator has no such
history, so the band is chosen from the price being rounded. Dates are ISO strings (``YYYY-MM-DD``),
``datetime.date`` or ``numpy.datetime64``; ISO strings compare correctly as text, which keeps this hot
path free of date parsing.
"""

from __future__ import annotations

import datetime as _dt
import math

import numpy as np

SUB_250_FROM = "2024-06-10"
BANDED_FROM = "2025-04-15"
# (upper bound inclusive, tick) for the banded regime; the last band is open-ended
_BANDS: tuple[tuple[float, float], ...] = (
    (1_000.0, 0.05),
    (5_000.0, 0.10),
    (10_000.0, 0.50),
    (20_000.0, 1.00),
)
# a tolerance in ticks so that binary noise (e.g. 100.05 / 0.05 = 2000.9999999) never moves a price
# that is already on the grid
_EPS = 1e-7

DateLike = str | _dt.date | np.datetime64


def iso_date(value: DateLike) -> str:
    """The ``YYYY-MM-DD`` text of a date given as text, ``date`` or ``numpy.datetime64``."""
    if isinstance(value, str):
        return value[:10]
    if isinstance(value, np.datetime64):
        return str(value.astype("datetime64[D]"))
    return value.isoformat()[:10]


def tick_size(price: float, on_date: DateLike) -> float:
    """The NSE equity tick size for `price` on `on_date` (see the module docstring for the table)."""
    day = iso_date(on_date)
    if day < SUB_250_FROM:
        return 0.05
    if price < 250.0:
        return 0.01
    if day < BANDED_FROM:
        return 0.05
    for upper, tick in _BANDS:
        if price <= upper:
            return tick
    return 5.00


def round_to_tick(price: float, tick: float, mode: str = "nearest") -> float:
    """Round `price` onto the grid of `tick`: ``down`` (floor), ``up`` (ceiling) or ``nearest``
    (half away from zero). The result is rounded to 2 decimals so it prints as the exchange shows it."""
    if tick <= 0:
        raise ValueError("tick must be positive")
    steps = price / tick
    if mode == "down":
        n = math.floor(steps + _EPS)
    elif mode == "up":
        n = math.ceil(steps - _EPS)
    elif mode == "nearest":
        n = math.floor(steps + 0.5 + _EPS)
    else:
        raise ValueError(f"mode must be 'down', 'up' or 'nearest', got {mode!r}")
    return round(n * tick, 2)


def to_tick(price: float, on_date: DateLike, mode: str = "nearest") -> float:
    """Round `price` onto the tick grid in force on `on_date` for that price."""
    return round_to_tick(price, tick_size(price, on_date), mode)
