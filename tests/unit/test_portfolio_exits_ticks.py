"""The Portfolio aggregate's paper fills on ticks (same fill model as the daily bars, never twice), the
cancel-and-replace of a live position's protective exit on a manual close, and partial exits."""

from __future__ import annotations

from typing import Any

import pytest

from domain.aggregate import IdSource
from domain.charges import total_charges
from domain.errors import Conflict, DomainError, InvalidTransition
from domain.fills import with_slippage
from domain.portfolio.aggregate import PROTECTIVE_REASON, Portfolio, rebuild
from domain.portfolio.events import PositionReduced
from domain.sizing import Candidate

D0, D1, D2, D3 = "2023-03-01", "2023-03-02", "2023-03-03", "2023-03-06"
_SOURCES: dict[int, IdSource] = {}  # by portfolio object


def make(mode: str = "paper", entry_order: str = "limit", charges: str = "zerodha_delivery", **exits: Any) -> Portfolio:
    rules = {"stop_loss_pct": 5, "target_pct": 10, "trailing_stop_pct": None, "max_hold_days": None,
             "exit_when": None}
    rules.update(exits)
    strategy = {"base_model": "v3_dip_buyer", "exit_rules": rules,
                "params": {"entry_order": entry_order, "limit_offset_pct": 1.0, "entry_validity_days": 3}}
    pf = Portfolio.deploy(7, name="p", mode=mode, strategy=strategy, capital=100_000, position_size_pct=10,
                          max_positions=3, auto_approve=True, slippage_bps=10, charges=charges, day=D0, at=D0)
    numbers = iter(range(100, 10_000))
    _SOURCES[id(pf)] = lambda kind: next(numbers)
    pf.process_bars(D0, {}, D0, ids=ids(pf))
    return pf


def ids(pf: Portfolio) -> IdSource:
    """The id source of a portfolio `make` built (as a live or paper portfolio's command passes one)."""
    return _SOURCES[id(pf)]


def placed(pf: Portfolio, symbol: str = "A", close: float = 100.0) -> int:
    out = pf.record_signals(pf.last_day or D0, [Candidate(symbol, "IT", 70.0, close, reason="t")], "t", ids=ids(pf))
    (sid,) = out.signal_ids
    assert pf.signals[sid].status == "placed"
    return sid


def test_limit_entry_fills_at_a_crossing_tick_with_the_daily_slippage_and_charges_and_only_once() -> None:
    pf = make()
    sid = placed(pf)
    limit = pf.signals[sid].limit_price
    assert limit == 99.0
    assert pf.process_ticks(D1, {"A": 99.5}, "t1", ids=ids(pf)) == 0  # above the limit: nothing
    assert pf.process_ticks(D1, {"A": 98.7}, "t2", ids=ids(pf)) == 1
    sig = pf.signals[sid]
    price = with_slippage(98.7, "buy", 10)
    assert sig.status == "executed" and sig.fill_price == price  # min(tick, limit), then slippage
    pos = pf.position_of("A")
    assert pos is not None and pos.entry_day == D1 and pos.entry_price == price
    assert pos.entry_charges == total_charges("buy", sig.quantity, price, D1, "zerodha_delivery")
    cash = pf.cash
    assert pf.process_ticks(D1, {"A": 90.0}, "t3", ids=ids(pf)) == 0  # a tick under the stop on the entry day: no exit
    # the day's bar later: the executed order is not filled again, nor is the position stopped on its entry day
    pf.process_bars(D1, {"A": (98.0, 99.0, 80.0, 95.0)}, "close", ids=ids(pf))
    assert pf.cash == cash and len(pf.open_positions) == 1 and pf.stats["entries_filled"] == 1
    assert pf.position_of("A").bars_held == 1  # type: ignore[union-attr]


def test_a_session_whose_first_tick_is_the_open_fills_exactly_as_the_daily_bar() -> None:
    daily, ticked = make(), make()
    placed(daily)
    placed(ticked)
    bar = (98.4, 100.0, 97.0, 99.0)
    daily.process_bars(D1, {"A": bar}, "close", ids=ids(daily))
    ticked.process_ticks(D1, {"A": bar[0]}, "open", ids=ids(ticked))
    ticked.process_bars(D1, {"A": bar}, "close", ids=ids(ticked))
    a, b = daily.position_of("A"), ticked.position_of("A")
    assert a is not None and b is not None
    assert (a.entry_price, a.quantity, a.entry_charges, a.stop_loss, a.target, a.entry_day) == \
        (b.entry_price, b.quantity, b.entry_charges, b.stop_loss, b.target, b.entry_day)
    assert a.entry_price == with_slippage(98.4, "buy", 10)
    assert (daily.cash, daily.equity) == (ticked.cash, ticked.equity)


def test_stop_and_target_fire_on_ticks_from_the_day_after_entry() -> None:
    pf = make()
    placed(pf)
    pf.process_bars(D1, {"A": (98.0, 99.0, 97.0, 98.0)}, "close", ids=ids(pf))  # filled at the open 98.0 (+slippage)
    pos = pf.position_of("A")
    assert pos is not None and pos.stop_loss is not None and pos.target is not None
    assert pf.process_ticks(D2, {"A": pos.stop_loss + 0.05}, "t", ids=ids(pf)) == 0
    assert pf.process_ticks(D2, {"A": pos.stop_loss - 0.4}, "t", ids=ids(pf)) == 1  # gapped under: at the tick
    assert pos.status == "closed" and pos.exit_reason == "stop_loss"
    assert pos.exit_price == with_slippage(pos.stop_loss - 0.4, "sell", 10)
    cash = pf.cash
    pf.process_bars(D2, {"A": (90.0, 91.0, 80.0, 85.0)}, "close", ids=ids(pf))  # the bar would stop it again: no
    assert pf.cash == cash and pf.stats["exits"] == 1
    target = make()
    placed(target)
    target.process_bars(D1, {"A": (98.0, 99.0, 97.0, 98.0)}, "close", ids=ids(target))
    tpos = target.position_of("A")
    assert tpos is not None and target.process_ticks(D2, {"A": tpos.target + 1}, "t", ids=ids(target)) == 1  # type: ignore[operator]
    assert tpos.exit_reason == "target"


def test_ticks_leave_market_orders_other_days_and_live_portfolios_alone() -> None:
    pf = make(max_hold_days=1)
    placed(pf)
    pf.process_bars(D1, {"A": (98.0, 99.0, 97.0, 98.0)}, "close", ids=ids(pf))
    assert pf.tick_levels(D2) == {}  # max hold reached: it sells at D2's open, not on a tick
    assert pf.process_ticks(D2, {"A": 1.0}, "t", ids=ids(pf)) == 0
    old = make()
    placed(old)
    assert old.process_ticks(D0, {"A": 1.0}, "t", ids=ids(old)) == 0  # a day already processed
    live = make(mode="live")
    sid = placed(live)
    assert live.process_ticks(D1, {"A": 1.0}, "t", ids=ids(live)) == 0 and live.signals[sid].status == "placed"
    nxt = make(entry_order="next_open")
    placed(nxt)
    assert nxt.process_ticks(D1, {"A": 1.0}, "t", ids=ids(nxt)) == 0  # a market order fills at the bar's open
    assert nxt.tick_levels(D1) == {}


def _live_position() -> tuple[Portfolio, int, int]:
    pf = make(mode="live", charges="none")
    sid = placed(pf)
    pid = pf.record_fill(sid, D1, 100.0, "t", 50, ids=ids(pf))
    pf.record_exit_signals(D1, ["A"], "t", reasons={"A": PROTECTIVE_REASON}, ids=ids(pf))
    pos = pf.positions[pid]
    assert pos.exit_pending and pos.exit_signal_id is not None
    return pf, pid, pos.exit_signal_id


def test_manual_close_replaces_the_protective_exit_which_stays_working_until_cancelled() -> None:
    pf, pid, protective = _live_position()
    close = pf.request_exit(pid, D1, "t", "manual close requested", ids=ids(pf))
    assert pf.exit_state(protective) == "replaced" and pf.exit_state(close) == "pending"
    with pytest.raises(DomainError, match="already has an exit queued"):
        pf.request_exit(pid, D1, "t", "manual close requested", ids=ids(pf))
    assert pf.record_broker_order(protective, None, "9001", "t")  # it may still reach the broker
    pf.record_exit_cancelled(protective, "GTT deleted", "t")
    assert pf.exit_state(protective) == "cancelled"
    with pytest.raises(InvalidTransition):
        pf.record_exit_fill(protective, D1, 95.0, "t", "stop_loss", ids=ids(pf))
    pf.record_exit_fill(close, D1, 104.0, "t", "manual", ids=ids(pf))
    assert pf.positions[pid].status == "closed" and pf.positions[pid].exit_reason == "manual"
    again = rebuild(7, pf.collect_events())
    assert again.exit_state(protective) == "cancelled" and again.exit_state(close) == "executed"


def test_a_protective_fill_before_its_cancellation_fails_the_close_so_nothing_sells_twice() -> None:
    pf, pid, protective = _live_position()
    close = pf.request_exit(pid, D1, "t", "manual close requested", ids=ids(pf))
    pf.record_exit_fill(protective, D1, 95.0, "t", "stop_loss", ids=ids(pf))
    assert pf.positions[pid].status == "closed" and pf.exit_state(close) == "failed"
    with pytest.raises(InvalidTransition):
        pf.record_exit_fill(close, D1, 96.0, "t", "manual", ids=ids(pf))


def test_partial_exit_splits_a_closed_lot_with_its_share_of_the_entry_charges() -> None:
    pf = make(charges="zerodha_delivery")
    placed(pf)
    pf.process_bars(D1, {"A": (98.0, 99.0, 97.0, 98.0)}, "close", ids=ids(pf))
    pos = pf.position_of("A")
    assert pos is not None
    qty, entry, fees = pos.quantity, pos.entry_price, pos.entry_charges
    cash = pf.cash
    lot_id = pf.close_position(pos.position_id, D2, 101.0, "t", quantity=40, ids=ids(pf))
    lot = pf.positions[lot_id]
    part = round(fees * 40 / qty, 2)
    sell = total_charges("sell", 40, 101.0, D2, "zerodha_delivery")
    assert (lot.status, lot.quantity, lot.exit_price, lot.exit_reason) == ("closed", 40, 101.0, "manual")
    assert lot.entry_charges == part and lot.realized_pnl == round((101.0 - entry) * 40 - part - sell, 2)
    assert pos.status == "open" and pos.quantity == qty - 40 and pos.entry_charges == round(fees - part, 2)
    assert pf.cash == round(cash + 40 * 101.0 - sell, 2)
    with pytest.raises(DomainError, match="quantity must be from 1 to"):
        pf.close_position(pos.position_id, D2, 101.0, "t", quantity=qty, ids=ids(pf))
    events = pf.collect_events()
    assert any(isinstance(e, PositionReduced) for e in events)
    again = rebuild(7, events)
    assert again.positions[lot_id].realized_pnl == lot.realized_pnl and again.cash == pf.cash


def test_a_partial_live_exit_fill_leaves_the_rest_open_and_a_second_report_conflicts() -> None:
    pf, pid, protective = _live_position()
    close = pf.request_exit(pid, D1, "t", "manual close requested", quantity=20, ids=ids(pf))
    pf.record_exit_cancelled(protective, "GTT deleted", "t")
    lot = pf.record_exit_fill(close, D1, 110.0, "t", "manual", ids=ids(pf))  # quantity from the exit signal: 20
    pos = pf.positions[pid]
    assert pf.positions[lot].quantity == 20 and pos.quantity == 30 and not pos.exit_pending
    assert pf.exit_results[close] == (110.0, 20, lot)
    with pytest.raises(InvalidTransition):
        pf.record_exit_fill(close, D1, 110.0, "t", "manual", ids=ids(pf))
    nxt = pf.request_exit(pid, D1, "t", "manual close requested", ids=ids(pf))
    with pytest.raises(DomainError, match="exceeds the 30 shares"):
        pf.record_exit_fill(nxt, D1, 1.0, "t", "manual", quantity=31, ids=ids(pf))


def test_exit_fill_of_a_closed_position_is_a_conflict() -> None:
    pf, pid, protective = _live_position()
    close = pf.request_exit(pid, D1, "t", "manual close requested", ids=ids(pf))
    pf.record_exit_fill(close, D1, 104.0, "t", "manual", ids=ids(pf))  # (the agent never does this before the cancel)
    with pytest.raises(Conflict, match="second sale"):
        pf.record_exit_fill(protective, D1, 95.0, "t", "stop_loss", ids=ids(pf))


# NSE's closing session from 3 Aug 2026: continuous trading to 15:15, then a closing auction (15:15-15:35,
# no stop-loss orders, the close from the auction). Ticks in the auction neither fill nor trigger.
A1, A2 = "2026-08-03", "2026-08-04"


def _auction_pf() -> Portfolio:
    pf = make()
    pf.process_bars(A1, {}, A1, ids=ids(pf))  # the portfolio's last processed day: the ticks below are of A2
    return pf


@pytest.mark.parametrize(("tick_time", "fills"), [
    ("2026-08-04T15:14:59+05:30", 1),  # continuous trading
    ("2026-08-04T15:15:00+05:30", 0),  # the closing auction starts
    ("2026-08-04T09:50:00Z", 0),       # 15:20 IST
    ("2026-08-04T15:34:00+05:30", 0),
    (None, 1),                         # a demo feed without session rules
])
def test_no_tick_fill_or_trigger_in_the_closing_auction(tick_time: str | None, fills: int) -> None:
    entry = _auction_pf()
    sid = placed(entry)
    assert entry.process_ticks(A2, {"A": 98.0}, "t", tick_time, ids=ids(entry)) == fills
    assert entry.signals[sid].status == ("executed" if fills else "placed")
    # a stop/target crossed by a tick in the auction does not fire either: no stop-loss orders there
    held = _auction_pf()
    placed(held)
    held.process_ticks(A2, {"A": 98.0}, "t", "2026-08-04T10:00:00+05:30", ids=ids(held))
    held.process_bars(A2, {"A": (98.5, 99.0, 97.5, 98.0)}, "close", ids=ids(held))
    pos = held.position_of("A")
    assert pos is not None and pos.stop_loss is not None
    day3 = "2026-08-05"
    next_time = tick_time.replace("08-04", "08-05") if tick_time else None
    assert held.process_ticks(day3, {"A": pos.stop_loss - 1}, "t", next_time, ids=ids(held)) == fills


def test_before_the_closing_auction_rule_ticks_fill_until_the_close() -> None:
    pf = make()
    placed(pf)
    assert pf.process_ticks(D1, {"A": 98.0}, "t", "2023-03-02T15:25:00+05:30", ids=ids(pf)) == 1


def test_paper_with_tick_fills_and_without_both_paths_as_documented() -> None:
    """README: paper ≡ backtest holds when tick fills are off (daily bars only: the limit fills at the
    limit when the day's low reaches it); with tick fills a crossing tick under the limit fills at that
    tick's price -- the documented difference, tested on the same orders and the same day."""
    daily, ticked = make(), make()
    placed(daily)
    placed(ticked)
    bar = (100.5, 101.0, 97.0, 99.5)  # opens above the 99.00 limit, trades down to 97
    ticked.process_ticks(D1, {"A": 98.2}, "t", "2023-03-02T11:00:00+05:30", ids=ids(ticked))
    daily.process_bars(D1, {"A": bar}, "close", ids=ids(daily))
    ticked.process_bars(D1, {"A": bar}, "close", ids=ids(ticked))
    a, b = daily.position_of("A"), ticked.position_of("A")
    assert a is not None and b is not None
    assert a.entry_price == with_slippage(99.0, "buy", 10)   # the daily model: the limit itself
    assert b.entry_price == with_slippage(98.2, "buy", 10)   # ticks: the crossing tick's price
    assert a.quantity == b.quantity and a.entry_day == b.entry_day == D1
