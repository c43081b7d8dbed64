"""Monte Carlo and look-ahead checks as research job kinds (`/api/research/monte-carlo`,
`/api/research/lookahead`): a backtest body plus the check's settings; the work runs in the job's executor
(the local pool or Dask) through the same worker code as a sweep's combinations.

- Monte Carlo: the backtest runs once (one task), then each chosen method (`trades`, `returns`) simulates in
  the job (numpy, seeded: `montecarlo.py`). Work units: the backtest, then one per method. The backtest is
  recorded as an ordinary run (`best_run_id`), so its trades and curve are at hand next to the simulation.
  With `run_id` instead of a backtest body, a recorded run of the caller's is resampled as it is.
- Look-ahead: one task for the full-window reference, one per cut day, one per recursion warm-up
  (`lookahead.py`). Each worker computes the reference once per job and reuses it for its cuts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from typing import Any

from pydantic import Field, field_validator, model_validator

from backtest.engine import BacktestConfig
from backtest.requests import CAPITAL_DESCRIPTION, MAX_CAPITAL, MAX_ID, MIN_CAPITAL, BacktestRequest
from backtest.research.jobs import (
    BasePlan,
    JobOutcome,
    JobPlan,
    PlanContext,
    ResultQuery,
    ResultsTable,
    RunContext,
    TextTable,
)
from backtest.research.jobs import base_plan as resolve_base
from backtest.research.jobs import register as register_kind
from backtest.research.lookahead import (
    MAX_CUTS,
    MIN_WINDOW_DAYS,
    LookaheadSettings,
    Reference,
    check_cut,
    check_recursion,
    cut_days,
    describe,
    reference,
    summarize,
    window_columns,
)
from backtest.research.montecarlo import DEFAULT_PERCENTILES, MAX_SIMULATIONS, MonteCarloSettings, monte_carlo
from backtest.research.store import ResultTables
from backtest.research.worker import SharedBars, _view, run_window
from backtest.runner import json_safe
from domain.calendar import nse_calendar
from domain.errors import DomainError, NotFound
from domain.money import format_inr, format_number

__all__ = ["LOOKAHEAD", "MONTE_CARLO", "LookaheadRequest", "MonteCarloRequest"]


# ---------------------------------------------------------------- Monte Carlo


METHODS = ("trades", "returns")


def _all_methods() -> list[str]:
    return list(METHODS)


class MonteCarloRequest(BacktestRequest):
    """A backtest body plus the simulation's settings; or `run_id`, a recorded run of the caller's, instead of
    the body (its trades and equity curve are resampled, nothing is re-run)."""

    run_id: int | None = Field(default=None, ge=1, le=MAX_ID,
                               description="one of your recorded backtest runs, instead of a backtest body")
    start_date: date | None = None  # type: ignore[assignment]  # not with run_id
    end_date: date | None = None  # type: ignore[assignment]
    starting_capital: float | None = Field(default=None, ge=MIN_CAPITAL, le=MAX_CAPITAL,  # type: ignore[assignment]
                                           description=CAPITAL_DESCRIPTION)

    methods: list[str] = Field(
        default_factory=_all_methods, min_length=1, max_length=2,
        description="trades: reshuffled trade order; returns: bootstrapped daily returns",
        json_schema_extra={"items": {"enum": list(METHODS)}})
    simulations: int = Field(default=1000, ge=1, le=MAX_SIMULATIONS)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    ruin_drawdown_pct: float = Field(default=30.0, gt=0, le=100,
                                     description="a path whose max drawdown reaches this is ruined")
    block_days: int = Field(default=1, ge=1, le=250, description="returns: bootstrap block length in trading days")
    percentiles: list[float] = Field(default_factory=lambda: list(DEFAULT_PERCENTILES), min_length=1, max_length=20)
    bins: int = Field(default=20, ge=1, le=200, description="histogram bins per metric")

    @field_validator("methods")
    @classmethod
    def _methods(cls, v: list[str]) -> list[str]:
        # checked here, not by a Literal, so a 422 names the field without showing the value back
        if any(m not in METHODS for m in v):
            raise ValueError(f"methods: each method is one of {', '.join(METHODS)}")
        if len(set(v)) != len(v):
            raise ValueError("methods: name each method once")
        return v

    @model_validator(mode="after")
    def _one_of_each(self) -> MonteCarloRequest:
        if self.run_id is not None:
            if any(getattr(self, n) is not None for n in _BODY_FIELDS):
                raise ValueError("give run_id or a backtest body (strategy, universe or symbols, dates, capital), "
                                 "not both")
            return self
        if self.start_date is None or self.end_date is None or self.starting_capital is None:
            raise ValueError("give run_id, or a backtest body with start_date, end_date and starting_capital")
        self._check_body()
        return self

    @field_validator("percentiles")
    @classmethod
    def _percentiles(cls, v: list[float]) -> list[float]:
        if any(not 0 <= p <= 100 for p in v):
            raise ValueError("percentiles must be numbers from 0 to 100")
        return v

    def settings(self) -> MonteCarloSettings:
        return MonteCarloSettings(simulations=self.simulations, seed=self.seed,
                                  ruin_drawdown_pct=float(self.ruin_drawdown_pct),
                                  percentiles=tuple(float(p) for p in self.percentiles), block_days=self.block_days,
                                  bins=self.bins).validate()


_BODY_FIELDS = ("strategy_id", "strategy", "universe", "symbols", "start_date", "end_date", "starting_capital",
                "max_per_sector", "benchmark")


def _recorded_run(ctx: PlanContext, run_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(what a Monte Carlo resamples, the params to record) of one of the caller's runs; 404 for another's."""
    run = ctx.load_run(run_id) if ctx.load_run is not None else None
    if run is None:
        raise NotFound(f"Backtest run {run_id} not found")
    p = run["params"]
    result = {"summary": run["summary"], "trades": [{"pnl": t["pnl"]} for t in run.get("trades") or []],
              "equity_curve": run.get("equity_curve") or [], "config": {"starting_capital": p["starting_capital"]}}
    params = {"run_id": run_id, **{k: p.get(k) for k in ("strategy_id", "strategy_name", "strategy", "universe",
                                                        "symbols", "benchmark", "start_date", "end_date",
                                                        "starting_capital")}}
    return dict(json_safe(result)), params


def backtest_task(shared: SharedBars, item: tuple[dict[str, Any], dict[str, Any]]) -> dict[str, Any]:
    """A task: one backtest's trades, equity curve and summary (what a Monte Carlo resamples)."""
    strategy, config = item
    out = run_window(shared, strategy, config).to_dict()
    return dict(json_safe({"summary": out["summary"], "trades": [{"pnl": t["pnl"]} for t in out["trades"]],
                           "equity_curve": out["equity_curve"], "config": out["config"]}))


def _mc_summary(result: dict[str, Any]) -> dict[str, Any]:
    return {"original": result["original"], "probability_of_ruin": result["probability_of_ruin"],
            **{k: result[k]["percentiles"] for k in ("final_equity", "cagr", "max_drawdown")}}


class MonteCarlo(ResultsTable):
    name = "monte_carlo"
    route = "monte-carlo"
    request_model = MonteCarloRequest

    def plan(self, ctx: PlanContext, req: MonteCarloRequest) -> JobPlan:
        settings = req.settings()
        chosen = {"methods": req.methods, "simulations": settings.simulations, "seed": settings.seed,
                  "ruin_drawdown_pct": settings.ruin_drawdown_pct, "block_days": settings.block_days,
                  "percentiles": list(settings.percentiles), "bins": settings.bins}
        if req.run_id is not None:  # a recorded run: read now, resampled as it is
            result, params = _recorded_run(ctx, req.run_id)
            return JobPlan({**params, **chosen}, 1 + len(req.methods), (result, list(req.methods), settings))
        base = resolve_base(ctx, req)
        return JobPlan({**base.params, **chosen}, 1 + len(req.methods), (base, list(req.methods), settings), base.data)

    def run(self, ctx: RunContext, plan: JobPlan) -> JobOutcome:
        source, methods, settings = plan.payload
        if isinstance(source, BasePlan):  # run the backtest once (recorded after as an ordinary run)
            [run] = ctx.map(backtest_task, ctx.data(source.data), [(source.strategy, source.config)])
            record, runs = [(source.strategy, source.config)], []
        else:
            run, record, runs = source, [], [int(plan.params["run_id"])]
            ctx.advance(1)
        rows = []
        for method in methods:
            ctx.check()
            out = monte_carlo(run, method, settings)
            rows.append({**out, "block_days": out.get("block_days")})
            ctx.advance(1)
        summary = {"total_trades": len(run["trades"]), "final_equity": run["summary"].get("final_equity"),
                   "max_drawdown": run["summary"].get("max_drawdown"),
                   "methods": {r["method"]: _mc_summary(r) for r in rows}}
        return JobOutcome(summary, {"results": rows}, record, runs)

    def ran(self, params: dict[str, Any]) -> str:
        """The CLI's line of what ran: its backtest (none for a recorded run), then its methods' paths."""
        run = "the recorded run" if params.get("run_id") is not None else "1 backtest"
        methods = len(params.get("methods") or [])
        return f"{run}, then {methods} x {int(params.get('simulations') or 0):,} simulated paths"

    def render(self, summary: dict[str, Any], tables: dict[str, list[dict[str, Any]]]) -> list[str | TextTable]:
        """The outcome as the CLI prints it: the run, then per method a table of percentiles (rows: final equity
        in whole rupees, CAGR, max drawdown), its own figures and the chance of ruin under it."""
        out: list[str | TextTable] = [
            f"Backtest: {summary['total_trades']} closed trades, final equity "
            f"{format_inr(summary['final_equity'] or 0)}, max drawdown {format_number(summary['max_drawdown'], 2)} %"]
        for row in tables.get("results", []):
            keys = list(row["final_equity"]["percentiles"])
            cells = [[label, *[text(row[metric]["percentiles"][k]) for k in keys]] for label, metric, text in _MC_ROWS]
            orig = row.get("original") or {}
            seen = (f"final equity {format_inr(orig.get('final_equity'), 0)}, CAGR {_pct(orig.get('cagr'))} %, "
                    f"max drawdown {_pct(orig.get('max_drawdown'))} %")
            if row["method"] == "trades":
                title = f"Closed trades in {row['simulations']:,} random orders (seed {row['seed']})"
                note = ("; realised P&L only, so the final equity is the same in every order, the drawdowns are "
                        "not")
            else:
                title = (f"Daily returns redrawn in blocks of {row.get('block_days')} days: {row['simulations']:,} "
                         f"paths (seed {row['seed']})")
                note = ""
            caption = (f"In the run's own order: {seen}{note}. Chance of a {row['ruin_drawdown_pct']:g} % drawdown: "
                       f"{row['probability_of_ruin'] * 100:.1f} %")
            out.append(TextTable(title, ["percentile", *[f"{k} %" for k in keys]], cells, caption))
        return out


def _pct(value: Any) -> str:
    return format_number(value, 2)


# Monte Carlo's printed rows: (label, metric, how its values are written)
_MC_ROWS: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("final equity", "final_equity", lambda v: format_inr(v, 0)), ("CAGR %", "cagr", _pct),
    ("max DD %", "max_drawdown", _pct))


MONTE_CARLO = register_kind(MonteCarlo())


# ---------------------------------------------------------------- look-ahead


class LookaheadRequest(BacktestRequest):
    """A backtest body plus where to cut and which warm-ups to try."""

    cuts: int = Field(default=5, ge=1, le=MAX_CUTS, description="cut days sampled inside the window")
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    warmup_days: list[int] = Field(default_factory=lambda: [30, 100], max_length=5,
                                   description="recursion: trading days of history before start_date to try")
    max_findings: int = Field(default=100, ge=1, le=10_000)

    @field_validator("warmup_days")
    @classmethod
    def _warmups(cls, v: list[int]) -> list[int]:
        if any(not 0 <= w <= 2000 for w in v):
            raise ValueError("warmup_days must be whole numbers of trading days from 0 to 2000")
        return v

    def settings(self) -> LookaheadSettings:
        return LookaheadSettings(cuts=self.cuts, seed=self.seed, warmup_days=tuple(self.warmup_days),
                                 max_findings=self.max_findings).validate()


_REFERENCES: dict[str, Reference] = {}  # per worker process: the full-window run of the jobs it serves


def lookahead_task(shared: SharedBars, item: tuple[dict[str, Any], dict[str, Any], str, int]) -> dict[str, Any]:
    """A task: the reference's header ("reference"), one cut ("cut", column) or one warm-up ("recursion", days)."""
    strategy, config, what, value = item
    cfg = BacktestConfig(**config)
    _, bars, bench = _view(shared, cfg.start_date, cfg.end_date)
    key = json.dumps([shared.key, strategy, config], sort_keys=True, default=str)
    ref = _REFERENCES.get(key)
    if ref is None:
        if len(_REFERENCES) >= 4:
            _REFERENCES.clear()
        ref = _REFERENCES[key] = reference(bars, strategy, cfg, bench)
    if what == "reference":
        return dict(json_safe(describe(ref)))
    if what == "cut":
        return dict(json_safe(check_cut(bars, strategy, ref, value, bench)))
    return dict(json_safe(check_recursion(bars, ref, value)))


class Lookahead:
    name = "lookahead"
    route = "lookahead"
    request_model = LookaheadRequest

    def plan(self, ctx: PlanContext, req: LookaheadRequest) -> JobPlan:
        base = resolve_base(ctx, req)
        days = nse_calendar().trading_days(date.fromisoformat(str(base.config["start_date"])),
                                           date.fromisoformat(str(base.config["end_date"])))
        if len(days) < MIN_WINDOW_DAYS:  # refused now, not after the job was queued
            raise DomainError(f"the window holds {len(days)} trading day(s); a look-ahead check needs at least "
                              f"{MIN_WINDOW_DAYS} to cut it inside: widen start_date..end_date")
        settings = req.settings()
        params = {**base.params, "cuts": settings.cuts, "seed": settings.seed,
                  "warmup_days": list(settings.warmup_days), "max_findings": settings.max_findings}
        total = 1 + settings.cuts + len(settings.warmup_days)
        return JobPlan(params, total, (base, settings), base.data)

    def run(self, ctx: RunContext, plan: JobPlan) -> JobOutcome:
        base, settings = plan.payload
        assert isinstance(base, BasePlan) and isinstance(settings, LookaheadSettings)
        shared = ctx.data(base.data)
        cfg = BacktestConfig(**base.config)
        _, bars, _ = _view(shared, cfg.start_date, cfg.end_date)
        s, e = window_columns(bars, cfg)
        cuts = cut_days(s, e, settings.cuts, settings.seed)
        items: list[tuple[dict[str, Any], dict[str, Any], str, int]] = [
            (base.strategy, base.config, "reference", 0),
            *[(base.strategy, base.config, "cut", c) for c in cuts],
            *[(base.strategy, base.config, "recursion", w) for w in settings.warmup_days],
        ]
        ctx.total = len(items)  # fewer cuts than asked when the window is short
        out = ctx.map(lookahead_task, shared, items)
        report = summarize(out[0], out[1:1 + len(cuts)], out[1 + len(cuts):], settings.max_findings)
        summary = {k: report[k] for k in ("clean", "window", "cuts", "indicators", "differences", "findings_total")}
        recursion = [{"warmup_days": r["warmup_days"], "entry_signals_changed": r["entry_signals_changed"],
                      **ind} for r in report["recursion"] for ind in r["indicators"]]
        # a finding's values are a number, a yes/no or a trade's fields: kept as JSON text in the table
        findings = [{**f, "full": json.dumps(f["full"]), "cut_value": json.dumps(f["cut_value"])}
                    for f in report["findings"]]
        return JobOutcome(summary, {"findings": findings, "recursion": recursion})

    def present(self, tables: ResultTables, ref: str, query: ResultQuery) -> dict[str, Any]:
        total = tables.count(ref, "findings")  # an empty table has no columns to select
        rows = tables.rows(ref, "findings", query.limit, query.offset) if total else []
        return {"results": [{**f, "full": json.loads(f["full"]), "cut_value": json.loads(f["cut_value"])}
                            for f in rows],
                "results_total": total,
                "recursion": tables.rows(ref, "recursion") if tables.count(ref, "recursion") else []}


    def render(self, summary: dict[str, Any], tables: dict[str, list[dict[str, Any]]]) -> list[str | TextTable]:
        """The outcome as the CLI prints it: clean or what changed, then how far each indicator moves with a
        short history (recursion)."""
        d = summary["differences"]
        out: list[str | TextTable] = [
            f"Look-ahead: {'clean' if summary['clean'] else 'FOUND DIFFERENCES'} over {len(summary['cuts'])} cuts "
            f"({', '.join(summary['cuts'])}): "
            f"{', '.join(f'{k} {v}' for k, v in d.items() if v) or 'nothing known before a cut changed'}"]
        for f in tables.get("findings", [])[:20]:
            out.append(f"  cut {f['cut']}: {f['what']} {f['name'] or ''} {f['symbol'] or ''} on {f['date']}: "
                       f"{f['full']} with all the data, {f['cut_value']} without the days after the cut")
        recursion = tables.get("recursion", [])
        if recursion:
            out.append(TextTable(
                "Recursion: the indicators with only a few days of history",
                ["warm-up days", "indicator", "largest change %", "entry signals changed"],
                [[str(r["warmup_days"]), r["name"], "no value" if r["max_diff_pct"] is None
                  else format_number(r["max_diff_pct"], 2), f"{r['entry_signals_changed']:,}"] for r in recursion],
                "no value: the history is shorter than the indicator's period (no value in that run)"
                if any(r["max_diff_pct"] is None for r in recursion) else None))
        return out


LOOKAHEAD = register_kind(Lookahead())
