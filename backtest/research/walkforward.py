"""Walk-forward analysis with re-fitting: optimise in sample, evaluate out of sample, window after window.

The trading days from `start_date` to `end_date` are cut into `windows` consecutive out-of-sample (OOS)
segments of equal length, each preceded by its in-sample (IS) segment:

- `rolling`: every IS segment has the same length, `in_sample_ratio / (1 - in_sample_ratio)` OOS lengths,
  and rolls forward by one OOS length per window;
- `anchored`: every IS segment starts on `start_date` and grows by one OOS length per window.

So days = IS length + windows x OOS length (the first IS segment takes the days a whole OOS length
leaves over). In each window the sweep's space (grid or random, constraints,
objective, `min_trades`, exactly as a sweep) is run over the IS segment; the best eligible combination is
then run over the OOS segment -- each a standalone backtest of that segment (its own warm-up, starting
capital, nothing carried over). The OOS equity curves are stitched: each window's curve is scaled so it
starts where the previous one ended. A window with no eligible combination stays in cash.

Walk-forward efficiency (Pardo): per window, OOS CAGR / IS CAGR of the chosen combination (null when the
IS CAGR is not positive); overall, the stitched OOS CAGR / the mean IS CAGR of the chosen combinations
(null when that mean is not positive). Around 1 the in-sample edge held out of sample; near 0 or negative
it did not.

While it runs, the windows whose in-sample runs are all done are offered as partial results. When done,
the combination the latest window chose (what walk-forward would trade next) is re-run over the whole span
and recorded as an ordinary backtest run: the job's `best_run_id`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from pydantic import Field

from backtest.research.jobs import BasePlan, JobOutcome, JobPlan, PlanContext, ResultQuery, RunContext, Tables
from backtest.research.jobs import base_plan as resolve_base
from backtest.research.jobs import register as register_kind
from backtest.research.store import ResultTables
from backtest.research.sweeps import Combination, Space, SweepRequest, expand, rank_rows
from backtest.research.worker import run_combination, run_curve
from domain.calendar import nse_calendar
from domain.errors import DomainError
from domain.metrics import summarize

__all__ = ["WalkForward", "WalkForwardRequest", "split_windows", "stitch"]

MIN_SEGMENT_DAYS = 20


class WalkForwardRequest(SweepRequest):
    """A sweep body plus how to cut the window (`top_n` is not used)."""

    windows: int = Field(default=5, ge=1, le=50, description="out-of-sample windows")
    mode: Literal["rolling", "anchored"] = "rolling"
    in_sample_ratio: float = Field(default=0.75, ge=0.2, le=0.95,
                                   description="in-sample share of a rolling window (IS / (IS + OOS))")
    top_n: int = Field(default=0, ge=0, le=0, description="not used by walk-forward")


@dataclass(frozen=True)
class Window:
    index: int
    is_start: str
    is_end: str
    oos_start: str
    oos_end: str

    def to_json(self) -> dict[str, Any]:
        return {"window": self.index, "in_sample": {"start": self.is_start, "end": self.is_end},
                "out_of_sample": {"start": self.oos_start, "end": self.oos_end}}


def split_windows(days: list[date], windows: int, mode: str, ratio: float) -> list[Window]:
    """The windows over `days` (trading days, ascending); DomainError when a segment would be too short."""
    n = len(days)
    oos = int(n // (windows + ratio / (1.0 - ratio)))
    ins = n - windows * oos
    if oos < MIN_SEGMENT_DAYS or ins < MIN_SEGMENT_DAYS:
        raise DomainError(f"{n} trading days cannot hold {windows} out-of-sample windows of at least "
                          f"{MIN_SEGMENT_DAYS} days after an in-sample window: choose fewer windows or a longer span")
    out = []
    for k in range(windows):
        is_lo = 0 if mode == "anchored" else k * oos
        is_hi = ins + k * oos - 1
        oos_hi = n - 1 if k == windows - 1 else is_hi + oos
        out.append(Window(k, days[is_lo].isoformat(), days[is_hi].isoformat(), days[is_hi + 1].isoformat(),
                          days[oos_hi].isoformat()))
    return out


def stitch(curves: list[list[tuple[str, float]]], capital: float) -> list[tuple[str, float]]:
    """Chain window curves (each starting from `capital`): each is scaled to start where the last ended."""
    out: list[tuple[str, float]] = []
    level = capital
    for curve in curves:
        factor = level / capital
        out.extend((d, round(v * factor, 2)) for d, v in curve)
        if curve:
            level = curve[-1][1] * factor
    return out


def _efficiency(oos_cagr: Any, is_cagr: Any) -> float | None:
    if not isinstance(oos_cagr, int | float) or not isinstance(is_cagr, int | float) or is_cagr <= 0:
        return None
    return round(float(oos_cagr) / float(is_cagr), 4)


@dataclass
class WalkForwardPayload:
    base: BasePlan
    combos: list[Combination]
    windows: list[Window]
    req: WalkForwardRequest
    oos_days: dict[int, list[str]]


class WalkForward:
    name = "walk_forward"
    route = "walk-forward"
    request_model = WalkForwardRequest

    def plan(self, ctx: PlanContext, req: WalkForwardRequest) -> JobPlan:
        base = resolve_base(ctx, req)  # checks the strategy, universe and dates first
        days = nse_calendar().trading_days(req.start_date, req.end_date)
        windows = split_windows(days, req.windows, req.mode, req.in_sample_ratio)
        base = dataclasses.replace(base, data=dataclasses.replace(base.data, first_start=windows[0].is_start))
        space = Space(base, "grid" if req.grid is not None else "random")
        per_window = max(1, ctx.max_combinations // max(1, len(windows)))
        values = expand(req, space, per_window)
        combos = [space.build(i, v) for i, v in enumerate(values)]
        total = len(windows) * (len(combos) + 1)
        oos_days = {w.index: [d.isoformat() for d in days if w.oos_start <= d.isoformat() <= w.oos_end]
                    for w in windows}
        params = {**base.params, "grid": req.grid, "random": req.random, "constraints": req.constraints,
                  "objective": req.objective, "min_trades": req.min_trades, "windows": req.windows,
                  "mode": req.mode, "in_sample_ratio": req.in_sample_ratio, "combinations": len(combos),
                  "window_dates": [w.to_json() for w in windows],
                  "labels": {name: space.describe(name) for name in combos[0].params}}
        return JobPlan(params, total, WalkForwardPayload(base, combos, windows, req, oos_days), base.data)

    def run(self, ctx: RunContext, plan: JobPlan) -> JobOutcome:
        p: WalkForwardPayload = plan.payload
        shared = ctx.data(p.base.data)
        items = [(c.strategy, {**c.config, "start_date": w.is_start, "end_date": w.is_end})
                 for w in p.windows for c in p.combos]
        n = len(p.combos)

        def choice(k: int, got: dict[int, Any]) -> dict[str, Any] | None:
            rows = rank_rows(p.combos, [got[k * n + i] for i in range(n)], p.req.objective, p.req.min_trades)
            return rows[0] if rows and rows[0]["eligible"] else None

        def in_sample_done(got: dict[int, Any]) -> Tables:
            """Partial results: the windows whose in-sample runs are all done (out of sample still to run)."""
            return {"results": [_window_row(w, choice(k, got), None) for k, w in enumerate(p.windows)
                                if all(k * n + i in got for i in range(n))]}

        metrics = dict(enumerate(ctx.map(run_combination, shared, items, in_sample_done)))
        chosen = [choice(k, metrics) for k in range(len(p.windows))]
        by_index = {c.index: c for c in p.combos}
        runs = [(k, by_index[row["index"]]) for k, row in enumerate(chosen) if row is not None]
        oos_items = [(c.strategy, {**c.config, "start_date": p.windows[k].oos_start, "end_date": p.windows[k].oos_end})
                     for k, c in runs]

        def out_of_sample_done(got: dict[int, Any]) -> Tables:
            found = {runs[i][0]: v for i, v in got.items()}
            return {"results": [_window_row(w, chosen[k], found.get(k)) for k, w in enumerate(p.windows)]}

        ctx.publish(out_of_sample_done({}))
        oos = dict(zip([k for k, _ in runs], ctx.map(run_curve, shared, oos_items, out_of_sample_done), strict=True))
        ctx.advance(len(p.windows) - len(runs))

        capital = float(p.base.config["starting_capital"])
        curves, trades, invested, charges, rows_out = [], [], 0, 0.0, []
        for k, w in enumerate(p.windows):
            row = chosen[k]
            got = oos.get(k)
            if got is None:
                curves.append([(d, capital) for d in p.oos_days[w.index]])
            else:
                curves.append([(d, v) for d, v in got["curve"]])
                trades.extend(got["trades"])
                invested += got["invested_days"]
                charges += float(got["summary"].get("total_charges") or 0.0)
            rows_out.append(_window_row(w, row, got))
        stitched = stitch(curves, capital)
        dates = [d for d, _ in stitched]
        equity = [v for _, v in stitched]
        oos_summary = summarize(dates=dates, equity=equity, starting_capital=capital, trades=trades,
                                invested_days=invested, total_charges=round(charges, 2))
        is_cagrs = [r["in_sample_metrics"]["cagr"] for r in rows_out
                    if r["in_sample_metrics"] and r["in_sample_metrics"].get("cagr") is not None]
        mean_is = sum(is_cagrs) / len(is_cagrs) if is_cagrs else None
        wfe = _efficiency(oos_summary.get("cagr"), mean_is)
        summary = {"windows": len(p.windows), "mode": p.req.mode, "walk_forward_efficiency": wfe,
                   "in_sample_mean_cagr": None if mean_is is None else round(mean_is, 4),
                   "out_of_sample": _finite(oos_summary),
                   "windows_without_choice": sum(1 for r in chosen if r is None)}
        equity_rows = [{"date": d, "equity": v} for d, v in stitched]
        # best_run_id: the parameters the latest window chose -- what walk-forward would trade next -- run
        # over the whole span as an ordinary backtest (a trader opens it, reads its trades, saves it)
        latest = [c for _, c in runs][-1:]
        return JobOutcome(summary, {"results": rows_out, "oos_equity": equity_rows},
                          [(c.strategy, c.config) for c in latest])

    def present(self, tables: ResultTables, ref: str, query: ResultQuery) -> dict[str, Any]:
        windows = tables.rows(ref, "results")
        return {"results": windows, "windows": windows, "oos_equity": tables.rows(ref, "oos_equity"),
                "results_total": len(windows)}


def _window_row(w: Window, row: dict[str, Any] | None, oos: dict[str, Any] | None) -> dict[str, Any]:
    """A window's result: the chosen combination (None: none eligible) and its out-of-sample run (None: not
    run, or not yet)."""
    is_metrics = row["metrics"] if row else None
    oos_metrics = oos["summary"] if oos else None
    return {**w.to_json(), "params": row["params"] if row else None,
            "in_sample_objective": row["objective"] if row else None,
            "in_sample_metrics": is_metrics, "out_of_sample_metrics": oos_metrics,
            "efficiency": _efficiency((oos_metrics or {}).get("cagr"), (is_metrics or {}).get("cagr"))}


def _finite(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


WALK_FORWARD = register_kind(WalkForward())
