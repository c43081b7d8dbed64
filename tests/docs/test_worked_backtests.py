"""Every worked backtest in the guides reproduces the numbers printed beside it, through the real API,
on the synthetic history `make run` generates (NIFTY 50 members from 2015-01-01)."""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

import pytest

from infra.bars.store import BarStore
from infra.bars.synthetic import generate
from infra.bars.universes import load_universe
from tests.docs.guides import Block, blocks, read

GUIDES = ("docs/STRATEGIES.md", "docs/BACKTESTING.md")


def _examples() -> list[tuple[Block, list[Block]]]:
    """Each ```json backtest block with the ```json result blocks that follow it (before the next run)."""
    out: list[tuple[Block, list[Block]]] = []
    for guide in GUIDES:
        for block in blocks(guide):
            if block.info == "json backtest":
                out.append((block, []))
            elif block.info == "json result":
                assert out and out[-1][0].guide == guide, f"{block.where}: a result with no backtest before it"
                out[-1][1].append(block)
    return out


def _strategies() -> dict[str, dict[str, Any]]:
    named = {}
    for guide in GUIDES:
        for block in blocks(guide, "strategy"):
            body = block.json()
            named[body["name"]] = {k: body[k] for k in ("base_model", "entry_rules", "exit_rules", "params")
                                   if k in body}
    return named


def _lookup(run: dict[str, Any], path: str) -> Any:
    parts = path.split(".")
    node: Any = run if parts[0] in ("diagnostics", "trades", "open_positions") else run["summary"]
    for part in parts:
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


@pytest.fixture
def history(api: Any) -> Any:
    generate(BarStore(api.platform.settings.data_dir), load_universe("nifty_50"), date(2015, 1, 1),
             date(2019, 12, 31))
    api.login()
    return api


def test_worked_backtests_reproduce_the_printed_numbers(history: Any) -> None:
    examples = _examples()
    assert len(examples) >= 8 and all(results for _, results in examples)
    named = _strategies()
    stale = []
    runs: dict[str, dict[str, Any]] = {}  # the same request printed in two guides runs once
    for request, results in examples:
        body = request.json()
        if isinstance(body["strategy"], str):
            body["strategy"] = named[body["strategy"]]
        key = json.dumps(body, sort_keys=True)
        if key not in runs:
            r = history.post("/api/backtest/run", json=body)
            assert r.status_code == 200, f"{request.where}: {r.text}"
            runs[key] = r.json()
        run = runs[key]
        for result in results:
            for path, printed in result.json().items():
                actual = _lookup(run, path)
                if actual != printed:
                    stale.append(f"{result.where}: {path} is {actual!r}, the guide prints {printed!r}")
    assert not stale, "the guides' numbers are stale:\n" + "\n".join(stale)


def test_every_request_field_metric_and_diagnostic_is_in_the_backtesting_guide(history: Any) -> None:
    from api.routers.backtest import BacktestRequest

    text = read("docs/BACKTESTING.md")
    first_cells = [line.split("|")[1] for line in text.splitlines() if line.startswith("| `")]
    named = {name for cell in first_cells for name in re.findall(r"`([a-z_]+)`", cell)}
    missing = [f for f in BacktestRequest.model_fields if f not in named]
    run = history.post("/api/backtest/run", json={
        "strategy": {"base_model": "sma_crossover"}, "symbols": ["INFY", "TCS"], "start_date": "2019-01-01",
        "end_date": "2019-06-30", "starting_capital": 100000}).json()
    missing += [f"summary.{k}" for k in run["summary"] if k not in named]
    missing += [f"diagnostics.{k}" for k in run["diagnostics"] if k not in named]
    assert not missing, "not described in docs/BACKTESTING.md's tables: " + ", ".join(missing)
