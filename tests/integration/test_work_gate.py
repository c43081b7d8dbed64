"""The work gate: only a few request threads per API process run at once, and a request waiting for
the projector (read-your-writes) gives its slot to others instead of holding up every read."""

from __future__ import annotations

import threading
from typing import Any

from api.guards import WORK_GATE
from api.routers import strategies as strategies_router


def test_only_api_threads_endpoint_calls_run_at_once(api_factory: Any, monkeypatch: Any) -> None:
    api = api_factory(api_threads=2)
    api.login()
    running, peak, lock, third_in = 0, 0, threading.Lock(), threading.Event()
    real = strategies_router.list_strategy_docs

    def slow_list(*args: Any, **kwargs: Any) -> Any:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
            if running == 3:
                third_in.set()
        third_in.wait(0.5)  # stay in a while: without the limit all six are in at once
        with lock:
            running -= 1
        return real(*args, **kwargs)

    monkeypatch.setattr(strategies_router, "list_strategy_docs", slow_list)
    codes: list[int] = []
    readers = [threading.Thread(target=lambda: codes.append(api.get("/api/strategies").status_code))
               for _ in range(6)]
    for t in readers:
        t.start()
    for t in readers:
        t.join(30)
    assert codes == [200] * 6
    assert peak == 2


def test_a_thread_nobody_admitted_passes_through_released() -> None:
    calls: list[str] = []
    with WORK_GATE.released():  # the CLI, the projector, tests: no turn to give back
        calls.append("waited")
    with WORK_GATE.admitted(lambda: calls.append("give back"), lambda: calls.append("take again")):
        with WORK_GATE.released():
            calls.append("waited")
        with WORK_GATE.released():
            calls.append("waited")
    assert calls == ["waited", "give back", "waited", "take again", "give back", "waited", "take again"]


def test_reads_go_on_while_a_command_waits_for_the_projector(api_factory: Any, monkeypatch: Any) -> None:
    api = api_factory(api_threads=1)  # one request thread at a time
    api.login()
    ryw = api.app.state.read_your_writes
    projector_slow, waiting, projected = threading.Event(), threading.Event(), threading.Event()
    real_wait = ryw._wait

    def slow_projector(*args: Any) -> bool:
        waiting.set()
        projector_slow.wait(5)
        projected.set()
        return bool(real_wait(*args))

    monkeypatch.setattr(ryw, "_reached_now", lambda *args: False)  # the projector has not got there yet
    monkeypatch.setattr(ryw, "_wait", slow_projector)
    created: dict[str, Any] = {}

    def create() -> None:
        created["response"] = api.post("/api/strategies", json={"name": "waits", "base_model": "sma_crossover"})

    writer = threading.Thread(target=create)
    writer.start()
    try:
        assert waiting.wait(10)
        listed = api.get("/api/strategies", params={"is_template": True})
        assert listed.status_code == 200 and listed.json()
        assert not projected.is_set(), "the list was served while the create still waited for its projection"
    finally:
        projector_slow.set()
        writer.join(15)
    assert created["response"].status_code == 201
    mine = api.get("/api/strategies", params={"q": "waits"}).json()
    assert [s["name"] for s in mine] == ["waits"]
