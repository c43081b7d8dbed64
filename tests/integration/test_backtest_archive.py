"""The analytics store of backtest detail (Parquet read through DuckDB)."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.analytics.backtests import BacktestArchive


def test_detail_round_trips_in_order_with_types(tmp_path: Path) -> None:
    archive = BacktestArchive(tmp_path)
    trades = [{"symbol": "B", "quantity": 3, "pnl": -1.25, "conviction": None},
              {"symbol": "A", "quantity": 10, "pnl": 2.5, "conviction": 71.5}]
    curve = [{"date": f"2020-01-{d:02d}", "equity": 100.0 + d, "cash": 50.0, "drawdown_pct": 0.0}
             for d in range(1, 31)]
    refused = [{"symbol": "C", "date": "2020-01-02", "quantity": 7, "reason_code": "insufficient_cash",
                "reason": "insufficient cash: the fill needs 700.00, cash is 650.00"}]
    ref = archive.write(trades, curve, refused)
    assert archive.read(ref) == {"trades": trades, "equity_curve": curve, "refused_entries": refused}


def test_empty_parts_read_back_empty_and_delete_removes(tmp_path: Path) -> None:
    archive = BacktestArchive(tmp_path)
    ref = archive.write([], [])
    assert archive.read(ref) == {"trades": [], "equity_curve": [], "refused_entries": []}
    archive.delete(ref)
    assert not (tmp_path / ref).exists()


def test_references_cannot_escape_the_archive(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        BacktestArchive(tmp_path).read("../../etc")
