"""FIFO lots, realized P&L, terms, corporate actions, charges of a known contract note, XIRR textbook cases."""

from __future__ import annotations

from datetime import date

import pytest

from domain.charges import charges
from domain.pnl import Action, Fill, intraday_quantities, match_fifo, term_of, trade_charges
from domain.xirr import xirr, xirr_detail


def f(key: str, day: str, side: str, qty: float, price: float, symbol: str = "X", seq: str = "") -> Fill:
    return Fill(key, symbol, day, seq or key, side, qty, price)


def test_partial_sells_consume_the_oldest_lots_first() -> None:
    r = match_fifo([f("b1", "2024-01-01", "buy", 10, 100), f("b2", "2024-02-01", "buy", 10, 110),
                    f("s1", "2024-03-01", "sell", 15, 120), f("s2", "2024-04-01", "sell", 3, 90)])
    assert [(m.buy_key, m.quantity, m.gross_pnl) for m in r.matches] == [
        ("b1", 10, 200.0), ("b2", 5, 50.0), ("b2", 3, -60.0)]
    assert [(lot.buy_key, lot.quantity, lot.price) for lot in r.lots] == [("b2", 2, 110)]
    assert r.unmatched == []


def test_same_day_round_trip_is_intraday_and_leaves_older_lots() -> None:
    r = match_fifo([f("old", "2023-01-02", "buy", 5, 50), f("s", "2024-01-02", "sell", 4, 60, seq="2"),
                    f("b", "2024-01-02", "buy", 4, 55, seq="1")])
    assert [(m.buy_key, m.term, m.gross_pnl) for m in r.matches] == [("b", "intraday", 20.0)]
    assert [(lot.buy_key, lot.quantity) for lot in r.lots] == [("old", 5)]


def test_terms_by_holding_period() -> None:
    assert term_of("2023-03-01", "2024-03-01") == "short"  # exactly a year is not more than twelve months
    assert term_of("2023-03-01", "2024-03-02") == "long"
    assert term_of("2024-02-29", "2025-03-01") == "short" and term_of("2024-02-29", "2025-03-02") == "long"


def test_split_and_bonus_adjust_open_lots() -> None:
    split = match_fifo([f("b", "2024-01-01", "buy", 10, 1000), f("s", "2024-03-01", "sell", 50, 210)],
                       [Action("X", "2024-02-01", "split", 5, 1)])
    assert [(m.quantity, m.buy_price, m.gross_pnl, m.buy_date) for m in split.matches] == [
        (50, 200.0, 500.0, "2024-01-01")]
    # bonus 1:1 - ten more shares at nil cost, acquired on the ex-date; FIFO sells the original lot first
    bonus = match_fifo([f("b", "2024-01-01", "buy", 10, 100), f("s", "2024-06-03", "sell", 15, 80)],
                       [Action("X", "2024-02-01", "bonus", 1, 1)])
    assert [(m.quantity, m.gross_pnl, m.buy_date) for m in bonus.matches] == [
        (10, -200.0, "2024-01-01"), (5, 400.0, "2024-02-01")]
    assert [(lot.quantity, lot.price) for lot in bonus.lots] == [(5, 0.0)]


def test_sell_without_history_is_unmatched() -> None:
    r = match_fifo([f("s", "2024-01-02", "sell", 3, 10)])
    assert r.matches == [] and r.unmatched == [("s", 3)]


def test_charges_of_a_known_contract_note() -> None:
    """Reference §5.2: buy 10 x 1,500 on NSE at current rates: STT 15.00, exchange 0.4605 -> 0.46, SEBI
    0.015 -> 0.02 (half-up), stamp 2.25, GST 18 % of 0.48 = 0.0864 -> 0.09; total 17.82."""
    c = charges("buy", 10, 1500.0, "2026-03-02")
    assert (c.stt, c.exchange_txn, c.sebi_fee, c.stamp_duty, c.gst, c.total) == (15.0, 0.46, 0.02, 2.25, 0.09, 17.82)
    # one sell order filled in two trades on one day pays the DP charge once
    fills = [f("a", "2026-03-02", "sell", 6, 1500.0), f("b", "2026-03-02", "sell", 4, 1500.0)]
    ch = trade_charges(fills)
    assert ch["a"] == round(charges("sell", 6, 1500.0, "2026-03-02").total, 2)
    assert ch["b"] == round(charges("sell", 4, 1500.0, "2026-03-02").total - 15.34, 2)


def test_shares_squared_off_the_same_day_are_charged_as_intraday() -> None:
    """2026-03-02 (NSE 0.00307 %): an old lot of 5, then buy 10 x 1,500 and sell 12 x 1,510 the same day.
    The 10 bought that day and 10 of the 12 sold are intraday; 2 sold shares leave the demat (delivery).
    Each component half-up to the paisa. Intraday buy, 15,000: brokerage 4.50 + NSE 0.46 + SEBI 0.02
    + stamp 0.45 + GST 18 % of 4.98 = 0.90 -> 6.33. Intraday sell of 10, 15,100: brokerage 4.53 + STT 3.78
    (3.775) + NSE 0.46 + SEBI 0.02 + GST 0.90 -> 9.69. Delivery sell of 2, 3,020: STT 3.02 + NSE 0.09
    + SEBI 0.00 + GST 0.02 + DP 15.34 -> 18.47."""
    fills = [f("old", "2026-02-02", "buy", 5, 1400.0), f("b", "2026-03-02", "buy", 10, 1500.0),
             f("s", "2026-03-02", "sell", 12, 1510.0)]
    assert intraday_quantities(fills) == {"b": 10, "s": 10}
    ch = trade_charges(fills)
    assert (ch["b"], ch["s"]) == (6.33, round(9.69 + 18.47, 2))
    assert ch["old"] == charges("buy", 5, 1400.0, "2026-02-02").total  # another day: delivery
    c = charges("sell", 10, 1510.0, "2026-03-02", "zerodha_intraday")
    # STT 0.025 % of 15,100 is 3.775 exactly: half-up on the decimal gives 3.78 (binary round() gave 3.77)
    assert (c.brokerage, c.stt, c.stamp_duty, c.dp_charge, c.total) == (4.53, 3.78, 0.0, 0.0, 9.69)
    # a large order pays the Rs 20 cap, not 0.03 %
    assert charges("buy", 1000, 1500.0, "2026-03-02", "zerodha_intraday").brokerage == 20.0


def test_match_charges_are_shared_by_quantity() -> None:
    r = match_fifo([Fill("b", "X", "2024-01-01", "1", "buy", 10, 100, charges=10.0),
                    Fill("s", "X", "2024-02-01", "2", "sell", 4, 120, charges=2.0)])
    m = r.matches[0]
    assert (m.gross_pnl, m.charges, m.net_pnl) == (80.0, 6.0, 74.0)
    assert r.lots[0].charges == pytest.approx(6.0)


def test_xirr_textbook_cases() -> None:
    # Excel's documented XIRR example: 0.373362535
    flows = [("2008-01-01", -10000), ("2008-03-01", 2750), ("2008-10-30", 4250), ("2009-02-15", 3250),
             ("2009-04-01", 2750)]
    assert xirr(flows) == pytest.approx(0.373362535, abs=1e-8)
    assert xirr([("2023-01-01", -1000), ("2024-01-01", 1100)]) == pytest.approx(0.10, abs=1e-9)
    # a total loss of 99 % over a year: Newton overshoots below -1, bisection finds it
    assert xirr([("2023-01-01", -1000), ("2024-01-01", 10)]) == pytest.approx(-0.99, abs=1e-6)
    assert xirr([("2023-01-01", -1000), ("2023-02-01", -5)]) is None  # no sign change, no rate
    assert xirr([]) is None


def test_xirr_with_two_roots_returns_the_one_nearest_the_simple_annualized_return() -> None:
    # -100, +495 a year later, -222.5 a year after that: NPV is zero at -50 % and at +345 % a year.
    # Money out / money in = 495 / 322.5 over two years: about +24 % a year, so -50 % is the nearer root.
    flows = [("2021-01-01", -100.0), ("2022-01-01", 495.0), ("2023-01-01", -222.5)]
    d = xirr_detail(flows)
    assert d.roots == pytest.approx([-0.5, 3.45], abs=1e-6)
    assert d.simple_annualized == pytest.approx((495 / 322.5) ** 0.5 - 1, abs=1e-3)
    assert d.rate == pytest.approx(-0.5, abs=1e-8)
    assert xirr(flows) == d.rate
    # and when the simple return is nearer the high root, that one is returned
    flows2 = [("2021-01-01", -100.0), ("2022-01-01", 230.0), ("2023-01-01", -132.0)]  # roots 10 % and 20 %
    assert xirr_detail(flows2).roots == pytest.approx([0.1, 0.2], abs=1e-6)
    assert xirr(flows2) == pytest.approx(0.1, abs=1e-8)  # simple: 230 / 232 -> -0.4 % a year


def test_xirr_without_a_rate_says_why() -> None:
    assert xirr_detail([("2023-01-01", -1000), ("2023-02-01", -5)]).reason == "one_sign"
    assert xirr_detail([]).reason == "no_flows"
    # in, out, in with no real root: NPV(r) = -100 + 150 / (1 + r) - 100 / (1 + r)^2 < 0 everywhere
    d = xirr_detail([("2021-01-01", -100.0), ("2022-01-01", 150.0), ("2023-01-01", -100.0)])
    assert (d.rate, d.reason) == (None, "no_root")


def test_xirr_with_a_bad_guess_still_converges() -> None:
    flows = [("2020-01-01", -100), ("2020-07-01", -100), ("2021-01-01", 10), ("2022-01-01", 500)]
    r = xirr(flows, guess=50.0)
    assert r is not None
    npv = sum(cf / (1 + r) ** ((date.fromisoformat(d) - date(2020, 1, 1)).days / 365) for d, cf in flows)
    assert abs(npv) < 1e-6


def test_intraday_brokerage_is_capped_per_order_not_per_trade() -> None:
    """One buy order and one sell order of 200 x ~1,000 (intraday brokerage 0.03 % = Rs 60 > the Rs 20
    cap), each executed as two trades: the order pays the cap once, as if it had been one trade."""
    def trade(key: str, side: str, qty: float, price: float, order: str) -> Fill:
        return Fill(key, "X", "2026-03-02", key, side, qty, price, order=order)

    whole = trade_charges([trade("b", "buy", 200, 1000.0, "B"), trade("s", "sell", 200, 1010.0, "S")])
    split = trade_charges([trade("b1", "buy", 120, 1000.0, "B"), trade("b2", "buy", 80, 1000.0, "B"),
                           trade("s1", "sell", 150, 1010.0, "S"), trade("s2", "sell", 50, 1010.0, "S")])
    assert abs(split["b1"] + split["b2"] - whole["b"]) <= 0.01
    assert abs(split["s1"] + split["s2"] - whole["s"]) <= 0.01
    assert whole["b"] == charges("buy", 200, 1000.0, "2026-03-02", "zerodha_intraday").total
    # without order ids each trade is its own order and pays its own cap: Rs 20 + GST more per side
    alone = trade_charges([trade("b1", "buy", 120, 1000.0, ""), trade("b2", "buy", 80, 1000.0, ""),
                           trade("s1", "sell", 150, 1010.0, ""), trade("s2", "sell", 50, 1010.0, "")])
    assert alone["b1"] + alone["b2"] - whole["b"] == pytest.approx(20 * 1.18, abs=0.02)


def test_intraday_and_delivery_matches_carry_their_own_charges() -> None:
    """Buy 100 x 1,000 on 2026-03-02, sell 40 x 1,010 that day and 60 x 1,050 on 2026-03-12: the intraday
    match carries the intraday charges of 40 bought and 40 sold, the delivery match the delivery charges of
    the other 60 bought and the 60 sold (not a share by quantity of each trade's total)."""
    r = match_fifo([f("b", "2026-03-02", "buy", 100, 1000.0, seq="1"), f("s1", "2026-03-02", "sell", 40, 1010.0,
                                                                         seq="2"),
                    f("s2", "2026-03-12", "sell", 60, 1050.0)], schedule="zerodha_delivery")
    intraday, delivery = r.matches
    assert (intraday.term, intraday.quantity, delivery.term, delivery.quantity) == ("intraday", 40, "short", 60)
    assert intraday.charges == round(charges("buy", 40, 1000.0, "2026-03-02", "zerodha_intraday").total
                                     + charges("sell", 40, 1010.0, "2026-03-02", "zerodha_intraday").total, 2)
    assert delivery.charges == round(charges("buy", 60, 1000.0, "2026-03-02").total
                                     + charges("sell", 60, 1050.0, "2026-03-12").total, 2)
    # the trades' charges are the same figures trade_charges gives, and the matches add up to them
    assert r.charges == trade_charges([f("b", "2026-03-02", "buy", 100, 1000.0, seq="1"),
                                       f("s1", "2026-03-02", "sell", 40, 1010.0, seq="2"),
                                       f("s2", "2026-03-12", "sell", 60, 1050.0)])
    assert intraday.charges + delivery.charges == pytest.approx(sum(r.charges.values()), abs=0.02)
