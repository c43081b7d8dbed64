"""A GTT that triggered while the agent was offline: its order is no longer in Kite's order book (which
lists only the day's orders). The real agent process reads the fill from the GTT leg's `result` and the
order's history at the Kite stub, and the signal executes once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.kite_live import kite_world

pytestmark = pytest.mark.filterwarnings("ignore:You should not use the 'timeout' argument")


def test_a_fill_from_yesterday_is_recovered(tmp_path: Path) -> None:
    with kite_world(tmp_path) as w:
        pf, (entry,) = w.portfolio(slots=1)
        assert w.once().returncode == 0, w.log
        (gtt,) = w.kite.gtts.values()
        w.kite.trigger(gtt["id"], days_ago=1)  # it fired yesterday; the agent was not running
        w.kite.end_day()
        leg = gtt["orders"][0]["result"]
        oid = leg["order_result"]["order_id"]
        assert leg["order_result"]["status"] == "success" and w.kite.orders == {} and oid in w.kite.past_orders
        assert w.once().returncode == 0, w.log
        sig = w.signals(pf["id"])[entry["id"]]
        assert sig["status"] == "executed" and sig["fill_price"] == gtt["orders"][0]["price"]
        assert sig["filled_quantity"] == gtt["orders"][0]["quantity"]
        assert f"order {oid} is not in today's order book; read from Kite's order history" in w.log
        assert w.kite.count(f"GET /orders/{oid}") == 1
        (pos,) = w.positions(pf["id"], "open")
        assert pos["quantity"] == gtt["orders"][0]["quantity"]
        w.once()  # read once: the fill is recorded once, the protective OCO goes out
        assert w.kite.count(f"GET /orders/{oid}") == 1
        assert [g["type"] for g in w.kite.gtts.values()] == ["single", "two-leg"]
