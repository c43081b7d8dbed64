"""A running job's partial results are replaced while the API reads them: a reader always gets one whole
snapshot (never an error, never a mix), and the snapshot goes when the job ends."""

from __future__ import annotations

import threading
from pathlib import Path

from backtest.research.store import ResultTables


def _rows(n: int) -> list[dict[str, object]]:
    return [{"index": i, "params": {"stop_loss_pct": i % 7}, "metrics": {"sharpe": i / 10, "total_trades": n}}
            for i in range(n)]


def test_a_snapshot_replaced_while_it_is_read_reads_whole(tmp_path: Path) -> None:
    tables = ResultTables(tmp_path)
    ref = tables.partial_ref(7)
    tables.write_partial(7, {"results": _rows(1)})
    stop = threading.Event()

    def writer() -> None:
        n = 1
        while not stop.is_set():
            n = n % 400 + 1
            tables.write_partial(7, {"results": _rows(n)})

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for _ in range(300):
            rows = tables.rows(ref, "results")
            # one snapshot: n rows, each saying it belongs to a snapshot of n rows
            assert rows and {r["metrics"]["total_trades"] for r in rows} == {len(rows)}
            assert [r["index"] for r in rows] == list(range(len(rows)))
            page = tables.rows(ref, "results", limit=2, offset=1)
            assert len(page) <= 2
    finally:
        stop.set()
        thread.join()
    assert tables.count(ref, "results") == len(tables.rows(ref, "results"))
    tables.delete_partial(7)
    assert tables.path(ref, "results") is None and tables.rows(ref, "results") == []
