"""Charges against golden contract-note / calculator numbers (reference §5.2)."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.charges import charges, rates_on, total_charges


def test_worked_example_buy_10_at_1500_current_rates_is_17_82() -> None:
    # each component half-up to the paisa, the total their sum (the reference's "~17.81" adds the
    # unrounded 0.4605 + 0.015 + 0.0856; a contract note shows and adds the rounded amounts)
    c = charges("buy", 10, 1500.0, "2026-03-02")
    assert c.stt == 15.00
    assert c.exchange_txn == 0.46  # 0.4605
    assert c.sebi_fee == 0.02  # 0.015 half-up
    assert c.stamp_duty == 2.25
    assert c.gst == 0.09  # 0.18 x (0.46 + 0.02) = 0.0864
    assert c.dp_charge == 0.0
    assert c.total == 17.82


def test_worked_example_sell_side_has_no_stamp_and_a_dp_charge() -> None:
    c = charges("sell", 10, 1500.0, "2026-03-02")
    assert c.stamp_duty == 0.0
    assert c.dp_charge == 15.34
    assert c.total == 30.91  # 15 + 0.46 + 0.02 + 0.09 + 15.34


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
    ("2020-12-31", 0.00325, 15.93),
    ("2021-01-01", 0.00345, 15.93),
    ("2023-03-31", 0.00345, 15.93),
    ("2023-04-01", 0.00325, 15.93),
    ("2024-09-30", 0.00325, 15.93),
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
    assert before.exchange_txn == 3.25 and after.exchange_txn == 2.97


def test_the_ipft_increase_applies_only_from_2021_to_march_2023() -> None:
    # NSE's 6 % increase (Rs 345/crore) ran 1 Jan 2021 .. 31 Mar 2023; Rs 325/crore either side
    got = [charges("buy", 1000, 1000.0, day).exchange_txn
           for day in ("2019-06-03", "2020-12-31", "2021-01-01", "2023-03-31", "2023-04-03")]
    assert got == [32.5, 32.5, 34.5, 34.5, 32.5]


def test_every_dated_rate_names_its_source() -> None:
    from domain.charges import _ZERODHA_DELIVERY
    days = [r.effective_from for r in _ZERODHA_DELIVERY]
    assert days == sorted(days) and len(set(days)) == len(days)
    for r in _ZERODHA_DELIVERY:
        assert len(r.source) > 20, r


def test_stamp_duty_on_10500_rounds_half_up_to_1_58() -> None:
    # 0.015 % of 10,500 = 1.575 exactly; binary floats make it 1.5749999... and round() gives 1.57
    assert charges("buy", 10, 1050.0, "2025-01-01").stamp_duty == 1.58
    assert charges("buy", 7, 1500.0, "2025-01-01").stamp_duty == 1.58


@pytest.mark.parametrize(("qty", "price"), [(37, 123.45), (1, 0.05), (3, 333.35), (250, 17.85), (9, 2345.6)])
def test_each_component_is_the_exact_decimal_rounded_half_up(qty: int, price: float) -> None:
    from decimal import ROUND_HALF_UP, Decimal

    def paisa(x: Decimal) -> float:
        return float(x.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))

    for side in ("buy", "sell"):
        c = charges(side, qty, price, "2025-06-02")
        t = Decimal(qty) * Decimal(str(price))
        assert c.stt == paisa(t * Decimal("0.001"))
        assert c.exchange_txn == paisa(t * Decimal("0.0000297"))
        assert c.sebi_fee == paisa(t * Decimal("0.000001"))
        assert c.stamp_duty == (paisa(t * Decimal("0.00015")) if side == "buy" else 0.0)
        assert c.gst == paisa((Decimal(str(c.exchange_txn)) + Decimal(str(c.sebi_fee))) * Decimal("0.18"))
        parts = (c.brokerage, c.stt, c.exchange_txn, c.sebi_fee, c.stamp_duty, c.gst, c.dp_charge)
        assert c.total == float(sum(Decimal(str(p)) for p in parts))


def test_none_schedule_is_free() -> None:
    assert charges("sell", 100, 1234.5, "2023-01-02", "none").total == 0.0


def test_unknown_side_or_schedule_is_refused() -> None:
    with pytest.raises(ValueError, match="side"):
        charges("short", 1, 10.0, "2023-01-02")
    with pytest.raises(ValueError, match="schedule"):
        charges("buy", 1, 10.0, "2023-01-02", "flat_20")


@settings(max_examples=2000)
@given(st.sampled_from(["buy", "sell"]), st.integers(1, 200_000), st.integers(1, 10_000_000),
       st.sampled_from(["2019-05-05", "2021-01-01", "2023-04-01", "2024-10-01", "2026-03-01T10:15:00+05:30"]),
       st.sampled_from(["zerodha_delivery", "none", "zerodha_intraday"]), st.sampled_from([0.0, 1e-9, 0.003]))
def test_total_charges_is_the_breakdowns_total(side: str, quantity: int, paise: int, day: str, schedule: str,
                                               off_grid: float) -> None:
    """The total's own arithmetic (for whole shares at a price on the paise grid) and the breakdown agree to
    the float, on the grid and off it."""
    price = paise / 100 + off_grid
    assert total_charges(side, quantity, price, day, schedule) == charges(side, quantity, price, day, schedule).total
