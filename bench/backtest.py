"""Benchmark of the backtest engine.

    .venv/bin/python bench/backtest.py [--runs 15] [--symbols 100] [--skip-backtesting-py] [--skip-vectorbt]

vectorbt is the anchor of item 2's second comparison; it is not a runtime dependency. Install it with the
`bench` extra: `.venv/bin/pip install -e '.[bench]'` (without it that comparison is skipped, saying so).

Prints:
1. v3_dip_buyer defaults on N symbols x 2020-01-01..2026-01-01 (+300 warm-up days), max_positions 20,
   max_per_sector 2: median / p95 time inside run_backtest (target: median <= 0.15 s);
2. sma_crossover 10/30, next_open, no portfolio limits: engine time (median wall and CPU time) vs
   - vectorbt, warm (numba compiled by a first call), one `Portfolio.from_signals` over all symbols with
     shared cash, on the same bars in this process: its SMAs (`vbt.MA`), the crossovers from the window's
     start, entries and exits at the next day's open, 0.5 % of the starting capital per entry; median
     wall and CPU time over the same number of runs, its trade count next to the engine's, and the ratio
     engine / vectorbt (target: <= 2x, on CPU time: the wall-clock ratio on a busy machine measures the
     neighbours, so both are printed);
   - backtesting.py looping the same symbols with the same rules, and the speed-up (target: >= 10x);
3. peak memory: RSS growth per run and the tracemalloc peak of one run.

Bars come from `infra.bars.synthetic.generate` (NIFTY 100, written to a temporary BarStore) when that
works, else (or with --random-walk) from a seeded random walk built here.
"""

from __future__ import annotations

import argparse
import gc
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backtest.engine import BacktestConfig, run_backtest
from domain.bars import BarMatrix

SECTORS = ("Financial Services", "Information Technology", "Automobile", "Healthcare", "FMCG",
           "Metals & Mining", "Oil Gas", "Capital Goods", "Power", "Consumer Services")


def random_walk_bars(n_symbols: int, start: str, end: str, seed: int = 7) -> BarMatrix:
    """Seeded geometric random walk OHLCV on business days from `start` to `end`."""
    rng = np.random.default_rng(seed)
    dates = np.arange(np.datetime64(start), np.datetime64(end) + 1, dtype="datetime64[D]")
    dates = dates[np.is_busday(dates)]
    n = len(dates)
    drift = rng.normal(0.0004, 0.0003, size=(n_symbols, 1))
    vol = rng.uniform(0.012, 0.028, size=(n_symbols, 1))
    rets = drift + vol * rng.standard_normal((n_symbols, n))
    close = rng.uniform(80, 3000, size=(n_symbols, 1)) * np.exp(np.cumsum(rets, axis=1))
    prev = np.concatenate([close[:, :1], close[:, :-1]], axis=1)
    open_ = prev * (1 + 0.4 * vol * rng.standard_normal((n_symbols, n)))
    span = np.abs(vol * rng.standard_normal((n_symbols, n))) * close
    high = np.maximum(open_, close) + 0.6 * span
    low = np.minimum(open_, close) - 0.6 * span
    volume = rng.lognormal(13, 0.5, size=(n_symbols, n)).round()
    symbols = tuple(f"SYM{i:03d}" for i in range(n_symbols))
    sectors = tuple(SECTORS[i % len(SECTORS)] for i in range(n_symbols))
    r2 = np.round
    return BarMatrix(symbols=symbols, dates=dates, open=r2(open_, 2), high=r2(high, 2), low=r2(low, 2),
                     close=r2(close, 2), volume=volume, sectors=sectors)


def load_bars(n_symbols: int, start: str, end: str) -> tuple[BarMatrix, np.ndarray | None, str]:
    """(bars, benchmark closes or None, description of the source)."""
    try:
        from infra.bars.store import BarStore
        from infra.bars.synthetic import generate
        from infra.bars.universes import load_universe
    except ImportError:
        return random_walk_bars(n_symbols, start, end), None, "seeded random walk (bench)"
    try:
        universe = load_universe("nifty_100")
        with tempfile.TemporaryDirectory() as tmp:
            store = BarStore(Path(tmp))
            generate(store, universe, start, end)
            members = universe.symbols[:n_symbols]
            bars = store.read(members, start, end, sectors=universe.sectors[:n_symbols])
            index = store.read([universe.index_symbol], start, end, missing="nan")
        bench = index.close[0] if index.n_days == bars.n_days else None
        return bars, bench, "infra.bars.synthetic (nifty_100) via BarStore"
    except Exception as exc:  # an interface still in flux: fall back rather than fail the bench
        print(f"(synthetic/BarStore not usable: {exc!r}; using the bench's random walk)")
        return random_walk_bars(n_symbols, start, end), None, "seeded random walk (bench)"


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def time_runs(bars: BarMatrix, strategy: dict[str, Any], config: BacktestConfig, runs: int,
              bench: np.ndarray | None = None, cpu: list[float] | None = None) -> list[float]:
    """Wall times of `runs` runs (and their CPU times appended to `cpu`)."""
    return timed(lambda: run_backtest(bars, strategy, config, bench), runs, cpu)


def timed(fn: Any, runs: int, cpu: list[float] | None = None) -> list[float]:
    times = []
    for _ in range(runs):
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - t0)
        if cpu is not None:
            cpu.append(time.process_time() - c0)
    return times


def vectorbt_sma(bars: BarMatrix, start: str, fast: int, slow: int, capital: float,
                 size_pct: float) -> Any:
    """A function running the SMA crossover in vectorbt on `bars` (one call = one warm run)."""
    import pandas as pd
    import vectorbt as vbt

    index = pd.DatetimeIndex(bars.dates.astype("datetime64[ns]"))
    close = pd.DataFrame(bars.close.T, index=index, columns=list(bars.symbols))
    open_ = pd.DataFrame(bars.open.T, index=index, columns=list(bars.symbols))
    first = int(index.searchsorted(pd.Timestamp(start)))

    def run() -> Any:
        f = vbt.MA.run(close, fast).ma.to_numpy()
        s = vbt.MA.run(close, slow).ma.to_numpy()
        up = f > s
        down = f < s
        up[1:] &= f[:-1] <= s[:-1]
        down[1:] &= f[:-1] >= s[:-1]
        up[:max(first, 1)] = down[:max(first, 1)] = False  # signals from the window's start...
        up[-1] = down[-1] = False  # ...and none at the last close (never filled), as the engine
        entries = np.zeros_like(up)
        exits = np.zeros_like(down)
        entries[1:], exits[1:] = up[:-1], down[:-1]  # act at the next day's open
        return vbt.Portfolio.from_signals(close, entries, exits, price=open_, size=capital * size_pct / 100.0,
                                          size_type="value", fees=0.0012, init_cash=capital,
                                          cash_sharing=True, group_by=True, freq="1D")
    return run


def backtesting_py_time(bars: BarMatrix, start: str, fast: int, slow: int) -> tuple[float, int]:
    import pandas as pd
    from backtesting import Backtest, Strategy

    def sma(x: Any, n: int) -> Any:
        return pd.Series(x).rolling(n).mean().to_numpy()

    class SmaCross(Strategy):  # type: ignore[misc]
        def init(self) -> None:
            self.fast = self.I(sma, self.data.Close, fast)
            self.slow = self.I(sma, self.data.Close, slow)

        def next(self) -> None:
            f, s = self.fast, self.slow
            if len(f) < 2 or len(self.data) - 1 < np.searchsorted(self.data.index, pd.Timestamp(start)):
                return
            if not self.position and f[-1] > s[-1] and f[-2] <= s[-2]:
                self.buy(size=0.5)
            elif self.position and f[-1] < s[-1] and f[-2] >= s[-2]:
                self.position.close()

    total = 0.0
    n_trades = 0
    index = pd.DatetimeIndex(bars.dates.astype("datetime64[ns]"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(bars.n_symbols):
            df = pd.DataFrame({"Open": bars.open[i], "High": bars.high[i], "Low": bars.low[i],
                               "Close": bars.close[i], "Volume": bars.volume[i]}, index=index).dropna()
            t0 = time.perf_counter()
            bt = Backtest(df, SmaCross, cash=10_000_000, commission=0.0, trade_on_close=False,
                          exclusive_orders=True)
            stats = bt.run()
            total += time.perf_counter() - t0
            n_trades += len(stats["_trades"])
    return total, n_trades


def compare_vectorbt(bars: BarMatrix, start: str, cfg: BacktestConfig, runs: int, engine_wall: list[float],
                     engine_cpu: list[float]) -> None:
    try:
        vbt_run = vectorbt_sma(bars, start, 10, 30, cfg.starting_capital, cfg.position_size_pct)
    except ImportError:
        print("vectorbt: not installed (pip install -e '.[bench]'); comparison skipped")
        return
    pf = vbt_run()  # compiles numba's functions: the runs below are warm
    cpu: list[float] = []
    wall = statistics.median(timed(vbt_run, runs, cpu))
    cpu_med = statistics.median(cpu)
    wall_ratio = statistics.median(engine_wall) / wall
    cpu_ratio = statistics.median(engine_cpu) / cpu_med
    print(f"vectorbt (warm) over the same bars: median {wall * 1000:.1f} ms (CPU {cpu_med * 1000:.1f} ms), "
          f"{int(pf.trades.closed.count())} closed trades + {int(pf.trades.open.count())} open\n"
          f"  -> engine / vectorbt = {wall_ratio:.2f}x wall, {cpu_ratio:.2f}x CPU "
          f"(target <= 2x: {'OK' if cpu_ratio <= 2 else 'MISSED'})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--symbols", type=int, default=100)
    ap.add_argument("--skip-backtesting-py", action="store_true")
    ap.add_argument("--skip-vectorbt", action="store_true")
    ap.add_argument("--random-walk", action="store_true", help="use the bench's own random walk")
    args = ap.parse_args()

    start, end = "2020-01-01", "2026-01-01"
    warm_start = str(np.datetime64(start) - np.timedelta64(435, "D"))  # ~300 business days of warm-up
    bars, bench, source = load_bars(args.symbols, warm_start, end)
    if args.random_walk:
        bars, bench, source = random_walk_bars(args.symbols, warm_start, end), None, "seeded random walk (bench)"
    print(f"bars: {bars.n_symbols} symbols x {bars.n_days} days ({bars.dates[0]}..{bars.dates[-1]}), {source}")

    v3 = {"base_model": "v3_dip_buyer"}
    v3_cfg = BacktestConfig(start_date=start, end_date=end, starting_capital=10_000_000, position_size_pct=10,
                            max_positions=20, max_per_sector=2, slippage_bps=5)
    run_backtest(bars, v3, v3_cfg, bench)  # warm caches/imports
    rss0 = rss_mb()
    times = time_runs(bars, v3, v3_cfg, args.runs, bench)
    rss1 = rss_mb()
    res = run_backtest(bars, v3, v3_cfg, bench)
    med = statistics.median(times)
    p95 = sorted(times)[max(0, round(0.95 * len(times)) - 1)]
    print(f"\nv3_dip_buyer: median {med * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms over {args.runs} runs "
          f"(target <= 150 ms: {'OK' if med <= 0.15 else 'MISSED'})")
    d = res.diagnostics
    print(f"  trades {len(res.trades)}, open {len(res.open_positions)}, events {res.events['count']}, "
          f"signals {d['signals_generated']}, placed {d['orders_placed']}, filled {d['entries_filled']}, "
          f"expired {d['entries_expired']}, skipped max_positions {d['skipped_max_positions']}, "
          f"max_per_sector {d['skipped_max_per_sector']}, cash {d['skipped_cash']}")
    print(f"  final equity {res.summary['final_equity']:.0f}, cagr {res.summary['cagr']}, "
          f"sharpe {res.summary['sharpe']}, benchmark {res.summary['benchmark_return']}, "
          f"beta {res.summary['beta']}")

    sma_strategy = {"base_model": "sma_crossover", "params": {"entry_order": "next_open"}}
    sma_cfg = BacktestConfig(start_date=start, end_date=end, starting_capital=10_000_000,
                             position_size_pct=0.5, max_positions=10_000, max_per_sector=None)
    run_backtest(bars, sma_strategy, sma_cfg)
    sma_cpu: list[float] = []
    sma_times = time_runs(bars, sma_strategy, sma_cfg, args.runs, cpu=sma_cpu)
    sma_med = statistics.median(sma_times)
    sma_res = run_backtest(bars, sma_strategy, sma_cfg)
    print(f"\nsma_crossover engine: median {sma_med * 1000:.1f} ms (CPU {statistics.median(sma_cpu) * 1000:.1f} "
          f"ms) over {args.runs} runs, {len(sma_res.trades)} closed trades + {len(sma_res.open_positions)} open")
    if not args.skip_vectorbt:
        compare_vectorbt(bars, start, sma_cfg, args.runs, sma_times, sma_cpu)
    if not args.skip_backtesting_py:
        bt_time, bt_trades = backtesting_py_time(bars, start, 10, 30)
        ratio = bt_time / sma_med
        print(f"backtesting.py over the same {bars.n_symbols} symbols: {bt_time:.2f} s, {bt_trades} trades "
              f"-> engine is {ratio:.1f}x faster (target >= 10x: {'OK' if ratio >= 10 else 'MISSED'})")

    gc.collect()
    tracemalloc.start()
    run_backtest(bars, v3, v3_cfg)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"\nmemory: RSS growth over {args.runs} v3 runs {rss1 - rss0:.1f} MB "
          f"({(rss1 - rss0) / args.runs:.2f} MB per run); tracemalloc peak of one v3 run {peak / 2**20:.1f} MB; "
          f"RSS now {rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
