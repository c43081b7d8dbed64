"""A manual close of a live position protected by an OCO GTT: the real agent process sends the MARKET SELL
with `market_protection` first and deletes the OCO at the Kite stub only after Kite accepted the sale, so
the shares are never without protection; the sale's fill closes the position."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.kite_live import kite_world

pytestmark = pytest.mark.filterwarnings("ignore:You should not use the 'timeout' argument")


def test_a_manual_close_sells_with_protection_before_the_oco_goes(tmp_path: Path) -> None:
    with kite_world(tmp_path) as w:
        pf, _ = w.portfolio(slots=1)
        assert w.once().returncode == 0, w.log
        (buy,) = w.kite.gtts.values()
        assert w.kite.trigger(buy["id"]) == 1
        assert w.once().returncode == 0, w.log  # the fill
        assert w.once().returncode == 0, w.log  # the OCO
        (oco,) = [g for g in w.kite.gtts.values() if g["type"] == "two-leg"]
        (pos,) = w.positions(pf["id"], "open")
        r = w.s.post(w.base + f"/api/model/positions/{pos['id']}/close", json={})
        assert r.status_code == 200, r.text
        assert w.once().returncode == 0, w.log
        (sale,) = [p for p in w.kite.placements if p["kind"] == "order"]
        assert (sale["order_type"], sale["side"], sale["market_protection"]) == ("MARKET", "SELL", "-1")
        sent = w.kite.requests.index("POST /orders/regular")
        assert w.kite.requests.index(f"DELETE /gtt/triggers/{oco['id']}") > sent  # protection removed after
        assert oco["status"] == "deleted" and w.kite.refusals == []
        assert w.once().returncode == 0, w.log  # the sale's fill
        (closed,) = w.positions(pf["id"], "closed")
        assert closed["id"] == pos["id"] and w.positions(pf["id"], "open") == []
