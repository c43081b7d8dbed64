"""An order that is in neither Kite's order book nor its history or trades (the agent was offline past
what Kite keeps): the real agent process reports it as unresolved -- logged once, naming the order and the
GTT leg's result, and pushed to the server, where the signal shows `fill_unresolved` and the
reconciliation a `fill_unresolved` row -- leaves the signal working, and records the fill once Kite answers
for the order again."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.kite_live import kite_world

pytestmark = pytest.mark.filterwarnings("ignore:You should not use the 'timeout' argument")


def test_an_unfindable_order_is_reported_unresolved_never_ignored(tmp_path: Path) -> None:
    with kite_world(tmp_path) as w:
        pf, entry, gtt, oid = w.fill_kite_forgot()
        proc = w.start_agent()
        w.until("the unresolved report", lambda: "UNRESOLVED" in w.log)
        w.until("a few more cycles", lambda: w.kite.count("GET /gtt/triggers") >= 6)
        proc.stop()
        assert w.log.count("UNRESOLVED") == 1  # reported once, not every cycle
        line = next(x for x in w.log.splitlines() if "UNRESOLVED" in x)
        assert oid in line and f"triggered at {gtt['orders'][0]['result']['triggered_at']}" in line
        assert w.kite.count(f"GET /orders/{oid}") == 1  # looked up again at most once a minute
        sig = w.signals(pf["id"])[entry["id"]]
        assert sig["status"] == "placed"  # neither failed nor guessed
        assert {x["id"] for x in w.working()} == {entry["id"]}
        # the trader sees it: on the signal and in the reconciliation (the account's and the dashboard's)
        unresolved = sig["fill_unresolved"]
        assert (unresolved["gtt_id"], unresolved["order_id"]) == (str(gtt["id"]), oid)
        assert f"triggered at {gtt['orders'][0]['result']['triggered_at']}" in unresolved["detail"]
        for pf_id in (None, pf["id"]):
            recon = w.reconciliation(pf_id)
            (row,) = [d for d in recon["drift"] if d["kind"] == "fill_unresolved"]
            assert (row["signal_id"], row["symbol"], row["gtt_id"], row["order_id"]) == \
                (entry["id"], entry["symbol"], str(gtt["id"]), oid)
            assert recon["in_sync"] is False
        w.kite.keep_history = True  # Kite answers for the order again
        assert w.once().returncode == 0
        sig = w.signals(pf["id"])[entry["id"]]
        assert sig["status"] == "executed" and sig["fill_price"] == gtt["orders"][0]["price"]
        assert sig["fill_unresolved"] is None and not w.drift("fill_unresolved")
