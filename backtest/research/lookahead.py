"""Look-ahead and recursion checks of a strategy (as freqtrade's `lookahead-analysis` and
`recursive-analysis`), run by the same engine and domain code as a backtest.

**Look-ahead.** The strategy is run once over the whole window, then again with the data cut at sampled
trading days (seeded): for a cut on day c the bars after c do not exist, exactly as for a backtest whose
`end_date` is c. Anything known at or before c must come out the same both times; every difference is a
finding, meaning something used bars from after the day it was computed for:

- `indicator`: a value of an indicator the rules read (`sma(10)`, `rsi(14)`, ...) on a day <= c;
- `entry_signal` / `exit_signal`: the entry or exit rules on a day <= c;
- `conviction`: the ranking score on a day <= c;
- `entry`: a position entered on a day <= c (symbol, day, price, quantity), present in one run only or
  different; `exit`: a position closed on a day <= c (its exit day, price and reason);
- `equity`: the close-to-close equity on a day <= c.

Indicator values are compared with a relative tolerance of 1e-9 (recursive indicators are evaluated in
blocks; a shorter matrix can round the last block's products differently in the last bits); everything
else exactly. The default engine and indicators are free of look-ahead by construction (a value at day t
reads bars at or before t; tests/unit/test_rule_eval.py), so a finding means an indicator or strategy
plugged in through `cache_factory` reads the future.

**Recursion.** Recursive indicators (EMA, RSI, ATR: each value carries the previous one) depend on where
the data starts. The window is re-run from later starting points -- `warmup_days` trading days of history
before `start_date` instead of all of it -- and for each indicator the report gives the largest relative
difference on the window's days (percent) and how many entry signals in the window change. Moving
averages over a fixed window (SMA) show 0 once the warm-up covers their period; EMA(200) with 300 days of
warm-up typically does not: give it more history, or expect its first signals to differ from a longer run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from backtest.engine import BacktestConfig, BacktestResult, run_backtest, validate_config
from domain.bars import BarMatrix
from domain.errors import DomainError
from domain.evaluate import evaluate_strategy
from domain.indicators import IndicatorCache
from domain.rules import Indicator
from domain.strategies import SpecError, normalize_spec

__all__ = ["CacheFactory", "LookaheadSettings", "Reference", "check_cut", "check_recursion", "cut_days",
           "describe", "lookahead_check", "reference", "summarize", "window_columns"]

CacheFactory = Callable[[BarMatrix], IndicatorCache]
RTOL = 1e-9
MAX_CUTS = 50


@dataclass(frozen=True)
class LookaheadSettings:
    cuts: int = 5  # sampled cut days in the window
    seed: int = 0
    warmup_days: tuple[int, ...] = (30, 100)  # recursion: history before start_date, in trading days
    max_findings: int = 100  # findings listed (all are counted)

    def validate(self) -> LookaheadSettings:
        if isinstance(self.cuts, bool) or not isinstance(self.cuts, int) or not 1 <= self.cuts <= MAX_CUTS:
            raise DomainError(f"cuts must be a whole number from 1 to {MAX_CUTS}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise DomainError("seed must be a whole number, 0 or more")
        if len(self.warmup_days) > 5 or any(isinstance(w, bool) or not isinstance(w, int) or not 0 <= w <= 2000
                                            for w in self.warmup_days):
            raise DomainError("warmup_days must list at most 5 whole numbers of trading days from 0 to 2000")
        if not 1 <= self.max_findings <= 10_000:
            raise DomainError("max_findings must be from 1 to 10,000")
        return self


@dataclass
class _Signals:
    """What the strategy computes from bars, in the bar matrix's columns."""

    entry: npt.NDArray[np.bool_]
    exit: npt.NDArray[np.bool_] | None
    conviction: npt.NDArray[np.float64]
    indicators: dict[str, npt.NDArray[np.float64]]


def _spec(strategy: dict[str, Any]) -> dict[str, Any]:
    try:
        spec = normalize_spec(strategy.get("base_model", ""), strategy.get("entry_rules"),
                              strategy.get("exit_rules"), strategy.get("params"))
    except SpecError as exc:
        raise DomainError(str(exc)) from None
    return spec.to_json()


def _label(ind: Indicator) -> str:
    args = [str(ind.period)] if ind.period is not None else []
    if ind.source and ind.source != "close":
        args.append(ind.source)
    if ind.std is not None and ind.name.startswith("bb_"):
        args.append(f"{ind.std:g}")
    text = f"{ind.name}({', '.join(args)})" if args else ind.name
    return text + (f"[-{ind.offset}]" if ind.offset else "")


def _signals(spec: dict[str, Any], cache: IndicatorCache) -> _Signals:
    """The engine's own evaluation (`domain.evaluate.evaluate_strategy`) plus the value of every indicator
    its rules read, so a cut is compared on exactly what the backtest and the live scan compute."""
    evaluated = evaluate_strategy(spec, cache)
    inds: dict[str, npt.NDArray[np.float64]] = {}
    for rules in (evaluated.entry_rules, evaluated.exit_rules):
        for ind in rules.indicators() if rules is not None else []:
            if ind.name not in ("open", "high", "low", "close", "volume"):
                inds[_label(ind)] = cache.restore(cache.series(ind), np.nan)
    return _Signals(entry=evaluated.entry, exit=evaluated.exit, conviction=evaluated.conviction, indicators=inds)


def _truncate(bars: BarMatrix, first: int, last: int) -> BarMatrix:
    cut = slice(first, last + 1)
    return BarMatrix(symbols=bars.symbols, dates=bars.dates[cut], open=bars.open[:, cut], high=bars.high[:, cut],
                     low=bars.low[:, cut], close=bars.close[:, cut], volume=bars.volume[:, cut], sectors=bars.sectors)


MIN_WINDOW_DAYS = 3  # a cut must fall inside the window


def window_columns(bars: BarMatrix, config: BacktestConfig) -> tuple[int, int]:
    """(first, last) column of the window; at least MIN_WINDOW_DAYS trading days (a cut must fall inside)."""
    config = validate_config(config)
    dates = bars.dates.astype("datetime64[D]")
    s = int(np.searchsorted(dates, np.datetime64(config.start_date), side="left"))
    e = int(np.searchsorted(dates, np.datetime64(config.end_date), side="right")) - 1
    if e - s < MIN_WINDOW_DAYS - 1:
        raise DomainError(f"the window needs at least {MIN_WINDOW_DAYS} trading days to cut it inside")
    return s, e


@dataclass
class Reference:
    """The full-window run a cut is compared with."""

    spec: dict[str, Any]
    config: BacktestConfig
    start: int  # first window column
    end: int  # last window column
    days: list[str]  # ISO dates of every column up to `end`
    signals: _Signals
    result: BacktestResult


def _run(bars: BarMatrix, strategy: dict[str, Any], config: BacktestConfig, last: int,
         benchmark: npt.NDArray[np.float64] | None, cache_factory: CacheFactory) -> tuple[_Signals, BacktestResult]:
    view = _truncate(bars, 0, last)
    cache = cache_factory(view)
    signals = _signals(_spec(strategy), cache)
    result = run_backtest(view, strategy, config, None if benchmark is None else benchmark[:last + 1],
                          indicators=cache)
    return signals, result


def reference(bars: BarMatrix, strategy: dict[str, Any], config: BacktestConfig,
              benchmark: npt.NDArray[np.float64] | None = None,
              cache_factory: CacheFactory = IndicatorCache) -> Reference:
    """Run the whole window once (the reference every cut is compared with)."""
    config = validate_config(config)
    spec = _spec(strategy)
    s, e = window_columns(bars, config)
    signals, result = _run(bars, strategy, config, e, benchmark, cache_factory)
    days = bars.dates[:e + 1].astype("datetime64[D]").astype(str).tolist()
    return Reference(spec, config, s, e, days, signals, result)


def cut_days(start: int, end: int, cuts: int, seed: int) -> list[int]:
    """`cuts` distinct columns strictly inside the window [start, end] (seeded), in time order."""
    inside = np.arange(start + 1, end)
    rng = np.random.default_rng(seed)
    chosen = rng.choice(inside, size=min(cuts, inside.size), replace=False)
    return sorted(int(c) for c in chosen)


Finding = dict[str, Any]


def _num(x: float) -> float | None:
    return None if not np.isfinite(x) else round(float(x), 6)


def _matrix_findings(what: str, name: str | None, full: npt.NDArray[Any], cut: npt.NDArray[Any], last: int,  # noqa: PLR0913
                     ref: Reference, day: str, symbols: Sequence[str], exact: bool) -> tuple[int, list[Finding]]:
    a, b = full[:, :last + 1], cut[:, :last + 1]
    if exact:
        differ = (a != b) & ~(_nan(a) & _nan(b))
    else:
        fa, fb = a.astype(np.float64), b.astype(np.float64)
        both_nan = np.isnan(fa) & np.isnan(fb)
        with np.errstate(invalid="ignore"):
            close = np.abs(fa - fb) <= RTOL * np.maximum(1.0, np.maximum(np.abs(fa), np.abs(fb)))
        differ = ~(both_nan | close)
    rows, cols = np.nonzero(differ)
    order = np.lexsort((rows, cols))[:20]  # earliest days first
    out = []
    for i in order.tolist():
        r, c = int(rows[i]), int(cols[i])
        full_v, cut_v = a[r, c], b[r, c]
        out.append({"cut": day, "what": what, "name": name, "symbol": symbols[r], "date": ref.days[c],
                    "full": bool(full_v) if exact and a.dtype == bool else _num(float(full_v)),
                    "cut_value": bool(cut_v) if exact and b.dtype == bool else _num(float(cut_v))})
    return int(rows.size), out


def _nan(x: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    return np.isnan(x) if x.dtype.kind == "f" else np.zeros(x.shape, dtype=bool)


def _positions(result: BacktestResult, cut_day: str) -> tuple[dict[tuple[str, str], tuple[Any, ...]],
                                                              dict[tuple[str, str], tuple[Any, ...]]]:
    """(entries on or before the cut, exits on or before the cut), keyed by (symbol, entry day)."""
    entries: dict[tuple[str, str], tuple[Any, ...]] = {}
    exits: dict[tuple[str, str], tuple[Any, ...]] = {}
    for t in [*result.trades, *result.open_positions]:
        key = (t["symbol"], t["entry_date"])
        if t["entry_date"] <= cut_day:
            entries[key] = (t["entry_price"], t["quantity"])
        if t.get("exit_date") is not None and t["exit_date"] <= cut_day:
            exits[key] = (t["exit_date"], t["exit_price"], t["exit_reason"])
    return entries, exits


def _trade_findings(what: str, full: dict[tuple[str, str], tuple[Any, ...]],
                    cut: dict[tuple[str, str], tuple[Any, ...]], day: str) -> tuple[int, list[Finding]]:
    keys = sorted(set(full) | set(cut), key=lambda k: (k[1], k[0]))
    out = []
    for key in keys:
        a, b = full.get(key), cut.get(key)
        if a != b:
            out.append({"cut": day, "what": what, "name": None, "symbol": key[0], "date": key[1],
                        "full": list(a) if a is not None else None, "cut_value": list(b) if b is not None else None})
    return len(out), out[:20]


def check_cut(bars: BarMatrix, strategy: dict[str, Any], ref: Reference, cut: int,
              benchmark: npt.NDArray[np.float64] | None = None,
              cache_factory: CacheFactory = IndicatorCache) -> dict[str, Any]:
    """Run with the data cut after column `cut` and compare everything up to it with the reference:
    `{"cut": day, "counts": {what: n}, "findings": [...]}` (at most 20 listed per kind)."""
    day = ref.days[cut]
    config = dataclasses.replace(ref.config, end_date=day)
    signals, result = _run(bars, strategy, config, cut, benchmark, cache_factory)
    symbols = bars.symbols
    counts: dict[str, int] = {}
    findings: list[Finding] = []

    def add(kind: str, found: tuple[int, list[Finding]]) -> None:
        counts[kind] = counts.get(kind, 0) + found[0]
        findings.extend(found[1])

    for name, values in ref.signals.indicators.items():
        add("indicator", _matrix_findings("indicator", name, values, signals.indicators[name], cut, ref, day,
                                          symbols, exact=False))
    add("entry_signal", _matrix_findings("entry_signal", None, ref.signals.entry, signals.entry, cut, ref, day,
                                         symbols, exact=True))
    if ref.signals.exit is not None and signals.exit is not None:
        add("exit_signal", _matrix_findings("exit_signal", None, ref.signals.exit, signals.exit, cut, ref, day,
                                            symbols, exact=True))
    add("conviction", _matrix_findings("conviction", None, ref.signals.conviction, signals.conviction, cut, ref,
                                       day, symbols, exact=False))
    full_entries, full_exits = _positions(ref.result, day)
    cut_entries, cut_exits = _positions(result, day)
    add("entry", _trade_findings("entry", full_entries, cut_entries, day))
    add("exit", _trade_findings("exit", full_exits, cut_exits, day))
    full_curve = {p["date"]: p["equity"] for p in ref.result.equity_curve}
    eq_diff = [(p["date"], full_curve.get(p["date"]), p["equity"]) for p in result.equity_curve
               if full_curve.get(p["date"]) != p["equity"]]
    counts["equity"] = len(eq_diff)
    findings.extend({"cut": day, "what": "equity", "name": None, "symbol": None, "date": d, "full": a,
                     "cut_value": b} for d, a, b in eq_diff[:20])
    return {"cut": day, "counts": counts, "findings": findings}


def check_recursion(bars: BarMatrix, ref: Reference, warmup: int,
                    cache_factory: CacheFactory = IndicatorCache) -> dict[str, Any]:
    """The window's indicators and entry signals when the data starts `warmup` trading days before the
    window instead of at the first bar: `{"warmup_days", "indicators": [{name, max_diff_pct, symbol, date}],
    "entry_signals_changed"}`."""
    first = max(0, ref.start - warmup)
    view = _truncate(bars, first, ref.end)
    signals = _signals(ref.spec, cache_factory(view))
    s = ref.start
    rows = []
    for name, full in ref.signals.indicators.items():
        a = full[:, s:ref.end + 1]
        b = signals.indicators[name][:, s - first:]
        with np.errstate(invalid="ignore", divide="ignore"):
            rel = np.abs(a - b) / np.maximum(np.abs(a), 1e-12) * 100.0
        rel = np.where(np.isnan(a) & np.isnan(b), 0.0, rel)
        rel = np.where(np.isnan(a) != np.isnan(b), np.inf, rel)
        worst = float(np.max(rel)) if rel.size else 0.0
        r, c = np.unravel_index(int(np.argmax(rel)), rel.shape) if rel.size else (0, 0)
        rows.append({"name": name, "max_diff_pct": None if not np.isfinite(worst) else round(worst, 6),
                     "missing_values": int(np.count_nonzero(np.isnan(a) != np.isnan(b))),
                     "symbol": bars.symbols[int(r)] if worst > 0 else None,
                     "date": ref.days[s + int(c)] if worst > 0 else None})
    changed = int(np.count_nonzero(ref.signals.entry[:, s:ref.end + 1] != signals.entry[:, s - first:]))
    return {"warmup_days": ref.start - first, "indicators": rows, "entry_signals_changed": changed}


def describe(ref: Reference) -> dict[str, Any]:
    """The reference's window and the indicators its rules read (the report's header)."""
    return {"window": {"start_date": ref.config.start_date, "end_date": ref.config.end_date,
                       "trading_days": ref.end - ref.start + 1, "warmup_days": ref.start},
            "indicators": list(ref.signals.indicators)}


def summarize(header: dict[str, Any], cut_results: Sequence[dict[str, Any]], recursion: Sequence[dict[str, Any]],
              max_findings: int) -> dict[str, Any]:
    """The report: `clean` (no look-ahead finding), the cuts, counts per kind, findings earliest first."""
    counts: dict[str, int] = {k: 0 for k in ("indicator", "entry_signal", "exit_signal", "conviction", "entry",
                                             "exit", "equity")}
    findings: list[Finding] = []
    for cr in cut_results:
        for k, n in cr["counts"].items():
            counts[k] = counts.get(k, 0) + n
        findings.extend(cr["findings"])
    findings.sort(key=lambda f: (f["date"], f["cut"], f["what"], f["symbol"] or ""))
    return {
        "clean": not any(counts.values()),
        **header,
        "cuts": [cr["cut"] for cr in cut_results],
        "differences": counts,
        "findings": findings[:max_findings],
        "findings_total": sum(counts.values()),
        "recursion": list(recursion),
    }


def lookahead_check(bars: BarMatrix, strategy: dict[str, Any], config: BacktestConfig,
                    settings: LookaheadSettings = LookaheadSettings(),
                    benchmark: npt.NDArray[np.float64] | None = None,
                    cache_factory: CacheFactory = IndicatorCache,
                    progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """The whole check in this process (see the module docstring); `progress(done, total)` after each run."""
    settings = settings.validate()
    ref = reference(bars, strategy, config, benchmark, cache_factory)
    cuts = cut_days(ref.start, ref.end, settings.cuts, settings.seed)
    total = 1 + len(cuts) + len(settings.warmup_days)
    done = 1
    results = []
    for c in cuts:
        results.append(check_cut(bars, strategy, ref, c, benchmark, cache_factory))
        done += 1
        if progress is not None:
            progress(done, total)
    recursion = []
    for w in settings.warmup_days:
        recursion.append(check_recursion(bars, ref, w, cache_factory))
        done += 1
        if progress is not None:
            progress(done, total)
    return summarize(describe(ref), results, recursion, settings.max_findings)
