"""The model-portfolio and risk read models, driven by a real Portfolio and RiskBook through a paper
trading scenario, projected on SQLite and Postgres, read back through the query functions the API calls."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from domain.aggregate import Aggregate
from domain.money import format_inr, format_number
from domain.portfolio.aggregate import Portfolio
from domain.risk import EntryRequest, Exposure, RiskBook, check_entry
from domain.sizing import Candidate
from infra.store.db import Database
from projections.envelope import Envelope
from projections.portfolios.projector import PortfoliosProjection
from projections.portfolios.queries import (
    active_portfolio_rows,
    activity,
    equity_curve,
    get_portfolio,
    get_position,
    get_signal,
    in_cart_signal_ids,
    list_portfolios,
    list_positions,
    list_signals,
    overdue_signal_ids,
    portfolio_ids_using_strategy,
)
from projections.risk import RiskProjection, get_risk_rule, list_risk_rules, orders_on, risk_breaches
from streams.runner import ProjectionRunner
from streams.sources import STORE_SHARD, Item, Tracking

ACCOUNT = 7
D0, D1, D2, D3, D4, D5 = "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05", "2024-01-08", "2024-01-09"
STRATEGY = {
    "base_model": "sma_crossover",
    "exit_rules": {"stop_loss_pct": 5, "target_pct": 10, "trailing_stop_pct": 3, "max_hold_days": None,
                   "exit_when": None},
    "params": {"entry_order": "next_open", "entry_validity_days": 1},
}


class ListSource:
    """An event source over an in-memory list of envelopes (the store's log, as the runner sees it)."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.redeliver = False  # the next fetch hands over the whole log again, as a republishing relay would

    def shards(self) -> Sequence[str]:
        return [STORE_SHARD]

    def fetch(self, tracking: Tracking, max_items: int) -> list[Item]:
        if self.redeliver:
            self.redeliver = False
            return [Item(STORE_SHARD, None, e) for e in self.envelopes]
        after = tracking().get(STORE_SHARD, (0, None))[0]
        return [Item(STORE_SHARD, None, e) for e in self.envelopes if e.position > after][:max_items]

    def reset(self) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass
class World:
    """The aggregates, the event log they wrote and a projector applying it to a real database."""

    db: Database
    source: ListSource
    runner: ProjectionRunner
    clock: datetime = field(default_factory=lambda: datetime(2024, 1, 2, 10, 30, tzinfo=UTC))
    ids: dict[str, Iterator[int]] = field(default_factory=lambda: {
        "signal": itertools.count(100), "position": itertools.count(500), "rule": itertools.count(900)})

    def next_id(self, kind: str) -> int:
        return next(self.ids[kind])

    def at(self, day: str, hhmm: str = "16:00") -> str:
        """The caller's `at`, and the store clock moved to it (events are stamped in UTC)."""
        self.clock = datetime.fromisoformat(f"{day}T{hhmm}:00+05:30").astimezone(UTC)
        return self.clock.isoformat()

    def save(self, *aggs: Aggregate) -> None:
        """What the unit of work does: each aggregate's new events become envelopes in the log."""
        for agg in aggs:
            pending = agg.collect_events()
            first_version = agg.version - len(pending) + 1
            for i, event in enumerate(pending):
                self.clock += timedelta(milliseconds=1)
                self.source.envelopes.append(Envelope(
                    event_id=str(uuid.uuid4()), type=event.type, schema_version=event.schema_version,
                    aggregate_type=agg.aggregate_type, aggregate_id=str(agg.aggregate_id),
                    aggregate_version=first_version + i, account_id=agg.account_id,
                    occurred_at=self.clock.isoformat(), position=len(self.source.envelopes) + 1,
                    data=event.to_data(), meta={"actor": "test"},
                ))

    def sync(self, *aggs: Aggregate) -> None:
        self.save(*aggs)
        while self.runner.step():
            pass

    def q(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        with self.db.read() as conn:
            return fn(conn, *args, **kwargs)

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        out: dict[str, list[tuple[Any, ...]]] = {}
        with self.db.read() as conn:
            for p in self.runner.projections:
                for table in p.metadata.sorted_tables:
                    rows = conn.execute(sa.select(table).order_by(*table.primary_key.columns)).all()
                    out[table.name] = [tuple(r) for r in rows]
        return out


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    db = Database.from_url(database_url)
    source = ListSource()
    runner = ProjectionRunner(db, [PortfoliosProjection(), RiskProjection()], source, batch_size=7)
    runner.create_tables()
    try:
        yield World(db, source, runner)
    finally:
        db.dispose()


def cand(symbol: str, sector: str, conviction: float, close: float) -> Candidate:
    return Candidate(symbol, sector, conviction, close, reason=f"sma_20 crossed above sma_50 at {close}")


def deploy(w: World, portfolio_id: int, name: str) -> Portfolio:
    pf = Portfolio.deploy(portfolio_id, name=name, mode="paper", strategy=STRATEGY, capital=1_000_000,
                          position_size_pct=10, max_positions=5, max_per_sector=2, auto_approve=False,
                          slippage_bps=5, charges="zerodha_delivery", universe="NIFTY50", strategy_id=3,
                          account_id=ACCOUNT, day=D0, at=w.at(D0, "10:30"))
    return pf


def statuses(w: World, portfolio_id: int) -> dict[int, str]:
    rows, _ = w.q(list_signals, ACCOUNT, portfolio_id=portfolio_id, limit=500, offset=0)
    return {r["id"]: r["status"] for r in rows}


def assert_money_matches(w: World, pf: Portfolio) -> dict[str, Any]:
    got = w.q(get_portfolio, pf.portfolio_id)
    assert got["cash"] == pf.cash and got["equity"] == pf.equity and got["day_pnl"] == pf.day_pnl
    assert got["invested"] == round(pf.equity - pf.cash, 2)
    assert got["open_positions"] == len(pf.open_positions)
    return dict(got)


def test_a_paper_portfolio_reads_back_as_the_aggregate_sees_it(world: World) -> None:
    w = world
    book = RiskBook.open(ACCOUNT)
    pf = deploy(w, 41, "Momentum 41")
    other = deploy(w, 42, "Spare")
    book.register_portfolio(41, w.at(D0, "10:31"))
    book.register_portfolio(42, w.at(D0, "10:31"))
    w.sync(pf, other, book)

    rows, total = w.q(list_portfolios, ACCOUNT, None, 50, 0)
    assert total == 2 and [r["id"] for r in rows] == [42, 41]  # newest first
    got = w.q(get_portfolio, 41)
    assert got["account_id"] == ACCOUNT and got["status"] == "active" and got["cash"] == 1_000_000.0
    assert got["equity"] == 1_000_000.0 and got["deployed_on"] == D0
    assert got["strategy"]["base_model"] == "sma_crossover"
    assert (got["pending_signals"], got["in_cart_signals"], got["open_positions"]) == (0, 0, 0)
    assert w.q(portfolio_ids_using_strategy, 3) == 2 and w.q(get_portfolio, 999) is None

    # ---- risk rules: create, update, delete
    r_open, r_block, r_loss = w.next_id("rule"), w.next_id("rule"), w.next_id("rule")
    book.create_rule(r_open, "max_open_positions", 41, 4, None, None, "four at most", w.at(D0, "11:00"))
    book.create_rule(r_block, "blocked_symbols", 41, None, None, ["itc"], "no tobacco", w.at(D0, "11:01"))
    book.create_rule(r_loss, "max_daily_loss", 41, 1.5, "pct", None, "", w.at(D0, "11:02"))
    w.sync(book)
    book.update_rule(r_open, "max_open_positions", None, 6, None, None, "six, account-wide", w.at(D0, "11:05"))
    w.sync(book)
    rules = w.q(list_risk_rules, ACCOUNT)
    assert [(r["id"], r["rule_type"], r["scope"], r["portfolio_id"], r["value"]) for r in rules] == [
        (r_open, "max_open_positions", "account", None, 6.0), (r_block, "blocked_symbols", "portfolio", 41, None),
        (r_loss, "max_daily_loss", "portfolio", 41, 1.5)]
    assert rules[1]["symbols"] == ["ITC"] and rules[2]["unit"] == "pct" and not any(r["auto"] for r in rules)
    assert rules[0]["note"] == "six, account-wide" and rules[0]["updated_at"] > rules[0]["created_at"]
    assert w.q(get_risk_rule, r_block)["account_id"] == ACCOUNT and w.q(list_risk_rules, ACCOUNT + 1) == []

    # ---- the scan after D0's close: four pending signals
    scan = pf.record_signals(D0, [cand("INFY", "IT", 71.2, 1520.5), cand("TCS", "IT", 65.0, 3800.0),
                                  cand("HDFCBANK", "Bank", 60.0, 1650.0), cand("ITC", "FMCG", 50.0, 450.0)],
                             w.at(D0, "16:05"), ids=w.next_id)
    infy, tcs, hdfc, itc = scan.signal_ids
    w.sync(pf)
    assert statuses(w, 41) == {i: "pending_approval" for i in (infy, tcs, hdfc, itc)}
    s = w.q(get_signal, infy)
    sig = pf.signals[infy]
    assert (s["side"], s["kind"], s["symbol"], s["exchange"], s["sector"]) == ("buy", "entry", "INFY", "NSE", "IT")
    assert (s["portfolio_id"], s["account_id"], s["strategy_id"], s["quantity"]) == (41, ACCOUNT, 3, sig.quantity)
    assert (s["reference_price"], s["limit_price"], s["stop_loss"], s["target"]) == (
        1520.5, None, sig.stop_loss, sig.target)
    assert s["conviction"] == 71.2 and s["reason"].startswith("sma_20") and s["created_at"].endswith("Z")
    assert s["expires_at"] == "2024-01-03T15:30:00+05:30"  # one trading day after D0, at the close
    assert w.q(get_portfolio, 41)["pending_signals"] == 4

    # ---- approve two, reject one, the blocked one is refused by the risk rules
    pf.approve_signal(infy, w.at(D0, "17:00"))
    pf.approve_signal(tcs, w.at(D0, "17:00"))
    pf.reject_signal(hdfc, w.at(D0, "17:01"), reason="too close to results")
    req = EntryRequest(41, "ITC", "FMCG", 450.0 * pf.signals[itc].quantity, counts_as_order=False,
                       already_committed=False)
    breaches = check_entry(book.rules.values(), req, {"account": Exposure(), "portfolio": pf.exposure()})
    assert [b.rule.rule_id for b in breaches] == [r_block]
    book.record_breaches(breaches, action="approve", portfolio_id=41, signal_id=itc, symbol="ITC", day=D0,
                         at=w.at(D0, "17:02"))
    w.sync(pf, book)
    assert statuses(w, 41) == {infy: "in_cart", tcs: "in_cart", hdfc: "rejected", itc: "pending_approval"}
    assert w.q(get_signal, hdfc)["failure_reason"] == "too close to results"
    assert w.q(in_cart_signal_ids, ACCOUNT) == [(41, infy), (41, tcs)]
    assert w.q(in_cart_signal_ids, ACCOUNT, 42) == [] and w.q(in_cart_signal_ids, ACCOUNT + 1) == []
    assert w.q(overdue_signal_ids, "2024-01-03T10:00:00Z") == []  # 15:30 IST exactly: not before it
    assert w.q(overdue_signal_ids, "2024-01-03T15:30:01+05:30") == [(ACCOUNT, 41, i) for i in (infy, tcs, itc)]
    assert w.q(overdue_signal_ids, "2024-01-03T10:00:01") == [(ACCOUNT, 41, i) for i in (infy, tcs, itc)]
    got = w.q(get_portfolio, 41)
    assert (got["pending_signals"], got["in_cart_signals"]) == (1, 2)
    (breach,) = w.q(risk_breaches, ACCOUNT, D0)
    assert (breach["rule_id"], breach["rule_type"], breach["signal_id"], breach["symbol"], breach["action"]) == (
        r_block, "blocked_symbols", itc, "ITC", "approve")
    assert "ITC is blocked" in breach["message"] and w.q(risk_breaches, ACCOUNT, D1) == []

    # ---- the cart is placed (GTT ids from the broker); orders are counted
    pf.place_signal(infy, w.at(D0, "17:10"), day=D0, gtt_id="GTT-1")
    pf.place_signal(tcs, w.at(D0, "17:10"), day=D0, gtt_id="GTT-2")
    book.count_order(41, infy, D0, w.at(D0, "17:10"))
    book.count_order(41, tcs, D0, w.at(D0, "17:10"))
    w.sync(pf, book)
    s = w.q(get_signal, infy)
    assert (s["status"], s["gtt_id"], s["order_id"]) == ("placed", "GTT-1", None)
    assert s["expires_at"] == "2024-01-03T15:30:00+05:30"
    assert w.q(overdue_signal_ids, "2024-01-04T10:00:00Z") == [(ACCOUNT, 41, itc)]  # placed ones are not overdue
    assert w.q(orders_on, ACCOUNT, D0) == 2 and w.q(orders_on, ACCOUNT, D0, 42) == 0
    assert w.q(orders_on, ACCOUNT, D1) == 0

    # ---- D1: both entries fill at the open; the trailing stop ratchets after the close
    pf.process_bars(D1, {"INFY": (1525.0, 1540.0, 1515.0, 1535.0), "TCS": (3810.0, 3850.0, 3790.0, 3840.0)},
                    w.at(D1, "16:00"), ids=w.next_id)
    events_d1 = [e.type for e in pf._pending]
    assert "StopUpdated" in events_d1
    w.sync(pf)
    p_infy, p_tcs = pf.signals[infy].position_id, pf.signals[tcs].position_id
    assert p_infy is not None and p_tcs is not None
    s = w.q(get_signal, infy)
    assert (s["status"], s["fill_price"], s["filled_quantity"], s["position_id"]) == (
        "executed", pf.signals[infy].fill_price, pf.signals[infy].quantity, p_infy)
    pos, agg_pos = w.q(get_position, p_infy), pf.positions[p_infy]
    assert (pos["status"], pos["symbol"], pos["quantity"], pos["avg_price"], pos["entry_date"]) == (
        "open", "INFY", agg_pos.quantity, agg_pos.entry_price, D1)
    assert (pos["stop_loss"], pos["target"], pos["last_price"], pos["unrealized_pnl"]) == (
        agg_pos.stop_loss, agg_pos.target, 1535.0, agg_pos.unrealized_pnl)
    assert pos["stop_loss"] > round(agg_pos.entry_price * 0.95, 2)  # the trail, above the fixed stop
    assert pos["charges"] == agg_pos.entry_charges and pos["exit_price"] is None and pos["realized_pnl"] is None
    assert_money_matches(w, pf)
    open_rows, n_open = w.q(list_positions, ACCOUNT, 41, "open", 50, 0)
    assert n_open == 2 and [r["id"] for r in open_rows] == [p_tcs, p_infy]

    # ---- D2: the unplaced ITC signal expires; exit rules fire for TCS; a Bank entry is cancelled by the
    # kill switch the daily-loss rule engaged
    pf.process_bars(D2, {"INFY": (1540.0, 1560.0, 1530.0, 1555.0), "TCS": (3850.0, 3900.0, 3800.0, 3880.0)},
                    w.at(D2, "16:00"), ids=w.next_id)
    pf.record_exit_signals(D2, ["TCS", "NOTHELD"], w.at(D2, "16:05"), reasons={"TCS": "rsi_14 > 70 (72.40)"},
                           ids=w.next_id)
    exit_sid = pf.positions[p_tcs].exit_signal_id
    assert exit_sid is not None
    (sbin,) = pf.record_signals(D2, [cand("SBIN", "Bank", 58.0, 620.0)], w.at(D2, "16:06"), ids=w.next_id).signal_ids
    pf.approve_signal(sbin, w.at(D2, "16:10"))
    pf.place_signal(sbin, w.at(D2, "16:11"), day=D2)
    book.count_order(41, sbin, D2, w.at(D2, "16:11"))
    ks_rule = w.next_id("rule")
    book.engage_kill_switch(ks_rule, book.rule(r_loss), 16_000.0, 15_000.0, D2, w.at(D2, "16:12"))
    pf.cancel_placed_entries(D2, "kill switch engaged", w.at(D2, "16:12"))
    w.sync(pf, book)
    assert w.q(get_signal, itc)["status"] == "expired"
    assert w.q(get_signal, itc)["failure_reason"] == "not placed in time"
    ex = w.q(get_signal, exit_sid)
    assert (ex["side"], ex["kind"], ex["status"], ex["symbol"], ex["quantity"], ex["position_id"]) == (
        "sell", "exit", "placed", "TCS", pf.positions[p_tcs].quantity, p_tcs)
    assert (ex["reference_price"], ex["reason"], ex["sector"], ex["strategy_id"]) == (
        3880.0, "rsi_14 > 70 (72.40)", "IT", 3)
    assert w.q(get_position, p_tcs)["exit_pending"] is True and w.q(get_position, p_infy)["exit_pending"] is False
    sb = w.q(get_signal, sbin)
    assert (sb["status"], sb["failure_reason"]) == ("failed", "kill switch engaged")
    ks = w.q(get_risk_rule, ks_rule)
    assert (ks["rule_type"], ks["scope"], ks["portfolio_id"], ks["auto"]) == ("kill_switch", "portfolio", 41, True)
    assert ks["note"] == book.rules[ks_rule].note
    daily = w.q(risk_breaches, ACCOUNT, None)
    assert [b["action"] for b in daily] == ["daily_loss", "approve"]  # newest first
    assert (daily[0]["limit"], daily[0]["actual"]) == (15_000.0, 16_000.0)
    assert w.q(orders_on, ACCOUNT, D2) == 1
    assert_money_matches(w, pf)

    # ---- D3: TCS sold at the open (the exit signal executes), INFY reaches its target
    pf.process_bars(D3, {"INFY": (1600.0, 1700.0, 1590.0, 1690.0), "TCS": (3890.0, 3900.0, 3850.0, 3870.0)},
                    w.at(D3, "16:00"), ids=w.next_id)
    book.delete_rule(ks_rule, w.at(D3, "16:01"))
    book.delete_rule(r_block, w.at(D3, "16:01"))
    w.sync(pf, book)
    assert [r["id"] for r in w.q(list_risk_rules, ACCOUNT)] == [r_open, r_loss]
    assert w.q(get_risk_rule, ks_rule) is None
    closed = {p.position_id: p for p in pf.closed_positions}
    assert set(closed) == {p_infy, p_tcs}
    for pid, agg_pos in closed.items():
        pos = w.q(get_position, pid)
        assert (pos["status"], pos["exit_price"], pos["exit_date"], pos["exit_reason"], pos["realized_pnl"]) == (
            "closed", agg_pos.exit_price, D3, agg_pos.exit_reason, agg_pos.realized_pnl)
        assert pos["charges"] == round(agg_pos.entry_charges + agg_pos.exit_charges, 2)
        assert pos["unrealized_pnl"] is None and pos["exit_pending"] is False
    assert (closed[p_infy].exit_reason, closed[p_tcs].exit_reason) == ("target", "signal")
    ex = w.q(get_signal, exit_sid)
    assert (ex["status"], ex["fill_price"], ex["filled_quantity"]) == (
        "executed", closed[p_tcs].exit_price, closed[p_tcs].quantity)
    got = assert_money_matches(w, pf)
    assert got["realized_pnl"] == round(sum(p.realized_pnl or 0.0 for p in closed.values()), 2)
    assert got["invested"] == 0.0 and got["last_day"] == D3
    curve = w.q(equity_curve, 41)
    assert [c["date"] for c in curve] == [D1, D2, D3]
    assert curve[-1] == {"date": D3, "equity": pf.equity, "cash": pf.cash}
    _, n_closed = w.q(list_positions, ACCOUNT, 41, "closed", 50, 0)
    assert n_closed == 2

    feed = w.q(activity, 41, 200)
    assert [a["at"] for a in feed] == sorted((a["at"] for a in feed), reverse=True)
    assert all(a["type"] != "DayClosed" for a in feed)
    summaries = [a["summary"] for a in feed]
    infy_pos, tcs_pos = closed[p_infy], closed[p_tcs]
    assert summaries[0] == (f"Position {p_tcs} closed: TCS at {format_number(tcs_pos.exit_price)} (signal), "
                            f"P&L {format_inr(tcs_pos.realized_pnl, sign=True)}")  # closed after INFY, same open
    assert (f"Position {p_infy} closed: INFY at {format_number(infy_pos.exit_price)} (target), "
            f"P&L {format_inr(infy_pos.realized_pnl, sign=True)}") == summaries[1]
    assert any(s.startswith("Position ") and " opened: " in s and ", stop " in s for s in summaries)
    assert all("_" not in s.split("(")[-1] for s in summaries if "closed:" in s)  # reasons in words
    assert (f"Signal {infy} generated: BUY {pf.signals[infy].quantity} INFY @ 1,520.50 (conviction 71.2)"
            in summaries)
    assert f"Signal {hdfc} rejected: HDFCBANK (too close to results)" in summaries
    assert any(x.startswith(f"Risk limit reached: max_daily_loss rule {r_loss}: portfolio 41 lost ₹16,000.00")
               for x in summaries)
    assert f"Risk rule {r_block} refused the approve of signal {itc}: blocked_symbols rule {r_block}: ITC is " \
           "blocked" in summaries
    assert any(x.startswith(f"Signal {exit_sid}: exit signalled for position {p_tcs}: SELL") for x in summaries)
    assert feed[-1]["type"] == "PortfolioDeployed" and feed[-1]["data"]["portfolio_id"] == 41
    assert [a["type"] for a in w.q(activity, 41, 2)] == [a["type"] for a in feed[:2]]
    assert [a["type"] for a in w.q(activity, 42)] == ["PortfolioDeployed"]

    # ---- D3 scan: MARUTI fills on D4; LT waits in the cart; pause and resume on the way
    (maruti,) = pf.record_signals(D3, [cand("MARUTI", "Auto", 62.0, 10_000.0)], w.at(D3, "16:10"),
                                  ids=w.next_id).signal_ids
    pf.approve_signal(maruti, w.at(D3, "16:11"))
    pf.place_signal(maruti, w.at(D3, "16:12"), day=D3, order_id="ORD-9")
    pf.pause(w.at(D3, "16:20"))
    w.sync(pf)
    assert w.q(get_portfolio, 41)["status"] == "paused"
    assert [r["id"] for r in w.q(list_portfolios, ACCOUNT, "paused", 50, 0)[0]] == [41]
    pf.resume(w.at(D3, "16:30"))
    pf.process_bars(D4, {"MARUTI": (10_010.0, 10_100.0, 9_950.0, 10_050.0)}, w.at(D4, "16:00"), ids=w.next_id)
    (lt,) = pf.record_signals(D4, [cand("LT", "Infra", 57.0, 3500.0)], w.at(D4, "16:05"), ids=w.next_id).signal_ids
    pf.approve_signal(lt, w.at(D4, "16:06"))
    w.sync(pf)
    p_maruti = pf.signals[maruti].position_id
    assert p_maruti is not None and w.q(get_signal, maruti)["order_id"] == "ORD-9"
    assert w.q(get_position, p_maruti)["unrealized_pnl"] == pf.positions[p_maruti].unrealized_pnl
    got = assert_money_matches(w, pf)
    assert got["status"] == "active" and got["in_cart_signals"] == 1

    # ---- reset: back to the capital; the open position and live signal are cleared, history stays
    pf.reset(w.at(D4, "18:00"))
    other.retire(w.at(D4, "18:01"))
    w.sync(pf, other)
    got = assert_money_matches(w, pf)
    assert (got["cash"], got["equity"], got["realized_pnl"], got["day_pnl"]) == (1_000_000.0, 1_000_000.0, 0.0, 0.0)
    assert w.q(get_position, p_maruti)["status"] == "reset"
    assert w.q(list_positions, ACCOUNT, 41, "open", 50, 0) == ([], 0)
    assert w.q(list_positions, ACCOUNT, 41, None, 50, 0)[1] == 3  # history kept
    lt_row = w.q(get_signal, lt)
    assert (lt_row["status"], lt_row["failure_reason"]) == ("expired", "portfolio reset")
    assert w.q(equity_curve, 41) == []  # the curve starts after the reset
    assert [(r["id"], r["status"]) for r in w.q(list_portfolios, ACCOUNT, None, 50, 0)[0]] == [(41, "active")]
    assert [r["id"] for r in w.q(list_portfolios, ACCOUNT, "retired", 50, 0)[0]] == [42]
    assert w.q(portfolio_ids_using_strategy, 3) == 1
    assert w.q(active_portfolio_rows) == [{"id": 41, "account_id": ACCOUNT, "status": "active", "last_day": D4,
                                          "mode": "paper"}]
    assert w.q(activity, 41, 2)[0]["summary"].startswith("Portfolio reset to its capital ₹10,00,000.00")

    pf.process_bars(D5, {}, w.at(D5, "16:00"), ids=w.next_id)
    w.sync(pf)
    assert w.q(equity_curve, 41) == [{"date": D5, "equity": 1_000_000.0, "cash": 1_000_000.0}]
    assert_money_matches(w, pf)
    rows, total = w.q(list_signals, ACCOUNT, status="expired", limit=500, offset=0)
    assert total == 2 and {r["id"] for r in rows} == {itc, lt}
    rows, total = w.q(list_signals, ACCOUNT, symbol="infy", limit=500, offset=0)
    assert total == 1 and rows[0]["id"] == infy
    rows, total = w.q(list_signals, ACCOUNT, limit=3, offset=0)
    every = sorted([*pf.signals, exit_sid], reverse=True)  # exit signals live on their positions
    assert total == len(every) and [r["id"] for r in rows] == every[:3]

    # ---- a rebuild replays the log into fresh tables and yields the same rows
    incremental = w.snapshot()
    assert incremental["rm_portfolio_equity"] and incremental["rm_activity"]
    applied = w.runner.rebuild(len(w.source.envelopes))
    assert applied == len(w.source.envelopes)
    assert w.snapshot() == incremental


def test_the_same_events_delivered_twice_are_applied_once(world: World) -> None:
    w = world
    pf = deploy(w, 43, "Twice")
    pf.record_signals(D0, [cand("INFY", "IT", 71.2, 1520.5)], w.at(D0, "16:05"), ids=w.next_id)
    (sid,) = pf.signals
    pf.approve_signal(sid, w.at(D0, "17:00"))
    pf.place_signal(sid, w.at(D0, "17:01"), day=D0)
    pf.process_bars(D1, {"INFY": (1525.0, 1540.0, 1515.0, 1535.0)}, w.at(D1, "16:00"), ids=w.next_id)
    w.sync(pf)
    first = w.snapshot()
    # a redelivery (e.g. a relay that republished): the tracking position makes the runner skip them
    w.source.redeliver = True
    assert w.runner.step() == len(w.source.envelopes)
    assert w.snapshot() == first
    assert w.q(get_portfolio, 43)["cash"] == pf.cash
