"""Backtest sizing: entries refused at the fill are reported with their reason, and a configuration that
can never pay for its slots is warned about in the answer (issue 16 item 10)."""

from __future__ import annotations

from typing import Any

import numpy as np

from backtest.engine import BacktestConfig, run_backtest

DATES = np.array(["2023-01-02", "2023-01-03", "2023-01-04", "2023-01-05", "2023-01-06"], dtype="datetime64[D]")
# closes below 95 on 01-03 (signal); the next open gaps up to 96, so 100 % of equity sized at the 94
# close costs more than the cash: the broker refuses a fixed-quantity order it cannot pay for
GAP_UP = [(100.0, 101.0, 99.0, 100.0), (100.0, 100.0, 93.0, 94.0), (96.0, 97.0, 95.0, 96.0),
          (96.0, 97.0, 95.0, 96.0), (96.0, 97.0, 95.0, 96.0)]
STRATEGY: dict[str, Any] = {
    "base_model": "v3_dip_buyer",
    "entry_rules": {"all": [{"left": {"ind": "close"}, "op": "<", "right": 95}]},
    "exit_rules": {"stop_loss_pct": 5, "target_pct": 10, "trailing_stop_pct": None, "max_hold_days": 3,
                   "exit_when": None},
    "params": {"entry_order": "next_open"},
}


def _bars(rows: dict[str, list[tuple[float, float, float, float]]]) -> Any:
    from domain.bars import BarMatrix

    arr = np.array(list(rows.values()), dtype=float)
    return BarMatrix(symbols=tuple(rows), dates=DATES, open=arr[..., 0], high=arr[..., 1], low=arr[..., 2],
                     close=arr[..., 3], volume=np.full(arr.shape[:2], 1000.0), sectors=tuple("S" for _ in rows))


def _config(**kw: Any) -> BacktestConfig:
    base: dict[str, Any] = {"start_date": "2023-01-02", "end_date": "2023-01-06", "starting_capital": 100_000,
                            "position_size_pct": 100, "max_positions": 1, "charges": "none"}
    base.update(kw)
    return BacktestConfig(**base)


def test_an_all_in_entry_refused_at_the_next_open_is_in_the_answer_with_its_reason() -> None:
    out = run_backtest(_bars({"A": GAP_UP}), STRATEGY, _config()).to_dict()
    assert out["trades"] == []
    [refused] = out["refused_entries"]
    # 100,000 / 94 -> 1,063 shares; at the 96 open they cost 1,02,048 > 1,00,000 of cash
    assert (refused["symbol"], refused["signal_date"], refused["date"], refused["quantity"]) == (
        "A", "2023-01-03", "2023-01-04", 1063)
    assert refused["reason_code"] == "insufficient_cash"
    assert "₹1,02,048.00" in refused["reason"] and "₹1,00,000.00" in refused["reason"]  # Indian grouping
    d = out["diagnostics"]
    assert d["refused_entries"] == 1 and d["refused_by_reason"] == {"insufficient_cash": 1}
    assert d["warnings"] == []  # 1 x 100 % fits the capital: the refusal is the gap, not the configuration


def test_a_configuration_that_can_never_fill_its_slots_is_warned_about() -> None:
    d = run_backtest(_bars({"A": GAP_UP}), STRATEGY, _config(max_positions=5, position_size_pct=30)).diagnostics
    [warning] = d["warnings"]
    assert "5 x 30 % = 150 %" in warning and "at most 3 position(s)" in warning
    ok = run_backtest(_bars({"A": GAP_UP}), STRATEGY, _config(max_positions=5, position_size_pct=20)).diagnostics
    assert ok["warnings"] == []
