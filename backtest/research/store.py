"""Research results in the analytics store: each finished job's tables as immutable Parquet files under
`<analytics dir>/research/<ref>/<table>.parquet`, queried with DuckDB (ordering, paging, heatmaps).

Rows are JSON-like dicts; nested objects (a combination's `params`, its `metrics`) become Parquet structs,
so DuckDB can group by any parameter (`params."stop_loss_pct"`). Files are written to a temporary folder
and renamed, so a reader never sees half a job; deleting a job removes its folder.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["ResultTables"]


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class ResultTables:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _dir(self, ref: str) -> Path:
        name = ref.removeprefix("partial-") if ref.startswith("partial-") else ref
        digits = "0123456789" if name != ref else "0123456789abcdef"
        if not name or not all(c in digits for c in name):
            raise ValueError("bad results reference")
        return self.root / ref

    @staticmethod
    def partial_ref(job_id: int) -> str:
        """Where a running job's partial results live (replaced at each snapshot, dropped when it ends)."""
        return f"partial-{int(job_id)}"

    def write_partial(self, job_id: int, tables: dict[str, list[dict[str, Any]]]) -> None:
        """Replace a running job's partial tables: each file is written aside and renamed over the last, so
        a reader sees one whole snapshot of a table or the one before."""
        folder = self._dir(self.partial_ref(job_id))
        folder.mkdir(parents=True, exist_ok=True)
        for name, rows in tables.items():
            tmp = folder / f".{name}-{uuid.uuid4().hex}.parquet"
            pq.write_table(_arrow(name, rows), tmp)
            os.replace(tmp, folder / f"{name}.parquet")

    def delete_partial(self, job_id: int) -> None:
        shutil.rmtree(self._dir(self.partial_ref(job_id)), ignore_errors=True)

    def write(self, tables: dict[str, list[dict[str, Any]]]) -> str:
        """Store a job's tables; returns their reference."""
        ref = uuid.uuid4().hex
        tmp = self.root / f".tmp-{ref}"
        tmp.mkdir(parents=True)
        for name, rows in tables.items():
            pq.write_table(_arrow(name, rows), tmp / f"{name}.parquet")
        tmp.rename(self._dir(ref))
        return ref

    def delete(self, ref: str) -> None:
        if ref:
            shutil.rmtree(self._dir(ref), ignore_errors=True)

    def path(self, ref: str, table: str) -> Path | None:
        p = self._dir(ref) / f"{table}.parquet"
        return p if p.exists() else None

    def _query(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        con = duckdb.connect()
        try:
            cur = con.execute(sql, params)
            cols = [d[0] for d in cur.description]
            return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]
        finally:
            con.close()

    def rows(self, ref: str, table: str, limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
        """A table's rows in the order written (a sweep writes its results best first)."""
        path = self.path(ref, table)
        if path is None:
            return []
        if ref.startswith("partial-"):
            rows = _snapshot(path).drop(["_row"]).to_pylist()  # written in order
            return rows[offset:] if limit is None else rows[offset:offset + limit]
        if pq.read_schema(path).names == ["_row"]:  # written empty
            return []
        sql = "SELECT * EXCLUDE (_row) FROM read_parquet(?) ORDER BY _row"
        params: list[Any] = [str(path)]
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            params += [limit, offset]
        return [_plain(r) for r in self._query(sql, params)]

    def count(self, ref: str, table: str) -> int:
        path = self.path(ref, table)
        if path is None:
            return 0
        if ref.startswith("partial-"):
            return int(_snapshot(path).num_rows)
        return int(self._query("SELECT count(*) AS n FROM read_parquet(?)", [str(path)])[0]["n"])

    def heatmap(self, ref: str, table: str, x: str, y: str, metric: str | None) -> dict[str, Any]:
        """The best value per (x, y) cell over every other parameter: `value` is the best objective among
        the eligible combinations of the cell, or `metric` of that best combination."""
        path = self.path(ref, table)
        if path is None:
            return {"x": x, "y": y, "metric": metric or "objective", "x_values": [], "y_values": [], "values": []}
        shown = "objective" if metric is None else f"metrics.{_ident(metric)}"
        sql = (f"SELECT params.{_ident(x)} AS x, params.{_ident(y)} AS y, "
               f"arg_max({shown}, objective) AS v FROM read_parquet(?) WHERE eligible "
               "GROUP BY ALL ORDER BY 1, 2")
        cells = self._query(sql, [str(path)])
        xs = sorted({c["x"] for c in cells}, key=_sort_key)
        ys = sorted({c["y"] for c in cells}, key=_sort_key)
        grid: list[list[Any]] = [[None] * len(xs) for _ in ys]
        xi = {json.dumps(v): i for i, v in enumerate(xs)}
        yi = {json.dumps(v): i for i, v in enumerate(ys)}
        for c in cells:
            grid[yi[json.dumps(c["y"])]][xi[json.dumps(c["x"])]] = c["v"]
        return {"x": x, "y": y, "metric": metric or "objective", "x_values": xs, "y_values": ys, "values": grid}


def _snapshot(path: Path) -> pa.Table:
    """A partial table, which the running job replaces (renames over) while it may be read: its bytes are
    read through one open file -- one version -- before parsing (a reader opening the path twice could
    read the footer of one version and the pages of the next)."""
    with open(path, "rb") as fh:
        data = fh.read()
    return pq.read_table(pa.BufferReader(data))


def _arrow(name: str, rows: list[dict[str, Any]]) -> pa.Table:
    if not name.isidentifier():
        raise ValueError("bad table name")
    if rows:
        return pa.Table.from_pylist([{"_row": i, **r} for i, r in enumerate(rows)])
    return pa.table({"_row": pa.array([], pa.int64())})


def _sort_key(v: Any) -> tuple[int, Any]:
    if v is None:
        return (2, 0)
    if isinstance(v, int | float):
        return (0, v)
    return (1, str(v))


def _plain(value: Any) -> Any:
    """DuckDB values back as JSON values (structs are dicts already; NaN never stored)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
