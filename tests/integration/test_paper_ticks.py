"""Paper portfolios on the live tick feed: a placed GTT entry fills at the tick that crosses its limit and
a held position's stop fires on a tick -- through the Portfolio's own fill model, recorded as the same
events -- and the day's bar processed afterwards never fills or closes them a second time. Also the
paper manual close (whole or partial) retiring the protective levels."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from datetime import time as dtime
from typing import Any

import pytest

from commands import messages as m
from commands.market_clock import MarketClock
from commands.ports import CommandMeta
from domain.calendar import nse_calendar
from domain.fills import with_slippage
from domain.market_hours import IST
from infra.bars.store import BarStore
from infra.bars.synthetic import extend
from infra.bars.universes import load_universe
from streams.paper_ticks import PaperTickFills
from streams.ticks import TickHub
from tests.support.live import UNIVERSE, live_portfolio_with_placed_signals, make_bars, wait_until

BPS = 10
TEST = CommandMeta(actor="test")


def paper_placed(api: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A paper portfolio (limit entries 1% under the close, stop 5%, target 10%) with one placed signal."""
    pf, placed = live_portfolio_with_placed_signals(
        api, slots=1, mode="paper", params={"limit_offset_pct": 1.0}, name="Paper", capital=1_000_000,
        position_size_pct=10, slippage_bps=BPS)
    assert placed[0]["limit_price"] is not None
    pf = api.get("/api/model/dashboard", params={"portfolio_id": pf["id"]}).json()["portfolio"]
    return pf, placed[0]


def _until(what: str, check: Callable[[], Any]) -> Any:
    return wait_until(what, check, interval=0.02)


def next_day(day: str) -> date:
    return nse_calendar().add_trading_days(date.fromisoformat(day), 1)


def advance_one_day(api: Any, pf_id: int) -> str:
    """The next synthetic day's bars, then the market clock's daily step (what `sim advance --days 1` does)."""
    days = extend(BarStore(api.platform.settings.data_dir), load_universe(UNIVERSE), 1)
    clock: MarketClock = api.app.state.market_clock
    clock.run_due(days[-1].isoformat())
    day = days[-1].isoformat()
    _until("the day's step", lambda: api.get("/api/model/dashboard", params={"portfolio_id": pf_id})
           .json()["portfolio"]["last_day"] == day)
    return day


def events_of(api: Any, kind: str) -> list[Any]:
    return [e for e in api.platform.store.read(0, 100_000) if e.type == kind]


@pytest.fixture
def paper(api_factory: Any) -> Any:
    # the simulated feed only sends a snapshot at the last close (an hour between its own ticks): the test's
    # ticks are the only ones that move
    api = api_factory(tick_feed="simulated", tick_always_open=True, tick_interval=3600,
                      paper_tick_refresh_seconds=0.05)
    make_bars(api.platform.settings.data_dir)
    api.login()
    return api


def test_a_placed_gtt_fills_at_the_crossing_tick_once_and_the_stop_fires_on_a_later_tick(paper: Any) -> None:
    api = paper
    pf, sig = paper_placed(api)
    symbol, limit = sig["symbol"], sig["limit_price"]
    session = next_day(pf["last_day"])
    with api.websocket_connect("/api/ws/ticks") as ws:  # the feed starts with the first client
        assert ws.receive_json()["type"] == "status"
        hub: TickHub = api.app.state.tick_hub
        fills = next(c for c in hub.companions if isinstance(c, PaperTickFills))
        fills.now = lambda: datetime.combine(session, dtime(10, 0), IST)
        _until("the order watched", lambda: f"NSE:{symbol}" in hub.refs)

        def tick(price: float) -> None:
            assert hub.loop is not None
            hub.loop.call_soon_threadsafe(hub.publish, {f"NSE:{symbol}": {"ltp": price, "timestamp": "t"}})

        tick(round(limit + 0.5, 2))  # above the limit: nothing fills
        crossing = round(limit - 0.35, 2)
        tick(crossing)
        tick(round(limit - 3.0, 2))  # a later, lower tick: the order is filled already
        positions = _until("the tick fill", lambda: api.get(
            "/api/model/positions", params={"portfolio_id": pf["id"], "status": "open"}).json())
    (pos,) = positions
    assert pos["avg_price"] == with_slippage(crossing, "buy", BPS) and pos["entry_date"] == session.isoformat()
    assert pos["quantity"] == sig["quantity"]
    signal = api.get("/api/model/signals", params={"portfolio_id": pf["id"]}).json()[0]
    assert signal["status"] == "executed" and signal["fill_price"] == pos["avg_price"]
    assert [e.type for e in events_of(api, "FillRecorded")] == ["FillRecorded"]
    # the day's bar: the order is not filled again, and no exit on the entry day whatever the bar
    day = advance_one_day(api, pf["id"])
    assert day == session.isoformat()
    assert len(events_of(api, "FillRecorded")) == 1 and not events_of(api, "PositionClosed")
    dash = api.get("/api/model/dashboard", params={"portfolio_id": pf["id"]}).json()
    assert dash["portfolio"]["cash"] == round(1_000_000 - pos["quantity"] * pos["avg_price"] - pos["charges"], 2)
    # the next session: a tick under the stop closes it (command layer: the same command the watcher sends)
    held = api.get("/api/model/positions", params={"portfolio_id": pf["id"], "status": "open"}).json()[0]
    second = next_day(day).isoformat()
    under = round(held["stop_loss"] - 0.5, 2)
    assert api.platform.bus.handle(m.ApplyTicks(pf["id"], day, ((symbol, under),)), TEST).value == 0  # done day
    assert api.platform.bus.handle(m.ApplyTicks(pf["id"], second, ((symbol, held["stop_loss"] + 1),)),
                                   TEST).value == 0
    assert api.platform.bus.handle(m.ApplyTicks(pf["id"], second, ((symbol, under),)), TEST).value == 1
    assert api.platform.bus.handle(m.ApplyTicks(pf["id"], second, ((symbol, under),)), TEST).value == 0
    advance_one_day(api, pf["id"])
    closed = api.get("/api/model/positions", params={"portfolio_id": pf["id"], "status": "closed"}).json()
    assert len(closed) == 1 and closed[0]["exit_reason"] == "stop_loss"
    assert closed[0]["exit_price"] == with_slippage(under, "sell", BPS) and closed[0]["exit_date"] == second
    assert len(events_of(api, "PositionClosed")) == 1


def test_serve_with_its_scheduler_starts_the_feed_without_a_websocket_client(api_factory: Any) -> None:
    """Placed paper GTTs fill in market hours even while nobody watches the tick stream."""
    api = api_factory(scheduler=True, tick_feed="simulated", tick_interval=3600)
    hub = api.app.state.tick_hub
    assert hub is not None and hub.upstream is not None
    assert any(isinstance(c, PaperTickFills) for c in hub.companions)


def test_ticks_are_off_when_disabled(api_factory: Any) -> None:
    api = api_factory(tick_feed="simulated", tick_always_open=True, tick_interval=3600, paper_tick_fills=False)
    make_bars(api.platform.settings.data_dir)
    api.login()
    with api.websocket_connect("/api/ws/ticks") as ws:
        assert ws.receive_json()["type"] == "status"
        assert not any(isinstance(c, PaperTickFills) for c in api.app.state.tick_hub.companions)


def test_paper_manual_close_retires_the_stop_and_a_partial_close_keeps_the_rest(paper: Any) -> None:
    api = paper
    pf, _ = paper_placed(api)
    advance_one_day(api, pf["id"])  # the entry fills on the day's bar (or expires: retry until it fills)
    for _ in range(4):
        if api.get("/api/model/positions", params={"portfolio_id": pf["id"], "status": "open"}).json():
            break
        advance_one_day(api, pf["id"])
    (pos,) = api.get("/api/model/positions", params={"portfolio_id": pf["id"], "status": "open"}).json()
    qty = pos["quantity"]
    assert qty >= 4
    # bad quantities: a clear 4xx, nothing changed
    r = api.post(f"/api/model/positions/{pos['id']}/close", json={"quantity": qty + 1})
    assert r.status_code == 400 and "quantity must be from 1 to" in r.json()["detail"]
    assert api.post(f"/api/model/positions/{pos['id']}/close", json={"quantity": 0}).status_code == 422
    assert api.post(f"/api/model/positions/{pos['id']}/close", json={"qty": 1}).status_code == 422
    cash = api.get("/api/model/dashboard", params={"portfolio_id": pf["id"]}).json()["portfolio"]["cash"]
    assert api.get("/api/analytics/pnl", params={"group_by": "symbol", "source": "paper"}).json() == []
    r = api.post(f"/api/model/positions/{pos['id']}/close", json={"quantity": 3})
    assert r.status_code == 200 and r.json()["outcome"] == "reduced" and r.json()["quantity"] == qty - 3
    (lot,) = api.get("/api/model/positions", params={"portfolio_id": pf["id"], "status": "closed"}).json()
    assert lot["quantity"] == 3 and lot["exit_reason"] == "manual" and lot["id"] != pos["id"]
    assert lot["avg_price"] == pos["avg_price"] and lot["entry_date"] == pos["entry_date"]
    left = api.get("/api/model/positions", params={"portfolio_id": pf["id"], "status": "open"}).json()[0]
    part = round(pos["charges"] * 3 / qty, 2)  # the sold shares' share of the entry charges (FIFO, one lot)
    assert left["charges"] == round(pos["charges"] - part, 2) and left["quantity"] == qty - 3
    sell_fee = round(lot["charges"] - part, 2)
    assert sell_fee > 0
    assert lot["realized_pnl"] == round((lot["exit_price"] - lot["avg_price"]) * 3 - lot["charges"], 2)
    after = api.get("/api/model/dashboard", params={"portfolio_id": pf["id"]}).json()["portfolio"]
    assert after["cash"] == pytest.approx(cash + 3 * lot["exit_price"] - sell_fee, abs=0.011)
    assert after["realized_pnl"] == lot["realized_pnl"]
    # the analytics journal shows the sold lot at once (its snapshot was built before the sale)
    (row,) = api.get("/api/analytics/pnl", params={"group_by": "symbol", "source": "paper"}).json()
    assert (row["symbol"], row["quantity"], row["net_pnl"]) == (pos["symbol"], 3, lot["realized_pnl"])
    # one scope for every analytics read (issue 16 item 5): the default is the broker account, so the paper
    # lot is in neither the P&L groupings nor the summary; with source=paper it is in both, alike
    assert api.get("/api/analytics/pnl", params={"group_by": "strategy"}).json() == []
    assert api.get("/api/analytics/summary").json()["net_realized_pnl"] == 0.0
    paper_summary = api.get("/api/analytics/summary", params={"source": "paper"}).json()
    assert (paper_summary["net_realized_pnl"], paper_summary["closed_trades"]) == (lot["realized_pnl"], 1)
    # the rest closed by hand: its stop no longer applies -- a tick under it sells nothing
    r = api.post(f"/api/model/positions/{pos['id']}/close")
    assert r.status_code == 200 and r.json()["outcome"] == "closed" and r.json()["status"] == "closed"
    session = next_day(api.get("/api/model/dashboard", params={"portfolio_id": pf["id"]}).json()["portfolio"]
                       ["last_day"]).isoformat()
    before = len(events_of(api, "PositionClosed"))
    assert api.platform.bus.handle(m.ApplyTicks(pf["id"], session, ((pos["symbol"], 0.05),)), TEST).value == 0
    assert len(events_of(api, "PositionClosed")) == before
    r = api.post(f"/api/model/positions/{pos['id']}/close")
    assert r.status_code == 400 and "closed" in r.json()["detail"]


def test_the_last_price_replayed_on_subscribing_never_fills() -> None:
    """The hub hands a new subscriber the symbol's last tick at once (a quiet market still shows a price);
    for the paper-fill watcher that price may be hours old -- say from before an earlier fill -- so only
    ticks published after it subscribed reach it."""
    from streams.paper_ticks import TickListener

    async def no_upstream() -> Any:
        raise AssertionError("not started")

    seen: list[tuple[str, float]] = []
    hub = TickHub(lambda s: True, no_upstream)
    hub.publish({"NSE:INFY": {"ltp": 1400.0}})  # an old price, before the order was watched
    listener = TickListener(lambda sym, tick: seen.append((sym, tick["ltp"])))
    assert listener.subscribe(hub, ["NSE:INFY"]) == []
    assert seen == []
    hub.publish({"NSE:INFY": {"ltp": 1390.0}})
    assert seen == [("NSE:INFY", 1390.0)]
