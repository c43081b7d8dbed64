"""``tradertape data ...``: generate, import and inspect the bar history.

The main CLI calls `register(subparsers)`; each subcommand stores its handler in ``args.func``
(``handler(args) -> exit code``). The data directory is ``args.data_dir``: the main CLI may set it
from settings; ``--data-dir`` overrides it; ``./var/data`` is the fallback.

Just over 500 lines: one subcommand group's argument definitions and their printing, each short; the
work is done in infra/bars/ and backtest/engine.py.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from backtest.report import SUMMARY_ROWS, fmt, render_html
from backtest.runner import execute_run, plan_run
from domain.calendar import NSE_TABLE_LAST_YEAR, TradingCalendar, nse_calendar
from domain.errors import DomainError
from domain.market_hours import IST, SESSION_CLOSE
from domain.strategies import SpecError, normalize_spec
from infra.bars.importers import ImportFormatError, ImportReport, import_csv
from infra.bars.store import BarStore, MissingSymbolsError
from infra.bars.synthetic import DEFAULT_SEED, extend, generate
from infra.bars.universes import custom_universe, list_universes, load_universe, normalize_symbol
from infra.config.settings import Settings
from infra.kite.historical import KiteImportError, import_kite

__all__ = ["last_completed_session", "register"]

DEFAULT_START = date(2015, 1, 1)
_SHOWN_REJECTIONS = 20

console = Console()
Handler = Callable[[argparse.Namespace], int]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``data`` command group to the main CLI's subparsers."""
    data = subparsers.add_parser("data", help="market data: generate, import, inspect the bar history")
    commands = data.add_subparsers(dest="data_command", metavar="COMMAND", required=True)
    universes = [u.name for u in list_universes()]

    gen = commands.add_parser("generate", help="write deterministic synthetic daily bars for a universe")
    gen.add_argument("--universe", default="nifty_100", choices=universes)
    gen.add_argument("--from", dest="start", type=_date_arg, default=DEFAULT_START, help="first day (YYYY-MM-DD)")
    gen.add_argument("--to", dest="end", type=_date_arg, default=None, help="last day; default: last trading day")
    gen.add_argument("--seed", type=int, default=DEFAULT_SEED)
    _data_dir_arg(gen)
    gen.set_defaults(func=cmd_generate)

    csv_cmd = commands.add_parser(
        "import-csv", help="import bars from CSV/Parquet files or NSE bhavcopies (files or folders)"
    )
    csv_cmd.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    _data_dir_arg(csv_cmd)
    csv_cmd.set_defaults(func=cmd_import_csv)

    kite = commands.add_parser("import-kite", help="download daily candles from Kite Connect")
    kite.add_argument(
        "--api-key", default=os.environ.get("TRADERTAPE_KITE_API_KEY"), help="or env TRADERTAPE_KITE_API_KEY"
    )
    kite.add_argument(
        "--access-token",
        default=os.environ.get("TRADERTAPE_KITE_ACCESS_TOKEN"),
        help="or env TRADERTAPE_KITE_ACCESS_TOKEN (keeps it out of the shell history)",
    )
    kite.add_argument("--root", default=None, help="Kite API root URL (default https://api.kite.trade)")
    which = kite.add_mutually_exclusive_group()
    which.add_argument("--symbols", default=None, help="comma-separated NSE symbols, e.g. INFY,TCS,NIFTY50")
    which.add_argument("--universe", default=None, choices=universes, help="a universe's members and its index")
    kite.add_argument("--from", dest="start", type=_date_arg, default=DEFAULT_START)
    kite.add_argument("--to", dest="end", type=_date_arg, default=None, help="default: last trading day")
    _data_dir_arg(kite)
    kite.set_defaults(func=cmd_import_kite)

    ensure = commands.add_parser(
        "ensure", help="first run: generate synthetic nifty_100 history if the bar store is empty"
    )
    _data_dir_arg(ensure)
    ensure.set_defaults(func=cmd_ensure, universe="nifty_100", start=DEFAULT_START, end=None, seed=DEFAULT_SEED)

    info = commands.add_parser("info", help="summarise the stored bar history")
    info.add_argument("--symbols", action="store_true", help="list every symbol's coverage")
    _data_dir_arg(info)
    info.set_defaults(func=cmd_info)

    backtest = subparsers.add_parser("backtest", help="run a backtest from the command line")
    bsub = backtest.add_subparsers(dest="backtest_command", metavar="COMMAND", required=True)
    run = bsub.add_parser("run", help="run a backtest, print the summary, optionally save an HTML report")
    which = run.add_mutually_exclusive_group()
    which.add_argument("--base-model", default=None, help="a base model with its default rules (default v3_dip_buyer)")
    which.add_argument("--strategy", type=Path, default=None, metavar="FILE",
                       help="a JSON strategy body: base_model, entry_rules, exit_rules, params")
    which.add_argument("--strategy-id", type=int, default=None,
                       help="a saved template or public strategy (a private one of yours: save its body and use "
                       "--strategy FILE)")
    run.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                     help="override one strategy parameter (repeatable), e.g. --param rsi_period=10")
    pick = run.add_mutually_exclusive_group()
    pick.add_argument("--universe", default=None, choices=universes, help="default nifty_100")
    pick.add_argument("--symbols", default=None, help="comma-separated NSE symbols (a custom universe)")
    run.add_argument("--from", dest="start", type=_date_arg, required=True, help="first day (YYYY-MM-DD)")
    run.add_argument("--to", dest="end", type=_date_arg, default=None, help="last day; default: last stored day")
    run.add_argument("--capital", type=float, default=1_000_000.0, help="starting capital in INR")
    run.add_argument("--position-size-pct", type=float, default=10.0)
    run.add_argument("--max-positions", type=int, default=20)
    run.add_argument("--max-per-sector", type=int, default=None)
    run.add_argument("--slippage-bps", type=float, default=0.0)
    run.add_argument("--charges", choices=("zerodha_delivery", "none"), default="zerodha_delivery")
    run.add_argument("--benchmark", default=None, help="default: the universe's index")
    run.add_argument("--report", type=Path, default=None, metavar="FILE.html", help="save an HTML report here")
    run.add_argument("--json", dest="json_out", type=Path, default=None, metavar="FILE.json",
                     help="save the full result (summary, trades, equity curve) as JSON")
    run.add_argument("--trades", action="store_true", help="also print every closed trade")
    _data_dir_arg(run)
    run.set_defaults(func=cmd_backtest_run)

    sim = subparsers.add_parser("sim", help="the simulated market (embedded/demo): advance synthetic days")
    ssub = sim.add_subparsers(dest="sim_command", metavar="COMMAND", required=True)
    adv = ssub.add_parser("advance", help="append N synthetic trading days and run the market clock for each "
                                          "(fills, exits, expiries, the after-close scan)")
    adv.add_argument("--days", type=int, default=1, help="trading days to add (1..2500)")
    _data_dir_arg(adv)
    adv.set_defaults(func=cmd_sim_advance)

    sched = subparsers.add_parser("scheduler", help="run the market clock alone (production: beside relay and "
                                                    "projector): the after-close run and the expiry sweep")
    _data_dir_arg(sched)
    sched.set_defaults(func=cmd_scheduler)


# -------------------------------------------------------------------- handlers


def cmd_generate(args: argparse.Namespace) -> int:
    store = BarStore(_data_dir(args))
    calendar = nse_calendar()
    universe = load_universe(args.universe)
    end = args.end or last_completed_session(datetime.now(IST), calendar)
    if end < args.start:
        return _fail(f"--to {end} is before --from {args.start}")
    started = time.perf_counter()
    with _progress(f"Generating {universe.name}") as update:
        result = generate(store, universe, args.start, end, seed=args.seed, calendar=calendar, progress=update)
    elapsed = time.perf_counter() - started
    w = result.write
    console.print(
        f"[green]Generated[/] {len(result.symbols)} symbols x {result.days} trading days "
        f"({result.first} .. {result.last}) in {elapsed:.1f} s: {w.inserted} new, {w.updated} changed, "
        f"{w.unchanged} unchanged bars -> {store.dataset_dir}"
    )
    return 0


def cmd_ensure(args: argparse.Namespace) -> int:
    """Generate the default synthetic history once, so a new user can backtest at once."""
    store = BarStore(_data_dir(args))
    if store.is_empty():
        code = cmd_generate(args)
        if code:
            return code
    else:
        console.print(f"bar store ready: {len(store.symbols())} symbols up to {store.last_date()}")
    if store.meta("synthetic"):
        console.print(SYNTHETIC_NOTE)
    return 0


SYNTHETIC_NOTE = (
    "[yellow]Note:[/] the demo price history is SYNTHETIC (generated, not NSE's prices): fine for trying "
    "backtests and paper trading, never used to value your real holdings. Load real history with "
    "`tradertape data import-csv FILES` or `tradertape data import-kite --symbols INFY,TCS`.")


def cmd_import_csv(args: argparse.Namespace) -> int:
    store = BarStore(_data_dir(args))
    try:
        with _progress("Importing files") as update:
            report = import_csv(store, args.paths, progress=update)
    except ImportFormatError as exc:
        return _fail(f"{exc}. Nothing was imported.")
    _print_report(report)
    return 0


def cmd_import_kite(args: argparse.Namespace) -> int:
    if not args.api_key or not args.access_token:
        return _fail("Kite needs --api-key and --access-token (or TRADERTAPE_KITE_API_KEY / _ACCESS_TOKEN)")
    calendar = nse_calendar()
    end = args.end or last_completed_session(datetime.now(IST), calendar)
    try:
        symbols = _kite_symbols(args)
    except ValueError as exc:
        return _fail(str(exc))
    from kiteconnect import KiteConnect  # imported here: it pulls in Twisted, slow for other commands

    kite = KiteConnect(api_key=args.api_key, access_token=args.access_token, root=args.root)
    store = BarStore(_data_dir(args))
    try:
        with _progress("Downloading from Kite") as update:
            report = import_kite(store, kite, symbols, args.start, end, calendar=calendar, progress=update)
    except KiteImportError as exc:
        return _fail(str(exc))
    _print_report(report)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    store = BarStore(_data_dir(args))
    manifest = store.manifest()
    if store.is_empty():
        console.print(f"No bars under {store.dataset_dir}. Run [bold]tradertape data generate[/] or an import.")
        return 0
    files = manifest["files"]
    size = sum((store.manifest_path.parent / f["path"]).stat().st_size for f in files.values())
    summary = Table(show_header=False, box=None)
    summary.add_row("data dir", str(store.data_dir))
    summary.add_row("bars", fmt(manifest["rows"]))
    summary.add_row("symbols", str(len(manifest["symbols"])))
    summary.add_row("dates", f"{manifest['first_date']} .. {manifest['last_date']}")
    summary.add_row("files", f"{len(files)} Parquet files, {size / 1e6:.1f} MB")
    summary.add_row("fingerprint", manifest["fingerprint"][:16])
    summary.add_row("updated", str(manifest.get("updated_at", "")))
    synthetic = manifest.get("meta", {}).get("synthetic")
    if synthetic:
        summary.add_row("synthetic", f"universe {synthetic.get('universe')}, seed {synthetic.get('seed')}")
    console.print(summary)
    if args.symbols:
        table = Table("symbol", "first", "last", "bars")
        for symbol, entry in sorted(manifest["symbols"].items()):
            table.add_row(symbol, entry["first"], entry["last"], fmt(entry["rows"]))
        console.print(table)
    return 0


def cmd_backtest_run(args: argparse.Namespace) -> int:
    try:
        strategy, name = _cli_strategy(args)
        universe = (custom_universe(s for s in args.symbols.split(",") if s.strip())
                    if args.symbols else load_universe(args.universe or "nifty_100"))
        config = _cli_config(args)
    except (ValueError, DomainError) as exc:
        return _fail(str(exc))
    store = BarStore(_data_dir(args))
    end = args.end or store.last_date()
    if end is None:
        return _fail("No bar history is stored yet; run tradertape data generate or an import first")
    config["end_date"] = end.isoformat()
    try:
        plan = plan_run(store.data_dir, universe, args.start, end, strategy, config, args.benchmark)
        with console.status(f"Backtesting {name} on {universe.name} {args.start}..{end}"):
            result = execute_run(**plan.kwargs)
    except (DomainError, MissingSymbolsError) as exc:
        return _fail(str(exc))
    params = {"strategy": name, "universe": universe.name, "from": args.start.isoformat(),
              "to": end.isoformat(), "benchmark": plan.benchmark, **{k: v for k, v in config.items()
                                                                    if k not in ("start_date", "end_date")}}
    _print_backtest(result, name, params, show_trades=args.trades)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        closes = None
        if plan.benchmark:
            closes = {b["date"].isoformat(): float(b["close"])
                      for b in store.read_symbol(plan.benchmark, args.start, end)}
        args.report.write_text(render_html(result, f"Backtest: {name}", params, closes), encoding="utf-8")
        console.print(f"HTML report saved to {args.report}")
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps({"params": params, **result}, indent=1), encoding="utf-8")
        console.print(f"JSON result saved to {args.json_out}")
    return 0


def _cli_strategy(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    if args.strategy is not None:
        try:
            body = json.loads(args.strategy.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read strategy file {args.strategy}: {exc}") from None
        if not isinstance(body, dict):
            raise ValueError(f"{args.strategy} must hold a JSON object: base_model, entry_rules, exit_rules, params")
        name = str(body.get("name") or args.strategy.stem)
    elif args.strategy_id is not None:
        body, name = _saved_strategy(args.strategy_id)
    else:
        body, name = {"base_model": args.base_model or "v3_dip_buyer"}, args.base_model or "v3_dip_buyer"
    params = dict(body.get("params") or {})
    for item in args.param:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--param {item!r}: write NAME=VALUE, e.g. --param rsi_period=10")
        try:
            params[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            params[key.strip()] = raw
    try:
        spec = normalize_spec(str(body.get("base_model", "")), body.get("entry_rules"), body.get("exit_rules"), params)
    except SpecError as exc:
        raise ValueError(f"strategy.{exc}") from None
    return spec.to_json(), name


def _saved_strategy(strategy_id: int) -> tuple[dict[str, Any], str]:
    """A template or public strategy from the read model (the CLI acts for nobody in particular)."""
    from infra.store.db import Database
    from projections.strategies import get_strategy

    db = Database.from_settings(Settings())
    try:
        with db.read() as conn:
            row = get_strategy(conn, strategy_id)
    finally:
        db.dispose()
    if row is None or not (row["is_template"] or row["is_public"]):
        raise ValueError(f"Strategy {strategy_id} not found among templates and public strategies; "
                         "use --strategy FILE for a private one")
    body = {k: row[k] for k in ("base_model", "entry_rules", "exit_rules", "params")}
    return body, str(row["name"])


def _cli_config(args: argparse.Namespace) -> dict[str, Any]:
    if not args.capital > 0:
        raise ValueError("--capital must be more than 0")
    if not 0 < args.position_size_pct <= 100:
        raise ValueError("--position-size-pct must be more than 0 and at most 100")
    if args.max_positions < 1:
        raise ValueError("--max-positions must be at least 1")
    if args.max_per_sector is not None and args.max_per_sector < 1:
        raise ValueError("--max-per-sector must be at least 1")
    if args.slippage_bps < 0:
        raise ValueError("--slippage-bps cannot be negative")
    return {"start_date": args.start.isoformat(), "end_date": "", "starting_capital": float(args.capital),
            "position_size_pct": float(args.position_size_pct), "max_positions": args.max_positions,
            "max_per_sector": args.max_per_sector, "slippage_bps": float(args.slippage_bps),
            "charges": args.charges}


def _print_backtest(result: dict[str, Any], name: str, params: dict[str, Any], show_trades: bool) -> None:
    summary = result["summary"]
    table = Table(title=f"{name}: {params['universe']} {params['from']}..{params['to']}", show_header=False)
    for key, label, unit in SUMMARY_ROWS:
        if key in summary:
            table.add_row(label, fmt(summary[key], unit))
    console.print(table)
    diag = result["diagnostics"]
    console.print(f"{diag.get('trading_days')} trading days, {fmt(diag.get('bars_processed'))} bars, "
                  f"engine {diag.get('elapsed_ms')} ms; {len(result['open_positions'])} positions open at the end")
    for warning in diag.get("warnings") or []:
        console.print(f"[yellow]Warning:[/] {warning}")
    if diag.get("refused_entries"):
        by_reason = (diag.get("refused_by_reason") or {}).items()
        reasons = ", ".join(f"{n} {code.replace('_', ' ')}" for code, n in by_reason)
        console.print(f"{diag['refused_entries']} entries refused at the fill ({reasons})")
    if show_trades:
        trades = Table("symbol", "entry date", "entry price", "exit date", "exit price", "quantity", "P&L",
                       "exit reason")
        for t in result["trades"]:
            trades.add_row(t["symbol"], t["entry_date"], fmt(t["entry_price"]), t["exit_date"], fmt(t["exit_price"]),
                           fmt(t["quantity"]), fmt(t["pnl"], "INR"), t["exit_reason"])
        for r in result.get("refused_entries") or []:
            trades.add_row(r["symbol"], r["date"], "-", "-", "-", fmt(r["quantity"]), "-", f"refused: {r['reason']}")
        console.print(trades)


def _clock(args: argparse.Namespace) -> tuple[Any, Any]:
    from infra.bars.market import BarStoreMarket
    from infra.bootstrap import bootstrap

    platform = bootstrap(Settings(), market=BarStoreMarket(_data_dir(args)))
    return platform, platform.market_clock


def cmd_sim_advance(args: argparse.Namespace) -> int:
    if not 1 <= args.days <= 2500:
        return _fail("--days must be between 1 and 2500")
    store = BarStore(_data_dir(args))
    if store.is_empty():
        return _fail("No bar history is stored yet; run tradertape data generate first")
    synthetic = store.meta("synthetic") or {}
    universe = load_universe(str(synthetic.get("universe") or "nifty_100"))
    platform, clock = _clock(args)
    started = time.perf_counter()
    try:
        clock.run_due()  # portfolios catch up to today's bars first
        days = extend(store, universe, args.days)
        with _progress("Advancing the market") as update:
            # every read of the clock is bounded by the day it steps: the later bars are not seen early
            report = clock.run_due(days[-1].isoformat(), progress=update)
        total, signals = report.steps, len(report.signals)
    finally:
        platform.close()
    console.print(f"[green]Advanced[/] {args.days} trading day(s) to {store.last_date()} in "
                  f"{time.perf_counter() - started:.1f} s: {total} portfolio-days stepped, {signals} new signals")
    if days and days[-1].year > NSE_TABLE_LAST_YEAR:
        console.print(f"[yellow]Note:[/] NSE's holiday table ends in {NSE_TABLE_LAST_YEAR}; later years close only "
                      "on the fixed-date holidays (26 Jan, 1 May, 15 Aug, 2 Oct, 25 Dec).")
    return 0


def cmd_scheduler(args: argparse.Namespace) -> int:
    from infra.runtime.scheduler import Scheduler

    platform, clock = _clock(args)
    scheduler = Scheduler(clock, platform.settings.scan_time, platform.settings.expiry_sweep_seconds)
    console.print(f"market clock: after-close run at {platform.settings.scan_time} Asia/Kolkata on trading days")
    scheduler.start()
    try:
        while scheduler.thread.is_alive():
            scheduler.thread.join(timeout=1.0)
    except KeyboardInterrupt:
        scheduler.stop()
    finally:
        platform.close()
    return 0


# -------------------------------------------------------------------- helpers


def last_completed_session(now: datetime, calendar: TradingCalendar) -> date:
    """The latest trading day whose session has closed at `now` (IST)."""
    local = now.astimezone(IST)
    today = local.date()
    if calendar.is_trading_day(today) and local.time() >= SESSION_CLOSE:
        return today
    return calendar.previous_trading_day(today)


def _kite_symbols(args: argparse.Namespace) -> list[str]:
    if args.symbols:
        # any NSE symbol: Kite's instrument list is the authority, unknown ones are reported
        symbols = [normalize_symbol(s) for s in args.symbols.split(",")]
        symbols = list(dict.fromkeys(s for s in symbols if s))
        if not symbols:
            raise ValueError("--symbols is empty; pass e.g. --symbols INFY,TCS,NIFTY50")
        return symbols
    universe = load_universe(args.universe or "nifty_100")
    members = set(universe.symbols)
    indices = [u.index_symbol for u in list_universes() if set(u.symbols) <= members]
    return [*universe.symbols, *indices]


def _data_dir(args: argparse.Namespace) -> Path:
    value = getattr(args, "data_dir", None)
    return Path(value) if value else Settings().data_dir  # TRADERTAPE_DATA_DIR, default ./var/data


def _data_dir_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, default=None, help="default: TRADERTAPE_DATA_DIR or ./var/data")


def _date_arg(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


@contextmanager
def _progress(title: str) -> Iterator[Callable[[str, int, int], None]]:
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[item]}"),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(title, total=None, item="")

        def update(item: str, done: int, total: int) -> None:
            bar.update(task, total=total, completed=done, item=item)

        yield update


def _print_report(report: ImportReport) -> None:
    table = Table(show_header=False, box=None)
    rows: Sequence[tuple[str, Any]] = (
        *((("files", report.files),) if report.files else ()),
        ("rows read", report.rows_read),
        ("imported", f"{report.imported} ({report.updated} replaced different values)"),
        ("unchanged", report.unchanged),
        ("skipped (not series EQ)", report.skipped),
        ("rejected", len(report.rejected)),
    )
    for label, value in rows:
        table.add_row(label, str(value))
    console.print(table)
    for rejection in report.rejected[:_SHOWN_REJECTIONS]:
        console.print(f"  [yellow]{rejection.file}:{rejection.row}[/] {rejection.reason}")
    if len(report.rejected) > _SHOWN_REJECTIONS:
        console.print(f"  ... and {len(report.rejected) - _SHOWN_REJECTIONS} more rejected rows")


def _fail(message: str) -> int:
    console.print(f"[red]Error:[/] {message}")
    return 2
