"""Money for people: Indian grouping, half-up paise, the typographic minus."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.money import MINUS, MISSING, format_inr, format_number, format_price, group_indian


@pytest.mark.parametrize(("value", "text"), [
    (13013928.67, "₹1,30,13,928.67"),
    (-67372.36, MINUS + "₹67,372.36"),
    (0, "₹0.00"),
    (-0.004, "₹0.00"),  # rounds to zero: no minus
    (999.995, "₹1,000.00"),
    (2.675, "₹2.68"),  # half-up on the decimal value, not the binary float below it
    (100000, "₹1,00,000.00"),
    (12345678901.5, "₹12,34,56,78,901.50"),
    (None, MISSING),
    (float("nan"), MISSING),
])
def test_format_inr(value: float | None, text: str) -> None:
    assert format_inr(value) == text


def test_sign_whole_rupees_and_prices() -> None:
    assert format_inr(1500, sign=True) == "+₹1,500.00"
    assert format_inr(-1500, decimals=0) == MINUS + "₹1,500"
    assert format_price(14720.5) == "14,720.50"
    assert format_number(1250000, 0) == "12,50,000"


@given(st.integers(min_value=0, max_value=10**15))
def test_grouping_round_trips_and_has_the_indian_shape(n: int) -> None:
    text = group_indian(str(n))
    assert int(text.replace(",", "")) == n
    groups = text.split(",")
    assert len(groups[-1]) == (3 if n >= 1000 else len(str(n)))
    assert all(len(g) == 2 for g in groups[1:-1]) and 1 <= len(groups[0]) <= (2 if n >= 1000 else 3)


@given(st.decimals(min_value=-10**12, max_value=10**12, places=2))
def test_paise_are_exact(d: Decimal) -> None:
    text = format_inr(d)
    back = Decimal(text.replace(MINUS, "-").replace("₹", "").replace(",", ""))
    assert back == d


def test_analytics_query_table_prints_amounts_in_indian_grouping() -> None:
    from infra.analytics.cli import cell

    assert [cell(v) for v in (13013928.67, Decimal("-67372.355"), 2024, None, "INFY")] == [
        "1,30,13,928.67", MINUS + "67,372.36", "2024", "", "INFY"]
