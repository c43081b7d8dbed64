"""``tradertape research ...``: run a sweep, a walk-forward, a Monte Carlo or a look-ahead check from the command
line, with a progress bar.

The body is the API's (a JSON file, `-` for standard input). The strategy is the body's (`strategy` inline,
or `strategy_id`), or `--strategy FILE` (a JSON strategy body) or `--strategy-id N` (a saved template or
public strategy, read from the database of `TRADERTAPE_DATABASE_URL`), which replace the body's. The job
runs in this process's pool (`--workers`, default one per CPU) or on a Dask cluster (`--dask
tcp://host:8786`, default `TRADERTAPE_DASK_SCHEDULER`); nothing is recorded. The best rows (a sweep) or the
windows (a walk-forward) are printed as a compact table, parameters under their labels; Monte Carlo and
look-ahead word their own lines and tables (`render`). `--out FILE.json` saves the whole outcome (summary and
tables).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from backtest.report import fmt
from backtest.requests import StrategyLookup
from backtest.research.executors import make_executor
from backtest.research.jobs import JobKind, PlanContext, RunContext, TextTable
from backtest.research.kinds import KINDS
from domain.errors import DomainError
from infra.config.settings import Settings

__all__ = ["register"]

console = Console()
# the metrics a sweep's table shows, with their headers (every metric is in `--out`'s file)
_SHOWN = {"cagr": "CAGR %", "sharpe": "Sharpe", "max_drawdown": "max DD %", "total_trades": "trades"}


_WHAT = {
    "sweep": "rank every combination of a grid or a seeded random sample of parameters",
    "walk_forward": "re-fit the parameters window by window and test each choice on the next, unseen window",
    "monte_carlo": "reshuffle a backtest's trades and redraw its daily returns: how bad could it have gone",
    "lookahead": "re-run with the data cut at sampled days: does the strategy peek at the future",
}
_EXAMPLES = {
    "sweep": """example body (sweep.json):
  {"strategy": {"base_model": "v3_dip_buyer"}, "universe": "nifty_100",
   "start_date": "2020-01-01", "end_date": "2026-01-01", "starting_capital": 10000000,
   "grid": {"stop_loss_pct": [5, 7, 10], "entry_rules.all.1.right": [30, 35, 40]},
   "constraints": ["stop_loss_pct < 12"], "objective": "sharpe", "min_trades": 30}
then: tradertape research sweeps sweep.json --top 10 --out result.json""",
    "walk_forward": """example body: a sweep's, plus "windows": 5, "mode": "rolling" (or "anchored")
then: tradertape research walk-forward wf.json""",
    "monte_carlo": """example body (mc.json):
  {"strategy": {"base_model": "v3_dip_buyer"}, "universe": "nifty_100",
   "start_date": "2020-01-01", "end_date": "2026-01-01", "starting_capital": 10000000,
   "simulations": 5000, "seed": 7, "ruin_drawdown_pct": 25, "block_days": 5}""",
    "lookahead": """example body (la.json):
  {"strategy": {"base_model": "v3_dip_buyer"}, "universe": "nifty_100",
   "start_date": "2020-01-01", "end_date": "2026-01-01", "starting_capital": 10000000,
   "cuts": 10, "warmup_days": [30, 100]}""",
}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``research`` command group to the main CLI's subparsers."""
    research = subparsers.add_parser(
        "research", help="parameter sweeps, walk-forward, Monte Carlo and look-ahead checks",
        description="Run a research job here (a process pool, or a Dask cluster) from the JSON body the API takes; "
                    "nothing is recorded. The README's 'Research' section has a worked example of each.")
    commands = research.add_subparsers(dest="research_command", metavar="COMMAND", required=True)
    for kind in KINDS.values():
        what = _WHAT.get(kind.name, f"run a {kind.route} job")
        about = textwrap.fill(f"{what[0].upper()}{what[1:]}, from the JSON body POST /api/research/{kind.route} "
                              "takes.", 79)
        p = commands.add_parser(kind.route, help=what, description=about, epilog=_EXAMPLES.get(kind.name),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("body", help="the request body: a JSON file, or - for standard input")
        p.add_argument("--workers", type=int, default=None, help="local pool processes (default: one per CPU)")
        p.add_argument("--dask", default=None, metavar="ADDRESS",
                       help="a Dask scheduler, tcp://host:8786 (default: TRADERTAPE_DASK_SCHEDULER, else local)")
        which = p.add_mutually_exclusive_group()
        which.add_argument("--strategy", type=Path, default=None, metavar="FILE",
                           help="a JSON strategy body (base_model, entry_rules, exit_rules, params): "
                                "replaces the body's")
        which.add_argument("--strategy-id", type=int, default=None, metavar="N",
                           help="a saved template or public strategy, replacing the body's")
        p.add_argument("--top", type=int, default=10, help="rows to print (default 10)")
        p.add_argument("--out", type=Path, default=None, metavar="FILE.json", help="save the whole outcome")
        p.add_argument("--data-dir", type=Path, default=None, help="default: TRADERTAPE_DATA_DIR or ./var/data")
        p.set_defaults(func=_command(kind))


def _command(kind: JobKind) -> Any:
    def run(args: argparse.Namespace) -> int:
        return cmd_run(kind, args)

    return run


def _read_body(source: str) -> Any:
    text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    return json.loads(text)


def _with_strategy(raw: Any, args: argparse.Namespace) -> Any:
    """The body with the strategy the options name, if any."""
    if not isinstance(raw, dict) or (args.strategy is None and args.strategy_id is None):
        return raw
    out = {k: v for k, v in raw.items() if k not in ("strategy", "strategy_id")}
    if args.strategy is not None:
        out["strategy"] = json.loads(args.strategy.read_text(encoding="utf-8"))
    else:
        out["strategy_id"] = args.strategy_id
    return out


def _saved_strategies(settings: Settings) -> StrategyLookup:
    """Saved strategies from the database; the CLI acts for nobody in particular, so templates and public
    strategies only (another is "not found", as to any other user)."""

    def lookup(strategy_id: int) -> dict[str, Any] | None:
        from infra.store.db import Database
        from projections.strategies import get_strategy

        db = Database.from_settings(settings)
        try:
            with db.read() as conn:
                return get_strategy(conn, strategy_id)
        except SQLAlchemyError:
            return None  # no database here (yet): no saved strategy either
        finally:
            db.dispose()

    return lookup


def _done_line(kind: JobKind, params: dict[str, Any], total: int, elapsed: float) -> str:
    """What ran, in words: a kind whose steps are not all backtests words them itself (`ran`)."""
    ran = getattr(kind, "ran", None)
    if ran is not None:
        return f"{ran(params)} in {elapsed:.1f} s"
    return f"{total:,} backtests in {elapsed:.1f} s ({total / elapsed:.1f} a second)"


def cmd_run(kind: JobKind, args: argparse.Namespace) -> int:
    settings = Settings()
    try:
        raw = _with_strategy(_read_body(args.body), args)
        req = kind.request_model.model_validate(raw)
        data_dir = args.data_dir or settings.data_dir
        ctx = PlanContext(data_dir, 0, _saved_strategies(settings), settings.research_max_combinations)
        plan = kind.plan(ctx, req)
    except (OSError, json.JSONDecodeError) as exc:
        console.print(f"[red]Cannot read the body:[/red] {exc}")
        return 2
    except ValidationError as exc:
        for err in exc.errors():
            console.print(f"[red]{'.'.join(str(p) for p in err['loc']) or 'body'}:[/red] {err['msg']}")
        return 2
    except DomainError as exc:
        console.print(f"[red]{exc.detail}[/red]")
        return 2
    executor = make_executor(args.dask or settings.dask_scheduler, args.workers)
    started = time.perf_counter()
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=console, transient=False) as bar:
        task = bar.add_task(f"{kind.route} on {executor.name}", total=plan.total)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        ctx_run = RunContext(executor, progress)
        ctx_run.total = plan.total
        try:
            outcome = kind.run(ctx_run, plan)
        except DomainError as exc:
            console.print(f"[red]{exc.detail}[/red]")
            return 1
        finally:
            executor.close()
        bar.update(task, completed=plan.total)
    elapsed = time.perf_counter() - started
    console.print(_done_line(kind, plan.params, plan.total, elapsed))
    render = getattr(kind, "render", None)  # a kind that words its own outcome (Monte Carlo, look-ahead)
    if render is not None:
        for item in render(outcome.summary, outcome.tables):
            if isinstance(item, TextTable):
                _table(item.title, item.headers, item.rows, item.caption)
            else:
                console.print(item, markup=False, highlight=False)
    else:
        _print(kind, outcome.summary, outcome.tables.get("results", []), args.top, plan.params.get("labels") or {})
    if args.out is not None:
        args.out.write_text(json.dumps({"kind": kind.name, "params": plan.params, "summary": outcome.summary,
                                        "tables": outcome.tables}, indent=1, default=str), encoding="utf-8")
        console.print(f"saved {args.out}")
    return 0


def _print(kind: JobKind, summary: dict[str, Any], rows: list[dict[str, Any]], top: int,
           labels: dict[str, str]) -> None:
    """The outcome as tables; parameters under their labels (`stop loss %`, `entry: rsi(14) < x`)."""
    if kind.name == "walk_forward":
        names = list(next((r["params"] for r in rows if r["params"]), {}))
        cells = [[str(r["window"] + 1), f"{r['in_sample']['start']}\n{r['in_sample']['end']}",
                  f"{r['out_of_sample']['start']}\n{r['out_of_sample']['end']}",
                  *[str(r["params"][n]) if r["params"] else "—" for n in names],
                  fmt((r["in_sample_metrics"] or {}).get("cagr")), fmt((r["out_of_sample_metrics"] or {}).get("cagr")),
                  fmt(r["efficiency"])] for r in rows]
        _table("Walk-forward windows: chosen in sample, tested out of sample",
               ["window", "in sample", "out of sample", *[labels.get(n, n) for n in names], "IS CAGR %", "OOS CAGR %",
                "OOS / IS"], cells,
               ("OOS / IS: the window's walk-forward efficiency (out-of-sample CAGR over in-sample CAGR)"
                + ("; —: no combination eligible in sample (the window stays in cash)"
                   if any(not r["params"] for r in rows) else "")), params=(3, 3 + len(names)))
        oos = summary["out_of_sample"]
        console.print(f"Out of sample (stitched): CAGR {fmt(oos.get('cagr'), '%')}, Sharpe {fmt(oos.get('sharpe'))}, "
                      f"max drawdown {fmt(oos.get('max_drawdown'), '%')}, final equity "
                      f"{fmt(oos.get('final_equity'), 'INR')}; walk-forward efficiency "
                      f"{fmt(summary.get('walk_forward_efficiency'))}")
        return
    if kind.name != "sweep":
        console.print_json(json.dumps(summary, default=str))
        return
    names = list(rows[0]["params"]) if rows else []
    cells = [[str(r["rank"]), *[str(r["params"][n]) for n in names],
              fmt(r["objective"]) if r["eligible"] else "—", *[fmt(r["metrics"].get(name)) for name in _SHOWN]]
             for r in rows[:top]]
    _table(f"Best {min(top, len(rows))} of {len(rows)} combinations ({summary.get('eligible', 0)} eligible)",
           ["rank", *[labels.get(name, name) for name in names], "objective", *_SHOWN.values()], cells,
           "objective —: not eligible (too few trades, or the objective is undefined)"
           if any(not r["eligible"] for r in rows[:top]) else None, params=(1, 1 + len(names)))


_X = re.compile(r"(^|[\s(-])x([\s)\]]|$)")  # the swept value's place in a rule's label


def with_value(label: str, value: str) -> str:
    """A parameter with its value: a rule's label with x replaced (`entry: rsi(14) < 40`), else `stop loss % = 5`."""
    return _X.sub(lambda m: f"{m.group(1)}{value}{m.group(2)}", label, count=1) if _X.search(label) \
        else f"{label} = {value}"


def _table(title: str, headers: list[str], cells: list[list[str]], caption: str | None,
           params: tuple[int, int] | None = None) -> None:
    """Print a compact table under its title, its caption after it: each column as wide as its longest value
    line or header word (headers wrap between words, never inside one), so four swept parameters fit an
    80-column terminal. `params`: the columns [a, b) of swept parameters; when the table would be wider than the
    terminal they become one column of `label = value` lines, so no figure is cut off."""
    def widths(hs: list[str], rows: list[list[str]]) -> list[int]:
        return [max([*map(len, h.split()), *(len(line) for row in rows for line in row[j].splitlines())])
                for j, h in enumerate(hs)]

    folded = -1  # the column of `label = value` lines (left-aligned), if any
    if params is not None and sum(widths(headers, cells)) + len(headers) - 1 > console.width:
        a, b = params
        folded = a
        names = headers[a:b]
        headers = [*headers[:a], "parameters", *headers[b:]]
        cells = [[*row[:a], "\n".join(with_value(name, value) for name, value in zip(names, row[a:b], strict=True)),
                  *row[b:]] for row in cells]
    table = Table(box=box.SIMPLE_HEAD, padding=0, show_edge=False)
    for j, (header, width) in enumerate(zip(headers, widths(headers, cells), strict=True)):
        table.add_column(header, justify="left" if j == folded else "right", min_width=width, max_width=width)
    for row in cells:
        table.add_row(*row)
    console.print(title, markup=False, highlight=False)
    console.print(table)
    if caption:
        console.print(caption, markup=False, highlight=False)
