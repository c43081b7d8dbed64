"""Tick sizes by date and price band (reference §5.3) and rounding onto the grid."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from domain.ticks import round_to_tick, tick_size, to_tick


@pytest.mark.parametrize(("price", "day", "tick"), [
    (100.0, "2024-06-07", 0.05),
    (3000.0, "2024-06-07", 0.05),
    (249.99, "2024-06-10", 0.01),
    (250.0, "2024-06-10", 0.05),
    (25_000.0, "2025-04-14", 0.05),
    (249.0, "2025-04-15", 0.01),
    (250.0, "2025-04-15", 0.05),
    (1_000.0, "2025-04-15", 0.05),
    (1_000.05, "2025-04-15", 0.10),
    (5_000.0, "2025-04-15", 0.10),
    (5_000.5, "2025-04-15", 0.50),
    (10_000.0, "2025-04-15", 0.50),
    (15_000.0, "2025-04-15", 1.00),
    (20_000.0, "2025-04-15", 1.00),
    (20_001.0, "2025-04-15", 5.00),
])
def test_tick_size_by_date_and_band(price: float, day: str, tick: float) -> None:
    assert tick_size(price, day) == tick


def test_tick_size_accepts_date_objects_and_datetime64() -> None:
    assert tick_size(100.0, dt.date(2024, 6, 10)) == 0.01
    assert tick_size(100.0, np.datetime64("2024-06-07")) == 0.05


def test_round_down_up_nearest() -> None:
    assert round_to_tick(101.23, 0.05, "down") == 101.20
    assert round_to_tick(101.23, 0.05, "up") == 101.25
    assert round_to_tick(101.23, 0.05, "nearest") == 101.25
    assert round_to_tick(101.22, 0.05, "nearest") == 101.20
    assert round_to_tick(1234.56, 0.10, "down") == 1234.50
    assert round_to_tick(20_003.0, 5.0, "up") == 20_005.0


def test_prices_already_on_the_grid_do_not_move() -> None:
    for p in (100.05, 0.15, 2999.95, 1234.35, 99.99):
        tick = 0.01 if p == 99.99 else 0.05
        assert round_to_tick(p, tick, "down") == p
        assert round_to_tick(p, tick, "up") == p


def test_to_tick_uses_the_date_regime() -> None:
    assert to_tick(101.234, "2024-06-07", "down") == 101.20
    assert to_tick(101.234, "2024-06-10", "down") == 101.23


def test_bad_mode_or_tick_is_refused() -> None:
    with pytest.raises(ValueError):
        round_to_tick(1.0, 0.05, "sideways")
    with pytest.raises(ValueError):
        round_to_tick(1.0, 0.0)
