"""A live position's protective OCO GTT is deleted at Kite by hand (as from Kite's own app): the real agent
process reports what Kite holds, and the reconciliation -- the account's and the live dashboard's -- shows
the position without protection at the broker (`gtt_missing`, Kite's status, the model's stop and target),
as it does between the entry's fill and the OCO's placement (`not placed`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.kite.client import KiteBroker
from tests.support.kite_live import kite_world

pytestmark = pytest.mark.filterwarnings("ignore:You should not use the 'timeout' argument")

PROTECTION = ("gtt_missing", "stop_drift", "target_drift", "gtt_quantity")


def test_a_protective_gtt_deleted_at_kite_shows_as_missing(tmp_path: Path) -> None:
    with kite_world(tmp_path) as w:
        pf, (entry,) = w.portfolio(slots=1)
        assert w.once().returncode == 0, w.log
        (buy,) = w.kite.gtts.values()
        assert w.kite.trigger(buy["id"]) == 1
        assert w.once().returncode == 0, w.log  # the fill: the position's OCO is not at Kite yet
        (pos,) = w.positions(pf["id"], "open")
        (row,) = w.drift(*PROTECTION)
        assert (row["kind"], row["position_id"], row["gtt_id"], row["broker_status"]) == \
            ("gtt_missing", pos["id"], None, "not placed")
        assert w.once().returncode == 0, w.log  # the OCO placed and its GTT pushed: in step
        (oco,) = [g for g in w.kite.gtts.values() if g["type"] == "two-leg"]
        assert w.drift(*PROTECTION) == []

        KiteBroker(w.kite.api_key, w.kite.grant(), root=w.root).delete_gtt(str(oco["id"]))
        assert w.once().returncode == 0, w.log
        for pf_id in (None, pf["id"]):
            (row,) = w.drift(*PROTECTION, pf_id=pf_id)
            assert row == {"kind": "gtt_missing", "exchange": "NSE", "symbol": entry["symbol"],
                           "position_id": pos["id"], "signal_id": row["signal_id"], "gtt_id": str(oco["id"]),
                           "broker_status": "deleted", "model_stop": pos["stop_loss"],
                           "model_target": pos["target"]}
            assert w.reconciliation(pf_id)["in_sync"] is False
        assert w.positions(pf["id"], "open")[0]["quantity"] == pos["quantity"]  # still held, unprotected
