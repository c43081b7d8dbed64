"""The Portfolio aggregate: limits, ranking, cash, lifecycle, events and rehydration."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from domain.errors import Conflict, DomainError, InvalidTransition, NotFound
from domain.events import event_from_data
from domain.portfolio.aggregate import Portfolio, rebuild
from domain.portfolio.events import PortfolioDeployed
from domain.sizing import Candidate, position_quantity, rank_candidates

D0, D1, D2, D3 = "2023-03-01", "2023-03-02", "2023-03-03", "2023-03-06"


def make(mode: str = "paper", auto: bool = True, **kw: Any) -> Portfolio:
    strategy = {"base_model": "sma_crossover",
                "exit_rules": {"stop_loss_pct": 10, "target_pct": None, "trailing_stop_pct": None,
                               "max_hold_days": None, "exit_when": None},
                "params": {"entry_order": "next_open"}}
    args: dict[str, Any] = {"capital": 100_000, "position_size_pct": 10, "max_positions": 3, "max_per_sector": None,
                            "charges": "none"}
    args.update(kw)
    return Portfolio.deploy(7, name="p", mode=mode, strategy=strategy, auto_approve=auto, day=D0, at=D0 + "T16:00",
                            **args)


def cand(sym: str, conv: float, sector: str = "IT", close: float = 100.0) -> Candidate:
    return Candidate(sym, sector, conv, close, reason="test")


def test_ranking_is_conviction_desc_then_symbol_asc() -> None:
    ranked = rank_candidates([cand("B", 60), cand("A", 60), cand("C", 80), cand("D", 10)])
    assert [c.symbol for c in ranked] == ["C", "A", "B", "D"]


def test_signals_fill_free_slots_by_rank_and_count_the_rest() -> None:
    pf = make()
    out = pf.record_signals(D0, [cand("E", 50), cand("B", 70), cand("A", 70), cand("D", 90), cand("C", 10)], D0)
    assert [pf.signals[i].symbol for i in out.signal_ids] == ["D", "A", "B"]
    assert out.skipped_max_positions == 2 and out.considered == 5
    assert all(pf.signals[i].status == "placed" for i in out.signal_ids)
    assert pf.free_slots == 0
    # full: the next scan skips everything without work
    out2 = pf.record_signals(D0, [cand("X", 99)], D0)
    assert out2.signal_ids == () and out2.skipped_max_positions == 1


def test_held_or_pending_symbol_is_not_a_candidate_again() -> None:
    pf = make()
    pf.record_signals(D0, [cand("A", 50)], D0)
    out = pf.record_signals(D0, [cand("A", 99), cand("B", 10)], D0)
    assert out.considered == 1 and [pf.signals[i].symbol for i in out.signal_ids] == ["B"]


def test_sector_cap_counts_open_and_pending() -> None:
    pf = make(max_positions=10, max_per_sector=2)
    pf.record_signals(D0, [cand("A", 90, "Bank")], D0)
    pf.process_bars(D1, {"A": (100.0, 101.0, 99.0, 100.0)}, D1)  # A is now an open position
    out = pf.record_signals(D1, [cand("B", 80, "Bank"), cand("C", 70, "Bank"), cand("D", 60, "IT")], D1)
    assert [pf.signals[i].symbol for i in out.signal_ids] == ["B", "D"]
    assert out.skipped_max_per_sector == 1


def test_quantity_is_floor_of_pct_equity_over_expected_price() -> None:
    assert position_quantity(100_000, 10, 333.0) == 30
    assert position_quantity(100_000, 10, 100.0) == 100  # exact, no binary-noise loss
    assert position_quantity(100_000, 10, 20_000.0) == 0
    pf = make(position_size_pct=1)
    out = pf.record_signals(D0, [cand("BIG", 90, close=5_000.0), cand("OK", 10, close=50.0)], D0)
    assert out.skipped_zero_quantity == 1
    assert [pf.signals[i].quantity for i in out.signal_ids] == [20]


def test_limit_entry_sizes_on_the_limit_price() -> None:
    strategy = {"base_model": "v3_dip_buyer", "params": {"entry_order": "limit", "limit_offset_pct": 1.0}}
    pf = Portfolio.deploy(1, name="p", mode="paper", strategy=strategy, capital=100_000, position_size_pct=10,
                          max_positions=3, auto_approve=True, charges="none", day=D0, at=D0)
    (sid,) = pf.record_signals(D0, [cand("A", 50)], D0).signal_ids
    sig = pf.signals[sid]
    assert sig.limit_price == 99.0 and sig.quantity == 101  # floor(10,000 / 99)


def test_fill_skipped_when_cash_cannot_cover_cost_and_charges() -> None:
    pf = make(position_size_pct=60, max_positions=3, charges="zerodha_delivery")
    out = pf.record_signals(D0, [cand("A", 90), cand("B", 80)], D0)  # 600 shares each at ~100
    assert len(out.signal_ids) == 2
    pf.process_bars(D1, {"A": (100.0, 101.0, 99.0, 100.0), "B": (100.0, 101.0, 99.0, 100.0)}, D1)
    assert [p.symbol for p in pf.open_positions.values()] == ["A"]
    assert pf.stats["skipped_cash"] == 1
    failed = pf.signals[out.signal_ids[1]]
    assert failed.status == "failed" and (failed.failure_reason or "").startswith("insufficient cash")
    assert pf.cash == pytest.approx(100_000 - 60_000 - pf.open_positions[1].entry_charges)
    assert pf.free_slots == 2


def test_cash_and_pnl_follow_fills_and_charges() -> None:
    pf = make(charges="zerodha_delivery")
    pf.record_signals(D0, [cand("A", 90)], D0)
    pf.process_bars(D1, {"A": (100.0, 101.0, 99.0, 100.0)}, D1)
    pos = pf.open_positions[1]
    assert pos.quantity == 100 and pos.entry_charges == 11.92  # 10 + 0.345 + 0.01 + 1.5 + 0.0639
    pf.close_position(pos.position_id, D2, 110.0, D2)
    assert pos.exit_reason == "manual"
    assert pos.realized_pnl == round(1000 - 11.92 - pos.exit_charges, 2)
    assert pf.cash == round(100_000 + pos.realized_pnl, 2)


def test_events_are_recorded_for_the_whole_trade_lifecycle() -> None:
    pf = make()
    pf.record_signals(D0, [cand("A", 90)], D0)
    pf.process_bars(D1, {"A": (100.0, 101.0, 99.0, 100.0)}, D1)
    pf.process_bars(D2, {"A": (89.0, 90.0, 88.0, 89.5)}, D2)  # gap through the 90.00 stop
    types = [e.type for e in pf.collect_events()]
    assert types == ["PortfolioDeployed", "SignalGenerated", "SignalApproved", "OrderPlaced", "FillRecorded",
                     "PositionOpened", "DayClosed", "PositionClosed", "DayClosed"]


def test_rehydrated_portfolio_equals_the_live_one() -> None:
    pf = make(max_per_sector=2, charges="zerodha_delivery")
    pf.record_signals(D0, [cand("A", 90), cand("B", 80, "Bank"), cand("C", 70)], D0)
    pf.process_bars(D1, {"A": (100.0, 101.0, 99.0, 100.0), "B": (50.0, 51.0, 49.0, 50.5)}, D1)
    pf.record_exit_signals(D1, ["A"], D1)
    pf.process_bars(D2, {"A": (102.0, 103.0, 101.0, 102.0), "B": (50.0, 51.0, 49.0, 50.5)}, D2)
    events = pf.collect_events()
    # through the JSON-friendly form, as the event store will keep them
    again = rebuild(7, [event_from_data(e.type, e.to_data()) for e in events])
    assert again.cash == pf.cash and again.equity == pf.equity
    assert {k: (p.symbol, p.status, p.exit_reason, p.bars_held) for k, p in again.positions.items()} == \
           {k: (p.symbol, p.status, p.exit_reason, p.bars_held) for k, p in pf.positions.items()}
    assert {k: s.status for k, s in again.signals.items()} == {k: s.status for k, s in pf.signals.items()}
    assert again.free_slots == pf.free_slots and again.version == len(events)


def test_manual_approval_path_places_and_reports_fill() -> None:
    pf = make(mode="live", auto=False, max_positions=1)
    out = pf.record_signals(D0, [cand("A", 90), cand("B", 80)], D0)
    (sid,) = out.signal_ids
    assert pf.signals[sid].status == "pending_approval"
    pf.approve_signal(sid, D0 + "T17:00")
    pf.place_signal(sid, D1 + "T09:00", day=D1, gtt_id="G1")
    pf.process_bars(D1, {"A": (100.0, 101.0, 99.0, 100.0)}, D1)  # live: no simulated fill
    assert not pf.open_positions
    pid = pf.record_fill(sid, D1, 100.35, D1 + "T09:20")
    assert pf.signals[sid].status == "executed" and pf.positions[pid].entry_price == 100.35
    pf.close_position(pid, D2, 108.0, D2 + "T10:00", reason="target")
    assert pf.positions[pid].exit_reason == "target"


def _two_signals_one_slot(max_per_sector: int | None = None, sectors: tuple[str, str] = ("IT", "IT")) -> Portfolio:
    """Two pending signals competing for one slot (e.g. scanned by separate scans of two devices)."""
    pf = make(auto=False, max_positions=2)
    assert len(pf.record_signals(D0, [cand("A", 90, sectors[0]), cand("B", 80, sectors[1])], D0).signal_ids) == 2
    events = pf.collect_events()
    # the limits were tightened in the stored deployment: the approval must enforce them itself
    deployed = events[0]
    assert isinstance(deployed, PortfolioDeployed)
    events[0] = dataclasses.replace(deployed, max_positions=1 if max_per_sector is None else 2,
                                    max_per_sector=max_per_sector)
    return rebuild(7, events)


def test_approval_refused_when_max_positions_reached() -> None:
    pf = _two_signals_one_slot()
    pf.approve_signal(1, D0)
    with pytest.raises(DomainError, match="max_positions"):
        pf.approve_signal(2, D0)
    assert pf.signals[2].status == "pending_approval"


def test_approval_refused_when_sector_full() -> None:
    pf = _two_signals_one_slot(max_per_sector=1, sectors=("Bank", "Bank"))
    pf.approve_signal(1, D0)
    with pytest.raises(DomainError, match="max_per_sector"):
        pf.approve_signal(2, D0)


def test_approved_twice_is_an_illegal_transition() -> None:
    pf = make(auto=False)
    (sid,) = pf.record_signals(D0, [cand("A", 90)], D0).signal_ids
    pf.approve_signal(sid, D0)
    with pytest.raises(InvalidTransition, match="in_cart"):
        pf.approve_signal(sid, D0)


def test_illegal_transitions_name_the_status() -> None:
    pf = make()
    (sid,) = pf.record_signals(D0, [cand("A", 90)], D0).signal_ids
    with pytest.raises(InvalidTransition, match="placed"):
        pf.reject_signal(sid, D0)
    with pytest.raises(NotFound):
        pf.approve_signal(999, D0)
    with pytest.raises(NotFound):
        pf.close_position(5, D0, 1.0, D0)


def test_pause_stops_entries_but_not_exits() -> None:
    pf = make()
    pf.record_signals(D0, [cand("A", 90)], D0)
    pf.process_bars(D1, {"A": (100.0, 101.0, 99.0, 100.0)}, D1)
    pf.pause(D1)
    assert pf.record_signals(D1, [cand("B", 90)], D1).paused
    pf.process_bars(D2, {"A": (80.0, 81.0, 79.0, 80.0)}, D2)
    assert pf.closed_positions[0].exit_reason == "stop_loss"
    pf.resume(D2)
    assert pf.record_signals(D2, [cand("B", 90)], D2).signal_ids


def test_retire_refused_with_open_positions_and_reset_refused_for_live() -> None:
    pf = make()
    pf.record_signals(D0, [cand("A", 90)], D0)
    pf.process_bars(D1, {"A": (100.0, 101.0, 99.0, 100.0)}, D1)
    with pytest.raises(Conflict, match="open position"):
        pf.retire(D1)
    pf.reset(D1)
    assert pf.cash == 100_000 and not pf.open_positions and pf.free_slots == 3
    pf.retire(D2)
    assert pf.status == "retired"
    live = make(mode="live")
    with pytest.raises(DomainError, match="paper"):
        live.reset(D1)


def test_retiring_a_live_portfolio_leaves_its_placed_entries_for_the_agent_to_withdraw() -> None:
    live = make(mode="live", auto=False)
    placed, waiting = live.record_signals(D0, [cand("A", 90), cand("B", 80)], D0).signal_ids
    live.approve_signal(placed, D0)
    live.place_signal(placed, D0, gtt_id="1001")
    live.retire(D1)
    assert live.signals[waiting].status == "expired"  # never at the broker
    assert live.signals[placed].status == "placed"  # its GTT is at Kite until the agent deletes it
    live.withdraw_entry(placed, "portfolio retired; GTT 1001 deleted at Kite", D1)
    assert live.signals[placed].status == "expired" and live.free_slots == 3
    with pytest.raises(InvalidTransition, match="only a placed live entry"):
        live.withdraw_entry(placed, "again", D1)
    paper = make(auto=True)
    (sid,) = paper.record_signals(D0, [cand("A", 90)], D0).signal_ids
    with pytest.raises(InvalidTransition, match="only a placed live entry"):
        paper.withdraw_entry(sid, "no broker", D0)


def test_unplaced_signal_expires_after_validity() -> None:
    pf = make(auto=False)
    (sid,) = pf.record_signals(D0, [cand("A", 90)], D0).signal_ids
    pf.process_bars(D1, {}, D1)
    assert pf.signals[sid].status == "pending_approval"
    pf.process_bars(D2, {}, D2)
    assert pf.signals[sid].status == "expired" and pf.free_slots == 3


def test_deploy_validates_limits_with_actionable_messages() -> None:
    with pytest.raises(DomainError, match="max_positions"):
        make(max_positions=0)
    with pytest.raises(DomainError, match="position_size_pct"):
        make(position_size_pct=120)
    with pytest.raises(DomainError, match="max_per_sector"):
        make(max_per_sector=0)
    with pytest.raises(DomainError, match="capital"):
        make(capital=0)


def test_ids_passed_in_number_the_signals_and_make_exits_signals_of_their_own() -> None:
    """A live or paper portfolio's command passes the platform's id source; a backtest passes none: the
    portfolio numbers its own and only flags a position to exit. Nothing of either is kept on it."""
    backtest, paper = make(), make()
    numbers = iter(range(500, 600))
    for pf, ids in ((backtest, None), (paper, lambda kind: next(numbers))):
        pf.record_signals(D0, [cand("A", 90)], D0, ids=ids)
        pf.process_bars(D1, {"A": (100.0, 101.0, 99.0, 100.0)}, D1, ids=ids)
        pf.record_exit_signals(D1, ["A"], D1, reasons={"A": "rule"}, ids=ids)
    assert list(backtest.signals) == [1] and list(paper.signals) == [500]
    assert list(backtest.positions) == [1] and list(paper.positions) == [501]
    assert backtest.exit_signals == {} and paper.exit_signals == {502: 501}
    fresh = rebuild(paper.portfolio_id, paper.collect_events())
    assert vars(fresh).keys() == vars(paper).keys()  # nothing attached for the command's own use
