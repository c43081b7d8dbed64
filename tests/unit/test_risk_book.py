"""The RiskBook's order counts, rebuilt from its events (max_orders_per_day reads them)."""

from __future__ import annotations

from domain.risk import OrderCounted, RiskBook, RiskBookOpened


def _book(*counted: tuple[str, int]) -> RiskBook:
    events = [RiskBookOpened(7)] + [OrderCounted(pf, i, day, f"{day}T10:00:00+05:30")
                                   for i, (day, pf) in enumerate(counted, start=1)]
    return RiskBook.rehydrate(RiskBook.uuid_for(7), events)


def test_orders_count_per_day_and_portfolio_and_a_new_day_starts_from_zero() -> None:
    book = _book(("2026-01-05", 1), ("2026-01-05", 1), ("2026-01-05", 2))
    assert book.orders_on("2026-01-05") == 3 and book.orders_on("2026-01-05", 1) == 2
    assert book.orders_on("2026-01-05", 2) == 1 and book.orders_on("2026-01-05", 9) == 0
    book = _book(("2026-01-05", 1), ("2026-01-05", 2), ("2026-01-06", 1))
    assert book.orders_on("2026-01-06") == 1
    assert book.orders_on("2026-01-05") == 0  # older days are forgotten once a later day counts


def test_a_late_order_for_an_earlier_day_is_counted_until_a_later_day_comes() -> None:
    book = _book(("2026-01-06", 1), ("2026-01-05", 1))
    assert book.orders_on("2026-01-06") == 1 and book.orders_on("2026-01-05") == 1
    book = _book(("2026-01-06", 1), ("2026-01-05", 1), ("2026-01-06", 2))
    assert book.orders_on("2026-01-06") == 2 and book.orders_on("2026-01-05") == 0


def test_replaying_a_long_history_keeps_only_the_latest_day() -> None:
    days = [f"2026-02-{d:02d}" for d in range(1, 29)]
    book = _book(*[(day, pf) for day in days for pf in (1, 2, 3) for _ in range(50)])
    assert book.orders_on(days[-1]) == 150 and book.orders_on(days[-1], 2) == 50
    assert {d for d, _ in book.orders} == {days[-1]}
