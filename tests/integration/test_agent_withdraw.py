"""A withdrawn live entry (kill switch, pause, validity passed) is never sent to Kite once the agent knows
it is withdrawn -- also when an earlier attempt to place it failed (Kite did not answer) or when the agent
decided not to place it but its report did not reach the server: the in-process agent against the Kite stub
through the official kiteconnect client."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infra.kite.agent import Agent, AgentConfig, ServerUnavailable
from infra.kite.client import KiteBroker
from tests.support.kite_stub import KiteState, kite_stub
from tests.support.live import Http, live_portfolio_with_placed_signals, make_bars

pytestmark = pytest.mark.filterwarnings("ignore:You should not use the 'timeout' argument")


@dataclass
class Live:
    api: Any
    kite: KiteState
    agent: Agent
    pf: dict[str, Any]
    entry: dict[str, Any]

    def signal(self) -> dict[str, Any]:
        rows = self.api.get("/api/model/signals", params={"portfolio_id": self.pf["id"]}).json()
        return dict(next(s for s in rows if s["id"] == self.entry["id"]))

    def kill_switch(self) -> int:
        r = self.api.post("/api/risk/rules", json={"rule_type": "kill_switch", "note": "stop"})
        assert r.status_code == 201, r.text
        return int(r.json()["id"])


@pytest.fixture
def live(api_factory: Any, tmp_path: Path) -> Iterator[Live]:
    """A live portfolio with one approved market entry (the next open) waiting for the agent."""
    api = api_factory()
    make_bars(api.platform.settings.data_dir)
    api.login()
    pf, (entry,) = live_portfolio_with_placed_signals(Http(api), slots=1, entry_order="next_open")
    key = api.post("/api/auth/agent-key").json()["key"]
    with kite_stub(KiteState()) as (root, kite):
        agent = Agent(AgentConfig(server="", key=key, state_dir=tmp_path, sync_every=1e9, kite_root=root),
                      broker=KiteBroker(kite.api_key, kite.grant(), root=root))
        agent.server.session = api_factory()
        agent.server.session.headers["Authorization"] = f"Bearer {key}"
        yield Live(api, kite, agent, pf, entry)


def test_an_entry_whose_placing_failed_is_not_sent_once_a_kill_switch_withdraws_it(live: Live) -> None:
    live.kite.fail_places = 1  # Kite does not answer the market order: nothing placed
    live.agent.step()
    assert live.kite.placements == [] and live.signal()["status"] == "placed"
    rule = live.kill_switch()
    live.agent.step()
    assert live.kite.placements == []  # no market BUY under a kill switch
    sig = live.signal()
    assert sig["status"] == "expired"
    assert sig["failure_reason"] == f"kill switch engaged (rule {rule}): never sent to Kite"


def test_a_withdrawal_whose_report_was_lost_is_reported_again_never_placed(live: Live,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    rule = live.kill_switch()
    call = live.agent.server.call

    def server_down_for_results(method: str, path: str, *args: Any, **kw: Any) -> Any:
        if path == "/api/agent/signal-result":
            raise ServerUnavailable("POST /api/agent/signal-result: HTTP 503")
        return call(method, path, *args, **kw)

    monkeypatch.setattr(live.agent.server, "call", server_down_for_results)
    with pytest.raises(ServerUnavailable):
        live.agent.step()  # decided (journalled) not to place it; the report does not get through
    assert live.signal()["status"] == "placed"
    monkeypatch.setattr(live.agent.server, "call", call)
    live.agent.step()
    assert live.kite.placements == []
    sig = live.signal()
    assert sig["status"] == "expired"
    assert sig["failure_reason"] == f"kill switch engaged (rule {rule}): never sent to Kite"
