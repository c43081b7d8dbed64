"""Market orders carry market protection (Kite refuses API market orders without it) and the algo id when
one is configured: the real `tradertape agent` process against the Kite stub, which refuses what Kite
refuses."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from api.cli import main
from commands.brokers import BrokerInputError
from infra.kite.client import KiteBroker
from tests.support.kite_live import KiteWorld, kite_world

pytestmark = pytest.mark.filterwarnings("ignore:You should not use the 'timeout' argument")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KiteWorld]:
    with kite_world(tmp_path_factory.mktemp("kite")) as w:
        yield w


def test_market_entries_go_with_automatic_protection_by_default(world: KiteWorld) -> None:
    w = world
    pf, placed = w.portfolio(slots=2, entry_order="next_open")  # market entries at the next open
    out = w.once()
    assert out.returncode == 0, w.log
    orders = [p for p in w.kite.placements if p["kind"] == "order"]
    assert len(orders) == 2, w.log
    assert {(p["order_type"], p["side"], p["market_protection"], p["algo_id"]) for p in orders} == \
        {("MARKET", "BUY", "-1", None)}
    assert {p["tag"] for p in orders} == {f"tt{p['id']}" for p in placed}
    assert w.kite.refusals == []
    w.once()  # the fills are read back and reported
    signals = w.signals(pf["id"])
    assert {signals[p["id"]]["status"] for p in placed} == {"executed"}


def test_configured_protection_and_algo_id_go_with_every_order(world: KiteWorld) -> None:
    w = world
    before = len(w.kite.placements)
    w.portfolio(slots=1, entry_order="next_open")
    out = w.once("--market-protection", "2.5", TRADERTAPE_ALGO_ID="ALGO-42")
    assert out.returncode == 0, w.log
    (order,) = [p for p in w.kite.placements[before:] if p["kind"] == "order"]
    assert (order["market_protection"], order["algo_id"]) == ("2.5", "ALGO-42")
    assert w.kite.orders[order["id"]]["market_protection"] == 2.5


@pytest.mark.parametrize("value", ["0", "101", "-2", "lots"])
def test_a_protection_kite_would_refuse_stops_the_agent_at_start(value: str,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["agent", "--server", "http://127.0.0.1:9", "--key", "zt_x", "--market-protection", value, "--once"])
    assert stopped.value.code == 2 and "market protection must be -1" in capsys.readouterr().err


def test_the_stub_refuses_a_market_order_without_protection_as_kite_does() -> None:
    from tests.support.kite_stub import kite_stub

    with kite_stub() as (root, kite):
        broker = KiteBroker(kite.api_key, kite.grant(), root=root)
        with pytest.raises(BrokerInputError, match="Market orders without market protection are not allowed"):
            broker.place_order("NSE", "INFY", "BUY", 1, "MARKET", None, "tt1")
        with pytest.raises(BrokerInputError, match="Tick size"):
            broker.place_order("NSE", "INFY", "BUY", 1, "LIMIT", 1500.03, "tt2")
        assert broker.place_order("NSE", "INFY", "BUY", 1, "MARKET", None, "tt3", market_protection=-1)
        assert [p["tag"] for p in kite.placements] == ["tt3"]
