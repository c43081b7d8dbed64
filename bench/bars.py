"""Bar store benchmark: generate NIFTY 100 history, then time cold and warm BarMatrix reads.

    .venv/bin/python bench/bars.py [--keep DIR]

"cold" = the process cache is empty, so the read scans the Parquet files (the OS page cache is
warm); "first cold" is the first read in the process (pyarrow's one-time set-up included); "warm"
= the dataset is already in memory, as for every backtest after the first. Target: warm < 50 ms.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from infra.bars.store import BarStore, clear_cache
from infra.bars.synthetic import generate
from infra.bars.universes import load_universe

GENERATE_RANGE = ("2015-01-01", "2026-11-24")
READ_RANGE = ("2020-01-01", "2026-01-01")


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", type=Path, default=None, help="generate into this directory and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.keep or Path(tmp)
        store = BarStore(data_dir)
        universe = load_universe("nifty_100")

        gen_s = timed(lambda: generate(store, universe, *GENERATE_RANGE))
        print(
            f"generate nifty_100 + indices {GENERATE_RANGE[0]}..{GENERATE_RANGE[1]}: {gen_s:.2f} s, "
            f"{store.manifest()['rows']:,} bars"
        )

        symbols = universe.symbols

        def read() -> object:
            return store.read(symbols, *READ_RANGE)

        clear_cache()
        first_cold = timed(read)
        cold = []
        for _ in range(5):
            clear_cache()
            cold.append(timed(read))
        warm = [timed(read) for _ in range(20)]
        shape = store.read(symbols, *READ_RANGE).close.shape
        print(
            f"read nifty_100 x {READ_RANGE[0]}..{READ_RANGE[1]} "
            f"({shape[0]} x {shape[1]} = {shape[0] * shape[1]:,} cells)"
        )
        print(f"  first cold read  {first_cold * 1000:7.1f} ms")
        print(f"  cold read        {statistics.median(cold) * 1000:7.1f} ms  (median of 5, cache cleared)")
        print(
            f"  warm read        {statistics.median(warm) * 1000:7.1f} ms"
            f"  (median of 20; min {min(warm) * 1000:.1f} ms)"
        )


if __name__ == "__main__":
    main()
