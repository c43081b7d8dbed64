"""A GTT whose triggered order Kite rejected: the leg's `result` says failed with Kite's reason. The real
agent process reports the signal failed with that reason; nothing is retried or placed again."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.kite_live import kite_world

pytestmark = pytest.mark.filterwarnings("ignore:You should not use the 'timeout' argument")

REASON = "Insufficient funds. Required margin is 95417.84 but available margin is 74251.80."


def test_a_rejected_leg_fails_the_signal_with_kites_reason(tmp_path: Path) -> None:
    with kite_world(tmp_path) as w:
        pf, (entry,) = w.portfolio(slots=1)
        assert w.once().returncode == 0, w.log
        (gtt,) = w.kite.gtts.values()
        w.kite.trigger(gtt["id"], rejected=REASON)
        assert gtt["status"] == "rejected" and gtt["orders"][0]["result"]["order_result"]["order_id"] == ""
        assert w.once().returncode == 0, w.log
        sig = w.signals(pf["id"])[entry["id"]]
        assert sig["status"] == "failed" and REASON in sig["failure_reason"]
        assert w.positions(pf["id"], "open") == []
        w.once()
        assert len(w.kite.placements) == 1 and w.working() == []
