"""A trade day's aggregate: appends only trades it does not hold, in events of bounded size, knows its
trades again after a reload, and refuses a trade key held for a different trade."""

from __future__ import annotations

import pytest

from domain.imports import TRADES_PER_EVENT, TradebookDay, TradeIdConflict, TradesImported


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
    assert again.account_id == 7 and len(again.trades) == n
    new = [row(n), row(n + 1)]
    assert again.record_trades(7, 2, "2024-01-10", [row(1), *new]) == new  # row 1 is held
    (third,) = again.collect_events()
    assert isinstance(third, TradesImported)
    assert [r[1] for r in third.rows] == [str(n), str(n + 1)] and again.version == 3
    assert again.record_trades(7, 3, "2024-01-10", [row(2)]) == [] and not again.has_changes


def test_a_held_key_with_other_contents_is_refused_before_anything_is_recorded() -> None:
    day = TradebookDay(TradebookDay.uuid_for(7, "2024-01-10"))
    day.record_trades(7, 1, "2024-01-10", [row(0), row(1)])
    again = TradebookDay.rehydrate(day.aggregate_id, day.collect_events())
    # the same trade in a CSV (1500.0) and an XLSX that stored it as 1500.0000000000002: one trade
    same = [*row(1)[:11], 1500.0000000000002]
    assert again.record_trades(7, 2, "2024-01-10", [same]) == []
    for i, other in ((10, 99.0), (11, 1499.5), (3, "TCS"), (9, "sell")):
        changed = row(1)
        changed[i] = other
        with pytest.raises(TradeIdConflict) as exc:
            again.record_trades(7, 2, "2024-01-10", [row(2), changed])
        assert exc.value.key == "NSE:EQ:2024-01-10:1"
        assert exc.value.fields == [{10: "quantity", 11: "price", 3: "symbol", 9: "side"}[i]]
        assert not again.has_changes  # row 2, new, is not appended either
    twice = row(5)
    with pytest.raises(TradeIdConflict):  # within the rows given, too
        again.record_trades(7, 2, "2024-01-10", [twice, [*twice[:10], 2.0, twice[11]]])
    assert not again.has_changes and len(again.trades) == 2
