"""`tradertape agent --paper` in process: the agent's loop against the API with the local paper broker
(no Kite): entries fill, positions open, protective exits are placed and fill; the journal makes a
restarted agent skip what it placed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra.kite.agent import Agent, AgentConfig, RateLimiter
from infra.kite.brokers import PaperBroker
from tests.support.live import Http, live_portfolio_with_placed_signals, make_bars


@pytest.mark.filterwarnings("ignore:You should not use the 'timeout' argument")
def test_paper_agent_fills_protects_and_closes(api_factory: Any, tmp_path: Path) -> None:
    api = api_factory()
    make_bars(api.platform.settings.data_dir)
    api.login()
    pf, _ = live_portfolio_with_placed_signals(Http(api), slots=3)
    key = api.post("/api/auth/agent-key").json()["key"]
    broker = PaperBroker()

    def agent() -> Agent:
        a = Agent(AgentConfig(server="", key=key, paper=True, state_dir=tmp_path, sync_every=0), broker=broker)
        a.server.session = api_factory()  # the API in process, with the agent key
        a.server.session.headers["Authorization"] = f"Bearer {key}"
        return a

    first = agent()
    first.step()  # places the entries (single-leg BUY GTTs); the paper GTTs trigger at once and fill
    assert first.stats["placed"] == 3 and first.stats["fills"] == 3 and len(broker._gtts) == 3
    second = agent()  # a restarted agent: entries are not placed again; the protective OCOs are
    second.step()
    assert second.stats["placed"] == 3 and len(broker._gtts) == 6
    assert sorted(g["type"] for g in broker._gtts.values()) == ["single"] * 3 + ["two-leg"] * 3
    again = agent()
    for _ in range(3):
        again.step()
    positions = api.get("/api/model/positions", params={"portfolio_id": pf["id"]}).json()
    assert len(positions) == 3
    assert all(p["status"] == "closed" and p["exit_reason"] in ("target", "stop_loss") for p in positions), positions
    assert len([g for g in broker._gtts.values() if g["type"] == "two-leg"]) == 3
    signals = api.get("/api/model/signals", params={"portfolio_id": pf["id"]}).json()
    assert {s["status"] for s in signals} == {"executed"} and len(signals) == 6


def test_rate_limiter_keeps_to_eight_per_second() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(d: float) -> None:
        slept.append(d)
        now[0] += d

    limiter = RateLimiter(8, clock=lambda: now[0], sleep=sleep)
    for _ in range(20):
        limiter.acquire()
    assert now[0] >= 2.0 and len(slept) >= 2
