"""Reference runs: the engine's answer on seeded bars, pinned run by run to what the engine answered before
its speed work (issue 21, "Engine speed"): every trade, refused entry and open position exactly, and the
summary, diagnostics, equity curve and domain events by digest.

The golden file is written by this very test (`ENGINE_GOLDEN_UPDATE=1 pytest tests/acceptance/
test_engine_reference_runs.py`), never by hand: regenerate it only for a change meant to alter trades, and
say so in the commit. The scenarios cover what the day loop does: market entries at the next open and exit
rules (sma_crossover, as in bench/backtest.py), limit GTT entries that fill, expire or are refused for cash,
fixed stops, targets and max hold under sector caps (v3_dip_buyer), trailing stops (momentum_breakout), and
symbols with missing bars (a late listing, a suspension, a delisting).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from backtest.engine import BacktestConfig, run_backtest
from domain.bars import BarMatrix

GOLDEN = Path(__file__).with_name("golden") / "engine_reference_runs.json"
SECTORS = ("Bank", "IT", "Auto", "Pharma", "FMCG", "Metals")


def seeded_bars(n_symbols: int = 40, n_days: int = 640, seed: int = 2021) -> BarMatrix:
    """A seeded random walk on the paise grid with gaps: row 3 lists late, row 7 is suspended for three
    weeks, row 11 is delisted before the end."""
    rng = np.random.default_rng(seed)
    dates = np.arange(np.datetime64("2019-01-01"), np.datetime64("2019-01-01") + 2 * n_days)
    dates = dates[np.is_busday(dates)][:n_days]
    vol = rng.uniform(0.012, 0.03, (n_symbols, 1))
    close = rng.uniform(80, 3000, (n_symbols, 1)) * np.exp(
        np.cumsum(rng.normal(0.0003, 1.0, (n_symbols, n_days)) * vol, axis=1))
    prev = np.concatenate([close[:, :1], close[:, :-1]], axis=1)
    open_ = prev * (1 + 0.4 * vol * rng.standard_normal((n_symbols, n_days)))
    span = np.abs(vol * rng.standard_normal((n_symbols, n_days))) * close
    high = np.maximum(open_, close) + 0.6 * span
    low = np.minimum(open_, close) - 0.6 * span
    volume = rng.lognormal(13, 0.5, (n_symbols, n_days)).round()
    fields = [np.round(a, 2) for a in (open_, high, low, close)]
    for a in fields:
        a[3, :150] = np.nan
        a[7, 300:315] = np.nan
        a[11, -80:] = np.nan
    volume[3, :150] = volume[7, 300:315] = volume[11, -80:] = 0.0
    return BarMatrix(symbols=tuple(f"S{i:03d}" for i in range(n_symbols)), dates=dates, open=fields[0],
                     high=fields[1], low=fields[2], close=fields[3], volume=volume,
                     sectors=tuple(SECTORS[i % len(SECTORS)] for i in range(n_symbols)))


def _config(**kw: Any) -> BacktestConfig:
    base: dict[str, Any] = {"start_date": "2019-12-02", "end_date": "2021-06-15", "starting_capital": 5_000_000,
                            "slippage_bps": 5, "charges": "zerodha_delivery"}
    return BacktestConfig(**{**base, **kw})


SCENARIOS: dict[str, tuple[dict[str, Any], BacktestConfig]] = {
    "sma_crossover_unlimited": (
        {"base_model": "sma_crossover", "params": {"entry_order": "next_open"}},
        _config(position_size_pct=1.0, max_positions=10_000, max_per_sector=None)),
    "v3_dip_buyer_limits": (
        {"base_model": "v3_dip_buyer"},
        _config(position_size_pct=12, max_positions=10, max_per_sector=2)),
    "momentum_breakout_trailing": (
        {"base_model": "momentum_breakout", "params": {"entry_validity_days": 2}},
        _config(position_size_pct=10, max_positions=8, max_per_sector=3)),
    "bollinger_reversion_cash_bound": (
        {"base_model": "bollinger_reversion", "params": {"entry_order": "next_open"}},
        _config(position_size_pct=30, max_positions=6, max_per_sector=None, charges="none", slippage_bps=0)),
}


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def reference_answer(bars: BarMatrix, strategy: dict[str, Any], cfg: BacktestConfig) -> dict[str, Any]:
    res = run_backtest(bars, strategy, cfg, keep_events=True)
    out = res.to_dict()
    out["diagnostics"].pop("elapsed_ms")
    return {
        "trades": out["trades"],
        "refused_entries": out["refused_entries"],
        "open_positions": out["open_positions"],
        "summary": _digest(out["summary"]),
        "diagnostics": out["diagnostics"],
        "equity_curve": _digest(out["equity_curve"]),
        "monthly_returns": _digest(out["monthly_returns"]),
        "events": out["events"],
        "domain_events": _digest([[type(e).__name__, e.to_data()] for e in res.domain_events]),
    }


@pytest.fixture(scope="module")
def bars() -> BarMatrix:
    return seeded_bars()


@pytest.fixture(scope="module")
def golden(bars: BarMatrix) -> dict[str, Any]:
    if os.environ.get("ENGINE_GOLDEN_UPDATE") == "1":
        answers = {name: reference_answer(bars, s, c) for name, (s, c) in SCENARIOS.items()}
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(answers, sort_keys=True, indent=1) + "\n")
    stored: dict[str, Any] = json.loads(GOLDEN.read_text())
    return stored


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_the_engine_answers_as_the_reference_run(name: str, bars: BarMatrix, golden: dict[str, Any]) -> None:
    strategy, cfg = SCENARIOS[name]
    got = reference_answer(bars, strategy, cfg)
    want = golden[name]
    assert len(want["trades"]) >= 20  # the scenario exercises the loop, not an empty window
    assert got["trades"] == want["trades"]
    assert got["refused_entries"] == want["refused_entries"]
    assert got["open_positions"] == want["open_positions"]
    assert got["diagnostics"] == want["diagnostics"]
    assert got["events"] == want["events"]
    assert {k: got[k] for k in ("summary", "equity_curve", "monthly_returns", "domain_events")} == {
        k: want[k] for k in ("summary", "equity_curve", "monthly_returns", "domain_events")}
