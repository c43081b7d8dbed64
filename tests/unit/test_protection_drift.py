"""The protective GTT at the broker against the model's stop, target and quantity (domain.broker's
`protection_drift`): GTTs in the shape of Zerodha's published `gtt_get_orders.json` mock, reduced as the
server stores them. Levels within half a tick are in step (the agent rounds them onto the tick grid)."""

from __future__ import annotations

from typing import Any

from domain.broker import BrokerConnection, Protection, protection_drift, reduce_gtts

DAY = "2026-06-01"  # banded ticks: 0.05 for 250-1,000, 0.10 for 1,000-5,000


def kite_gtt(gid: int, triggers: list[float], quantity: int, status: str = "active",
             last: float = 1500.0) -> dict[str, Any]:
    legs = [{"exchange": "NSE", "tradingsymbol": "INFY", "product": "CNC", "order_type": "LIMIT",
             "transaction_type": "SELL", "quantity": quantity, "price": t, "result": None} for t in triggers]
    return {"id": gid, "user_id": "AB1234", "parent_trigger": None, "type": "two-leg" if len(triggers) == 2 else
            "single", "created_at": "2026-05-29 10:00:00", "updated_at": "2026-05-29 10:00:00",
            "expires_at": "2027-05-29 10:00:00", "status": status,
            "condition": {"exchange": "NSE", "last_price": last, "tradingsymbol": "INFY",
                          "trigger_values": triggers, "instrument_token": 408065},
            "orders": legs, "meta": {}}


def protection(stop: float | None = 1400.0, target: float | None = 1700.0, quantity: int = 5,
               gtt_id: str | None = "1001") -> Protection:
    return Protection("NSE", "INFY", 7, 31, quantity, stop, target, gtt_id)


def kinds(drifts: list[Any]) -> list[dict[str, Any]]:
    return [d.to_dict() for d in drifts]


def test_a_gtt_on_the_models_levels_is_in_step() -> None:
    gtts = reduce_gtts([kite_gtt(1001, [1400.0, 1700.0], 5)])
    assert protection_drift([protection()], gtts, DAY) == []
    # the model's 1400.03 is 1400.0 on the 0.10 grid: within half a tick, no drift
    assert protection_drift([protection(stop=1400.03)], gtts, DAY) == []


def test_a_trailing_stop_the_broker_did_not_follow_is_stop_drift() -> None:
    gtts = reduce_gtts([kite_gtt(1001, [1366.4, 1700.0], 5)])
    assert kinds(protection_drift([protection(stop=1460.3)], gtts, DAY)) == [
        {"kind": "stop_drift", "exchange": "NSE", "symbol": "INFY", "position_id": 7, "signal_id": 31,
         "gtt_id": "1001", "model_stop": 1460.3, "broker_stop": 1366.4}]


def test_target_and_quantity_drift() -> None:
    gtts = reduce_gtts([kite_gtt(1001, [1400.0, 1650.0], 8)])
    assert [(d["kind"], d.get("model_target"), d.get("broker_target"), d.get("model_quantity"),
             d.get("broker_quantity")) for d in kinds(protection_drift([protection()], gtts, DAY))] == [
        ("target_drift", 1700.0, 1650.0, None, None), ("gtt_quantity", None, None, 5, 8)]


def test_a_missing_protective_gtt_names_why() -> None:
    gtts = reduce_gtts([kite_gtt(1001, [1400.0, 1700.0], 5, status="deleted")])
    out = kinds(protection_drift([protection(), protection(gtt_id="999"), protection(gtt_id=None)], gtts, DAY))
    assert [(d["kind"], d["gtt_id"], d["broker_status"], d["model_stop"], d["model_target"]) for d in out] == [
        ("gtt_missing", "1001", "deleted", 1400.0, 1700.0), ("gtt_missing", "999", "not found", 1400.0, 1700.0),
        ("gtt_missing", None, "not placed", 1400.0, 1700.0)]


def test_a_single_leg_gtt_is_the_one_level_the_model_has() -> None:
    stop_only = reduce_gtts([kite_gtt(1001, [1400.0], 5)])
    assert protection_drift([protection(target=None)], stop_only, DAY) == []
    (d,) = kinds(protection_drift([protection(target=1700.0)], stop_only, DAY))
    assert (d["kind"], d["model_target"], d["broker_target"]) == ("target_drift", 1700.0, None)
    assert protection_drift([protection(stop=None, target=1400.0)], stop_only, DAY) == []


def test_no_levels_need_no_gtt() -> None:
    assert protection_drift([protection(stop=None, target=None, gtt_id=None)], [], DAY) == []


def test_the_same_broker_state_pushed_again_records_nothing() -> None:
    conn = BrokerConnection.open(1)
    gtts = [kite_gtt(1001, [1400.0, 1700.0], 5)]
    unresolved = [{"signal_id": 31, "order_id": "250", "gtt_id": "1001", "detail": "", "since": "10:00"}]
    assert conn.sync_orders(gtts, unresolved, "2026-06-01T10:00:00+05:30")
    later = [dict(gtts[0], updated_at="2026-06-01 11:00:00")]  # Kite's timestamps and `since` do not count
    assert not conn.sync_orders(later, [dict(unresolved[0], since="11:00")], "2026-06-01T11:00:00+05:30")
    assert conn.sync_orders(later, [], "2026-06-01T11:00:01+05:30")
