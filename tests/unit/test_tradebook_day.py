"""A trade day's aggregate: appends only trades it does not hold, in events of bounded size, and knows its
trades again after a reload."""

from __future__ import annotations

from domain.imports import TRADES_PER_EVENT, TradebookDay, TradesImported


def row(i: int) -> list[object]:
    return [f"NSE:EQ:2024-01-10:{i}", str(i), f"9{i}", "INFY", "INE009A01021", "NSE", "EQ", "EQ",
            "2024-01-10T10:00:00", "buy", 1.0, 1500.0]


def test_appends_only_new_trades_in_bounded_events_and_reloads() -> None:
    day = TradebookDay(TradebookDay.uuid_for(7, "2024-01-10"))
    n = TRADES_PER_EVENT + 3
    rows = [row(i) for i in range(n)]
    assert day.record_trades(7, 1, "2024-01-10", [*rows, row(0)]) == rows  # row 0 twice: appended once
    events = day.collect_events()
    assert [len(e.rows) for e in events if isinstance(e, TradesImported)] == [TRADES_PER_EVENT, 3]
    assert day.version == 2

    again = TradebookDay.rehydrate(day.aggregate_id, events)
    assert again.account_id == 7 and len(again.keys) == n
    new = [row(n), row(n + 1)]
    assert again.record_trades(7, 2, "2024-01-10", [row(1), *new]) == new  # row 1 is held
    (third,) = again.collect_events()
    assert isinstance(third, TradesImported)
    assert [r[1] for r in third.rows] == [str(n), str(n + 1)] and again.version == 3
    assert again.record_trades(7, 3, "2024-01-10", [row(2)]) == [] and not again.has_changes
