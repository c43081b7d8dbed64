"""Charges against golden contract-note / calculator numbers (reference §5.2)."""

from __future__ import annotations

import dataclasses

import pytest

from domain.charges import charges, rates_on, total_charges


def test_worked_example_buy_10_at_1500_current_rates_is_17_81() -> None:
    c = charges("buy", 10, 1500.0, "2026-03-02")
    assert c.stt == 15.00
    assert c.exchange_txn == 0.46  # 0.4605
    assert c.sebi_fee == pytest.approx(0.02, abs=0.011)  # 0.015 shown to the paisa
    assert c.stamp_duty == 2.25
    assert c.gst == 0.09  # 0.18 x (0.4605 + 0.015) = 0.0856
    assert c.dp_charge == 0.0
    assert c.total == 17.81


def test_worked_example_sell_side_has_no_stamp_and_a_dp_charge() -> None:
    c = charges("sell", 10, 1500.0, "2026-03-02")
    assert c.stamp_duty == 0.0
    assert c.dp_charge == 15.34
    assert c.total == 30.90  # 15 + 0.4605 + 0.015 + 0.0856 + 15.34 = 30.901


def test_kite_order_margins_mock_infy_2022_rate_total_matches() -> None:
    # official mock order_margins.json: INFY buy 1 @ 1498 CNC, brokerage 0.01 (token), NSE 0.00345 %
    # -> STT 1.498, exchange 0.051681, SEBI 0.001498, stamp 0.22, GST 0.01137222, total 1.79255122
    rates = dataclasses.replace(rates_on("2022-06-01"), brokerage=0.01)
    c = charges("buy", 1, 1498.0, "2022-06-01", rates)
    assert rates.exchange_pct == 0.00345
    assert c.stamp_duty == 0.22
    assert c.total == round(1.79255122, 2)
    assert c.gst == round(0.01137222, 2)


def test_zerodha_schedule_has_zero_brokerage_in_2022() -> None:
    # same trade without the token brokerage: 1.498 + 0.051681 + 0.001498 + 0.22 + 0.18 x 0.053179
    assert total_charges("buy", 1, 1498.0, "2022-06-01") == round(1.498 + 0.051681 + 0.001498 + 0.22
                                                                   + 0.18 * (0.051681 + 0.001498), 2)


@pytest.mark.parametrize(("day", "pct", "dp"), [
    ("2020-01-02", 0.00345, 15.93),
    ("2024-09-30", 0.00345, 15.93),
    ("2024-10-01", 0.00297, 15.34),
    ("2026-02-28", 0.00297, 15.34),
    ("2026-03-01", 0.00307, 15.34),
])
def test_rates_are_date_effective(day: str, pct: float, dp: float) -> None:
    r = rates_on(day)
    assert r.exchange_pct == pct
    assert r.dp_charge == dp


def test_exchange_charge_changes_on_2024_10_01() -> None:
    before = charges("buy", 100, 1000.0, "2024-09-30")
    after = charges("buy", 100, 1000.0, "2024-10-01")
    assert before.exchange_txn == 3.45 and after.exchange_txn == 2.97


def test_none_schedule_is_free() -> None:
    assert charges("sell", 100, 1234.5, "2023-01-02", "none").total == 0.0


def test_unknown_side_or_schedule_is_refused() -> None:
    with pytest.raises(ValueError, match="side"):
        charges("short", 1, 10.0, "2023-01-02")
    with pytest.raises(ValueError, match="schedule"):
        charges("buy", 1, 10.0, "2023-01-02", "flat_20")


def test_total_is_rounded_sum_of_exact_components() -> None:
    c = charges("buy", 37, 123.45, "2023-05-05")
    turnover = 37 * 123.45
    exact = (turnover * 0.001 + turnover * 0.0000345 + turnover * 1e-6 + round(turnover * 0.00015, 2)
             + 0.18 * (turnover * 0.0000345 + turnover * 1e-6))
    assert c.total == round(exact, 2)
