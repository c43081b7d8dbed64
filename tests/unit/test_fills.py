"""Hand-checkable golden cases for every entry-fill and exit rule.

Dates are before 2024-06-10, so every tick is 0.05. Signals are made at a close of 100.00; entries
fill on the next bar; stop 7 % -> 93.00, target 12 % -> 112.00 for a fill at 100.00.
"""

from __future__ import annotations

from typing import Any

import pytest

from domain.fills import (
    Bar,
    effective_stop,
    entry_fill_price,
    exit_decision,
    limit_price,
    stop_level,
    target_level,
    trail_level,
    with_slippage,
)
from domain.portfolio.aggregate import Portfolio
from domain.sizing import Candidate

DAYS = ["2023-01-02", "2023-01-03", "2023-01-04", "2023-01-05", "2023-01-06", "2023-01-09", "2023-01-10"]
FLAT = (100.0, 100.0, 100.0, 100.0)

# ------------------------------------------------------------------ pure functions


def test_limit_price_is_close_less_offset_rounded_down_to_tick() -> None:
    assert limit_price(100.0, 0.5, "2023-01-02") == 99.50
    assert limit_price(123.47, 1.0, "2023-01-02") == 122.20  # 122.2353 -> down to 0.05
    assert limit_price(123.47, 1.0, "2024-06-10") == 122.23  # 0.01 tick below 250 from 2024-06-10


def test_limit_entry_fills_at_open_when_open_at_or_below_limit() -> None:
    assert entry_fill_price("limit", 99.0, Bar(98.5, 101.0, 98.0, 100.0)) == 98.5
    assert entry_fill_price("limit", 99.0, Bar(99.0, 101.0, 98.0, 100.0)) == 99.0


def test_limit_entry_fills_at_limit_when_low_touches() -> None:
    assert entry_fill_price("limit", 99.0, Bar(100.5, 101.0, 98.8, 100.0)) == 99.0
    assert entry_fill_price("limit", 99.0, Bar(100.5, 101.0, 99.0, 100.0)) == 99.0


def test_limit_entry_unfilled_when_low_stays_above() -> None:
    assert entry_fill_price("limit", 99.0, Bar(100.5, 101.0, 99.05, 100.0)) is None


def test_next_open_entry_fills_at_open() -> None:
    assert entry_fill_price("next_open", None, Bar(101.3, 102.0, 99.0, 100.0)) == 101.3


def test_stop_rounds_down_and_target_rounds_up() -> None:
    assert stop_level(101.30, 7, "2023-01-02") == 94.20  # 94.209
    assert target_level(101.30, 12, "2023-01-02") == 113.50  # 113.456
    assert stop_level(100.0, None, "2023-01-02") is None


@pytest.mark.parametrize(("bar", "expected"), [
    (Bar(92.0, 95.0, 90.0, 94.0), (92.0, "stop_loss")),     # gap through the stop -> open
    (Bar(113.0, 115.0, 112.5, 114.0), (113.0, "target")),   # gap through the target -> open
    (Bar(95.0, 96.0, 92.5, 94.0), (93.0, "stop_loss")),     # stop touched -> stop level
    (Bar(105.0, 112.5, 104.0, 110.0), (112.0, "target")),   # target touched -> target level
    (Bar(100.0, 113.0, 92.0, 100.0), (93.0, "stop_loss")),  # both touched -> the stop wins
    (Bar(100.0, 111.95, 93.05, 100.0), None),               # neither
])
def test_exit_decision_golden(bar: Bar, expected: tuple[float, str] | None) -> None:
    got = exit_decision(bar, 93.0, "stop_loss", 112.0, 1, None, False)
    assert (None if got is None else (got.price, got.reason)) == expected


def test_exit_decision_max_hold_and_signal_exit_at_open_before_intraday_touches() -> None:
    bar = Bar(100.0, 113.0, 92.0, 100.0)
    assert exit_decision(bar, 93.0, "stop_loss", 112.0, 5, 5, False) == (100.0, "max_hold")
    assert exit_decision(bar, 93.0, "stop_loss", 112.0, 4, 5, True) == (100.0, "signal")
    # a gap through the stop at the same open keeps the stop's reason
    gap = Bar(90.0, 95.0, 89.0, 94.0)
    assert exit_decision(gap, 93.0, "stop_loss", 112.0, 5, 5, True) == (90.0, "stop_loss")


def test_effective_stop_is_the_higher_level() -> None:
    assert effective_stop(93.0, 95.0) == (95.0, "trailing_stop")
    assert effective_stop(97.0, 95.0) == (97.0, "stop_loss")
    assert effective_stop(95.0, 95.0) == (95.0, "stop_loss")
    assert effective_stop(None, 95.0) == (95.0, "trailing_stop")
    assert trail_level(110.0, 5, "2023-01-02") == 104.50


def test_slippage_moves_buys_up_and_sells_down() -> None:
    assert with_slippage(100.0, "buy", 10) == 100.10
    assert with_slippage(110.0, "sell", 10) == 109.89
    assert with_slippage(100.0, "buy", 0) == 100.0


# ------------------------------------------------------------------ multi-day scenarios through the Portfolio


def portfolio(exits: dict[str, Any] | None = None, **params: Any) -> Portfolio:
    exit_rules = {"stop_loss_pct": 7, "target_pct": 12, "trailing_stop_pct": None, "max_hold_days": None,
                  "exit_when": None}
    exit_rules.update(exits or {})
    slippage = params.pop("slippage_bps", 0.0)
    strategy = {"base_model": "v3_dip_buyer", "exit_rules": exit_rules,
                "params": {"entry_order": "next_open", "limit_offset_pct": 0.0, **params}}
    pf = Portfolio.deploy(1, name="t", mode="paper", strategy=strategy, capital=100_000, position_size_pct=10,
                          max_positions=5, auto_approve=True, charges="none", slippage_bps=slippage,
                          day=DAYS[0], at=DAYS[0])
    pf.process_bars(DAYS[0], {"A": FLAT}, DAYS[0])
    pf.record_signals(DAYS[0], [Candidate("A", "IT", 50.0, 100.0)], DAYS[0])
    return pf


def run(pf: Portfolio, bars: list[tuple[float, float, float, float]], exit_signal_on: int | None = None) -> None:
    for k, bar in enumerate(bars, start=1):
        pf.process_bars(DAYS[k], {"A": bar}, DAYS[k])
        if exit_signal_on == k:
            pf.record_exit_signals(DAYS[k], ["A"], DAYS[k])


def only_trade(pf: Portfolio) -> tuple[str | None, float | None, str | None]:
    assert len(pf.closed_positions) == 1
    p = pf.closed_positions[0]
    return p.exit_day, p.exit_price, p.exit_reason


def test_limit_order_fills_at_open_then_position_opens() -> None:
    pf = portfolio(entry_order="limit", limit_offset_pct=1.0)  # limit 99.00
    run(pf, [(98.5, 100.0, 98.0, 99.0)])
    (pos,) = pf.open_positions.values()
    assert (pos.entry_day, pos.entry_price, pos.quantity) == (DAYS[1], 98.5, 101)  # floor(10000 / 99)


def test_limit_order_fills_at_limit_when_low_touches() -> None:
    pf = portfolio(entry_order="limit", limit_offset_pct=1.0)
    run(pf, [(100.5, 101.0, 98.8, 100.0)])
    (pos,) = pf.open_positions.values()
    assert pos.entry_price == 99.0


def test_limit_order_unfilled_expires_after_one_day_and_frees_the_slot() -> None:
    pf = portfolio(entry_order="limit", limit_offset_pct=1.0)
    run(pf, [(100.5, 101.0, 99.5, 100.0)])
    assert not pf.open_positions and pf.stats["entries_expired"] == 1
    (sig,) = pf.signals.values()
    assert sig.status == "expired"
    assert pf.free_slots == 5 and not pf.symbols_needing_bars()


def test_limit_order_with_validity_2_fills_on_second_day() -> None:
    pf = portfolio(entry_order="limit", limit_offset_pct=1.0, entry_validity_days=2)
    run(pf, [(100.5, 101.0, 99.5, 100.0), (100.0, 100.5, 98.9, 99.5)])
    (pos,) = pf.open_positions.values()
    assert (pos.entry_day, pos.entry_price) == (DAYS[2], 99.0)


def test_limit_order_with_validity_2_expires_after_second_day() -> None:
    pf = portfolio(entry_order="limit", limit_offset_pct=1.0, entry_validity_days=2)
    run(pf, [(100.5, 101.0, 99.5, 100.0)])
    assert pf.stats["entries_expired"] == 0 and pf.symbols_needing_bars() == ["A"]
    run_from(pf, 2, [(100.5, 101.0, 99.5, 100.0)])
    assert pf.stats["entries_expired"] == 1 and not pf.open_positions


def test_entry_day_is_never_an_exit_day() -> None:
    pf = portfolio()
    run(pf, [(100.0, 115.0, 85.0, 100.0)])  # would hit both levels, but it is the entry day
    assert len(pf.open_positions) == 1


@pytest.mark.parametrize(("bar", "expected"), [
    ((92.0, 95.0, 90.0, 94.0), (92.0, "stop_loss")),
    ((113.0, 115.0, 112.5, 114.0), (113.0, "target")),
    ((95.0, 96.0, 92.5, 94.0), (93.0, "stop_loss")),
    ((105.0, 112.5, 104.0, 110.0), (112.0, "target")),
    ((100.0, 113.0, 92.0, 100.0), (93.0, "stop_loss")),
])
def test_fixed_stop_and_target_exits_golden(bar: tuple[float, float, float, float],
                                            expected: tuple[float, str]) -> None:
    pf = portfolio()
    run(pf, [FLAT, bar])
    assert only_trade(pf) == (DAYS[2], *expected)


def test_trailing_stop_ratchets_up_never_down_and_exits_at_trail() -> None:
    pf = portfolio({"stop_loss_pct": None, "target_pct": None, "trailing_stop_pct": 5})
    run(pf, [FLAT])  # entry at 100, close 100 -> trail 95.00
    (pos,) = pf.open_positions.values()
    assert (pos.stop_loss, pos.stop_reason) == (95.0, "trailing_stop")
    run_from(pf, 2, [(101.0, 110.5, 100.5, 110.0)])  # close 110 -> trail 104.50
    assert pos.stop_loss == 104.5
    run_from(pf, 3, [(109.0, 109.5, 106.0, 108.0)])  # lower close: trail stays
    assert pos.stop_loss == 104.5
    run_from(pf, 4, [(107.0, 107.5, 104.0, 105.0)])  # low 104 <= 104.50 -> exit at the trail
    assert only_trade(pf) == (DAYS[4], 104.5, "trailing_stop")
    assert pf.stats["stop_updates"] == 2


def test_trailing_stop_gap_exits_at_open() -> None:
    pf = portfolio({"stop_loss_pct": 7, "target_pct": None, "trailing_stop_pct": 5})
    run(pf, [(100.0, 110.5, 99.0, 110.0), (103.0, 104.0, 101.0, 102.0)])  # trail 104.50, open 103
    assert only_trade(pf) == (DAYS[2], 103.0, "trailing_stop")


def test_trailing_below_fixed_stop_keeps_stop_loss_reason() -> None:
    pf = portfolio({"stop_loss_pct": 3, "target_pct": None, "trailing_stop_pct": 5})  # fixed 97.00, trail 95
    run(pf, [FLAT, (98.0, 98.5, 96.5, 97.5)])
    assert only_trade(pf) == (DAYS[2], 97.0, "stop_loss")


def test_max_hold_exits_at_open_of_day_entry_plus_max_hold() -> None:
    pf = portfolio({"max_hold_days": 3})
    run(pf, [FLAT, FLAT, FLAT])  # entered day 1; held through days 2, 3
    assert len(pf.open_positions) == 1
    run_from(pf, 4, [(101.0, 102.0, 95.0, 101.0)])  # day 1 + 3: exit at the open
    assert only_trade(pf) == (DAYS[4], 101.0, "max_hold")


def test_exit_when_true_at_close_exits_at_next_open() -> None:
    pf = portfolio({"stop_loss_pct": None, "target_pct": None})
    run(pf, [FLAT, (100.0, 101.0, 99.0, 100.5)], exit_signal_on=2)
    assert len(pf.open_positions) == 1  # flagged at day 2's close, still open
    run_from(pf, 3, [(102.0, 103.0, 101.0, 102.5)])
    assert only_trade(pf) == (DAYS[3], 102.0, "signal")


def test_slippage_applies_to_entry_and_exit_fills_against_the_trader() -> None:
    pf = portfolio(slippage_bps=10)
    run(pf, [FLAT, (113.0, 115.0, 112.5, 114.0)])
    p = pf.closed_positions[0]
    assert p.entry_price == 100.10  # 100 x 1.001
    assert p.exit_price == 112.89  # gap 113 x 0.999 = 112.887
    assert p.exit_reason == "target"
    assert p.target == 112.15  # 100.10 x 1.12 = 112.112 -> up to 112.15


def test_missing_bar_postpones_exits_to_the_next_bar() -> None:
    pf = portfolio({"max_hold_days": 1})
    pf.process_bars(DAYS[1], {"A": FLAT}, DAYS[1])
    pf.process_bars(DAYS[2], {}, DAYS[2])  # suspended: no bar, nothing fills
    assert len(pf.open_positions) == 1
    pf.process_bars(DAYS[3], {"A": (99.0, 100.0, 98.0, 99.5)}, DAYS[3])
    assert only_trade(pf) == (DAYS[3], 99.0, "max_hold")


def run_from(pf: Portfolio, first: int, bars: list[tuple[float, float, float, float]]) -> None:
    for k, bar in enumerate(bars, start=first):
        pf.process_bars(DAYS[k], {"A": bar}, DAYS[k])
