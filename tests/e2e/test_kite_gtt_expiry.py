"""Live GTT entries come off the broker: when a pause, a kill switch or the end of an entry's validity
withdraws it, the real agent process deletes its GTT at the Kite stub first and only then reports the
signal expired; a deletion Kite does not confirm records nothing; a GTT that triggered first keeps its
fill; an entry not yet at Kite is never sent."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from infra.bars.store import BarStore
from tests.support.kite_live import KiteWorld, kite_world

pytestmark = pytest.mark.filterwarnings("ignore:You should not use the 'timeout' argument")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KiteWorld]:
    with kite_world(tmp_path_factory.mktemp("kite")) as w:
        yield w


def _gtts(w: KiteWorld, signals: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    ids = {x["id"]: x for x in w.working()}
    return {s["id"]: w.kite.gtts[int(ids[s["id"]]["gtt_id"])] for s in signals}


def test_a_pause_deletes_the_entry_gtts_at_kite_then_expires_them(world: KiteWorld) -> None:
    w = world
    pf, placed = w.portfolio(slots=2)
    assert w.once().returncode == 0, w.log
    gtts = _gtts(w, placed)
    first, second = placed
    w.kite.trigger(gtts[first["id"]]["id"])  # one entry fills before the pause is seen
    assert w.s.post(f"{w.base}/api/model/portfolios/{pf['id']}/pause").status_code == 200
    w.kite.fail_deletes = 1  # Kite does not confirm the first deletion
    assert w.once().returncode == 0, w.log
    sigs = w.signals(pf["id"])
    assert sigs[first["id"]]["status"] == "executed"  # triggered first: the fill stands
    assert sigs[second["id"]]["status"] == "placed" and gtts[second["id"]]["status"] == "active"
    assert w.kite.deletions == []  # not confirmed: nothing recorded
    assert w.once().returncode == 0, w.log
    sig = w.signals(pf["id"])[second["id"]]
    gid = gtts[second["id"]]["id"]
    assert w.kite.deletions == [gid] and gtts[second["id"]]["status"] == "deleted"
    assert sig["status"] == "expired" and sig["failure_reason"] == f"portfolio paused; GTT {gid} deleted at Kite"
    w.once()
    assert w.kite.deletions == [gid]  # once


def test_a_kill_switch_takes_entries_off_kite_and_never_sends_new_ones(world: KiteWorld) -> None:
    w = world
    pf, (entry,) = w.portfolio(slots=1)
    assert w.once().returncode == 0, w.log
    (gtt,) = _gtts(w, [entry]).values()
    later, (fresh,) = w.portfolio(slots=1)  # an entry queued for the agent, not sent yet
    r = w.s.post(f"{w.base}/api/risk/rules", json={"rule_type": "kill_switch", "note": "stop everything"})
    assert r.status_code == 201, r.text
    rule = r.json()["id"]
    before = len(w.kite.placements)
    assert w.once().returncode == 0, w.log
    assert gtt["status"] == "deleted" and len(w.kite.placements) == before
    sig = w.signals(pf["id"])[entry["id"]]
    assert sig["status"] == "expired" and sig["failure_reason"] == \
        f"kill switch engaged (rule {rule}); GTT {gtt['id']} deleted at Kite"
    never = w.signals(later["id"])[fresh["id"]]
    assert never["status"] == "expired" and "never sent to Kite" in never["failure_reason"]
    assert w.s.delete(f"{w.base}/api/risk/rules/{rule}").status_code == 204


def test_an_entry_past_its_validity_is_deleted_at_kite(world: KiteWorld) -> None:
    w = world
    pf, (entry,) = w.portfolio(slots=1)
    assert w.once().returncode == 0, w.log
    (gtt,) = _gtts(w, [entry]).values()
    assert entry["expires_at"]
    store = BarStore(w.tmp / "var" / "data")
    last = store.last_date()
    assert last is not None
    rows: list[Any] = []
    day = last
    while len(rows) < 8:  # eight trading days without a fill: past the 5-day validity
        day += timedelta(days=1)
        if day.weekday() < 5:
            rows.append({"symbol": entry["symbol"], "date": day, "open": 1e4, "high": 1e4 + 5, "low": 1e4 - 5,
                         "close": 1e4, "volume": 1000})
    store.append_days(rows)
    assert w.s.post(f"{w.base}/api/model/scan", json={"portfolio_id": pf["id"]}).status_code == 200
    assert w.signals(pf["id"])[entry["id"]]["status"] == "placed"  # the server does not guess: Kite first
    assert w.once().returncode == 0, w.log
    sig = w.signals(pf["id"])[entry["id"]]
    assert gtt["status"] == "deleted" and sig["status"] == "expired"
    assert sig["failure_reason"].startswith("validity passed (valid until ")
