"""The analytics store for backtest detail: per-trade rows and equity curves as Parquet files, read
with pyarrow. Files are immutable per run (written once, then only read or deleted), so any number of
API processes can read them while another writes new ones: no single-writer database needed."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

_PARTS = ("trades", "equity_curve", "refused_entries")


class BacktestArchive:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _dir(self, ref: str) -> Path:
        if not ref or not all(c in "0123456789abcdef" for c in ref):
            raise ValueError(f"bad detail reference {ref!r}")
        return self.root / ref

    def write(self, trades: list[dict[str, Any]], equity_curve: list[dict[str, Any]],
              refused_entries: list[dict[str, Any]] | None = None) -> str:
        """Store one run's detail; returns its reference. Written to a temporary folder and renamed, so a
        reader never sees half a run."""
        ref = uuid.uuid4().hex
        final = self._dir(ref)
        tmp = self.root / f".tmp-{ref}"
        tmp.mkdir(parents=True)
        for name, rows in zip(_PARTS, (trades, equity_curve, refused_entries or []), strict=True):
            if rows:  # an empty part has no file: it reads back as []
                table = pa.Table.from_pylist([{"_row": i, **r} for i, r in enumerate(rows)])
                pq.write_table(table, tmp / f"{name}.parquet")
        tmp.rename(final)
        return ref

    def read(self, ref: str) -> dict[str, list[dict[str, Any]]]:
        """The run's detail, rows in the order written (pyarrow keeps a file's row order; opening a DuckDB
        connection for this cost more than the read)."""
        folder = self._dir(ref)
        out: dict[str, list[dict[str, Any]]] = {}
        for name in _PARTS:
            path = folder / f"{name}.parquet"
            out[name] = pq.read_table(path).drop_columns(["_row"]).to_pylist() if path.exists() else []
        return out

    def delete(self, ref: str) -> None:
        shutil.rmtree(self._dir(ref), ignore_errors=True)
