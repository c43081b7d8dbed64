"""A trailing stop reaches the broker: when the model raises a live position's stop, the real agent process
modifies the protective OCO GTT at the Kite stub (`PUT /gtt/triggers/{id}`) to the new stop (on the tick
grid), waits while Kite would refuse the new trigger (too near the last price), and the stop that fires at
Kite is the model's."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from commands.brokers import BrokerInputError, GttLeg
from infra.bars.store import BarStore
from infra.kite.client import KiteBroker
from tests.support.kite_live import kite_world

pytestmark = pytest.mark.filterwarnings("ignore:You should not use the 'timeout' argument")


def test_the_broker_stop_follows_the_trailing_stop(tmp_path: Path) -> None:
    with kite_world(tmp_path) as w:
        pf, _ = w.portfolio(slots=1, exit_rules={"stop_loss_pct": 5, "target_pct": 20,
                                                    "trailing_stop_pct": 3})
        w.start_agent()
        buy = w.until("the entry GTT", lambda: next((p for p in w.kite.placements if p["side"] == "BUY"), None))
        assert w.kite.trigger(buy["id"]) == 1
        (pos,) = w.until("the position", lambda: w.positions(pf["id"], "open"))
        symbol, price = pos["symbol"], pos["avg_price"]
        oco = w.until("the OCO", lambda: next((g for g in w.kite.gtts.values() if g["type"] == "two-leg"), None))
        placed_levels = oco["condition"]["trigger_values"]
        assert [round(abs(a - b), 2) <= w.kite.tick_of(symbol) / 2 for a, b in
                zip(placed_levels, [pos["stop_loss"], pos["target"]], strict=True)] == [True, True]
        protection = ("gtt_missing", "stop_drift", "target_drift", "gtt_quantity")
        w.until("the OCO pushed to the server", lambda: w.reconciliation()["gtts_synced_at"] is not None
                and not w.drift(*protection))

        # the next day closes 10% higher: the trailing stop (3% under the close) rises over the fixed stop
        store = BarStore(tmp_path / "var" / "data")
        last = store.last_date()
        assert last is not None
        close = round(price * 1.10, 2)
        store.append_days([{"symbol": symbol, "date": last + timedelta(days=1), "open": price, "high": close + 1,
                            "low": price - 1, "close": close, "volume": 1000}])
        raised = close * 0.97
        w.kite.last_prices[symbol] = round(raised * 1.001, 2)  # Kite's last price right at the new stop
        assert w.s.post(w.base + "/api/model/scan", json={"portfolio_id": pf["id"]}).status_code == 200
        (moved,) = w.positions(pf["id"], "open")
        assert moved["stop_loss"] > pos["stop_loss"]
        stop = moved["stop_loss"]
        w.until("the agent to hold the change back", lambda: "too near" in w.log)
        assert w.kite.modifications == [] and w.kite.refusals == []  # nothing Kite would refuse was sent
        assert oco["condition"]["trigger_values"] == placed_levels
        # the difference shows in the reconciliation: the account's and the live dashboard's
        for pf_id in (None, pf["id"]):
            (drift,) = w.drift(*protection, pf_id=pf_id)
            assert drift == {"kind": "stop_drift", "exchange": "NSE", "symbol": symbol, "position_id": pos["id"],
                             "signal_id": drift["signal_id"], "gtt_id": str(oco["id"]),
                             "model_stop": round(stop, 2), "broker_stop": placed_levels[0]}
        assert w.reconciliation(pf["id"])["in_sync"] is False

        w.kite.last_prices[symbol] = close  # the price moves away: the change goes through
        (change,) = w.until("the OCO modified", lambda: w.kite.modifications)
        tick = w.kite.tick_of(symbol)  # Kite refuses prices off the grid: the stop is on it, a tick at most away
        new_stop = change["triggers"][0]
        assert change["id"] == oco["id"] and abs(new_stop - stop) <= tick / 2 + 1e-9
        assert change["triggers"][1] == oco["orders"][1]["price"] and abs(change["triggers"][1] - pos["target"]) \
            <= tick / 2 + 1e-9
        assert oco["status"] == "active" and oco["condition"]["trigger_values"] == change["triggers"]
        assert new_stop * 0.995 - tick < oco["orders"][0]["price"] <= new_stop * 0.995
        assert [g["id"] for g in w.kite.gtts.values() if g["status"] == "active"] == [oco["id"]]
        w.until("the broker's stop back in step", lambda: not w.drift(*protection))

        # the price falls to the new stop: Kite's OCO sells at the model's stop
        assert w.kite.move(symbol, change["triggers"][0]) == 1
        (closed,) = w.until("the position closed", lambda: w.positions(pf["id"], "closed"))
        assert closed["exit_price"] == oco["orders"][0]["price"] and closed["exit_price"] > price
        assert w.kite.modifications == [change]


def test_the_stub_refuses_what_kite_refuses_for_gtts() -> None:
    from tests.support.kite_stub import kite_stub

    with kite_stub() as (root, kite):
        broker = KiteBroker(kite.api_key, kite.grant(), root=root)
        kite.last_prices["INFY"] = 1500.0
        sell = [GttLeg(1400.0, "SELL", 5, 1393.0), GttLeg(1600.0, "SELL", 5, 1600.0)]
        with pytest.raises(BrokerInputError, match="stoploss trigger must be below"):
            broker.place_gtt("NSE", "INFY", 1500.0, list(reversed(sell)))
        with pytest.raises(BrokerInputError, match="too close to the last price"):
            broker.place_gtt("NSE", "INFY", 1500.0, [GttLeg(1498.0, "SELL", 5, 1490.0), sell[1]])
        with pytest.raises(BrokerInputError, match="Tick size"):
            broker.place_gtt("NSE", "INFY", 1500.0, [GttLeg(1400.03, "SELL", 5, 1393.0), sell[1]])
        gid = broker.place_gtt("NSE", "INFY", 1500.0, sell)
        kite.add_holding("INFY", 5, 1300.0)
        assert kite.move("INFY", 1600.0) == 1
        with pytest.raises(BrokerInputError, match="only an active trigger can be modified"):
            broker.modify_gtt(gid, "NSE", "INFY", 1600.0, sell)
        assert len(kite.refusals) == 4 and kite.modifications == []
        assert date.today().isoformat() in kite.gtts[int(gid)]["orders"][1]["result"]["timestamp"]
