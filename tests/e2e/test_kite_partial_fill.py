"""A triggered GTT order that fills only partly and is cancelled at the day's end: the real agent process
waits while it is open, then records the shares that filled (read from the order's history the next day,
when it is gone from the order book), and protects exactly those shares with the OCO."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.kite_live import kite_world

pytestmark = pytest.mark.filterwarnings("ignore:You should not use the 'timeout' argument")


def test_a_partial_fill_opens_the_filled_shares_only(tmp_path: Path) -> None:
    with kite_world(tmp_path) as w:
        pf, (entry,) = w.portfolio(slots=1)
        assert w.once().returncode == 0, w.log
        (gtt,) = w.kite.gtts.values()
        qty = gtt["orders"][0]["quantity"]
        assert qty > 3
        w.kite.trigger(gtt["id"], filled=3)
        oid = gtt["orders"][0]["result"]["order_result"]["order_id"]
        order = w.kite.orders[oid]
        assert (order["status"], order["filled_quantity"], order["pending_quantity"]) == ("OPEN", 3, qty - 3)
        assert w.once().returncode == 0
        assert w.signals(pf["id"])[entry["id"]]["status"] == "placed"  # still open at Kite: it waits
        w.kite.end_day()  # the rest is cancelled; the order leaves the order book
        assert oid not in w.kite.orders and w.kite.past_orders[oid]["status"] == "CANCELLED"
        assert w.once().returncode == 0, w.log
        sig = w.signals(pf["id"])[entry["id"]]
        assert (sig["status"], sig["filled_quantity"]) == ("executed", 3)
        (pos,) = w.positions(pf["id"], "open")
        assert pos["quantity"] == 3
        w.once()
        (oco,) = [g for g in w.kite.gtts.values() if g["type"] == "two-leg"]
        assert {o["quantity"] for o in oco["orders"]} == {3}
