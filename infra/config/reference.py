"""The configuration reference (docs/CONFIGURATION.md), generated from the `Settings` class.

`tradertape config reference --write docs/CONFIGURATION.md` rewrites it; `--check` exits non-zero when
the file is stale (tests/docs/test_configuration.py runs the same comparison). Each setting's
description is its `Field(description=...)` when it has one, else the entry in `DESCRIPTIONS` below;
a setting with neither makes the generator fail, so a new setting cannot go undocumented.
"""

from __future__ import annotations

import argparse
import sys
import types
import typing
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from infra.config.settings import Settings

DEFAULT_OUTPUT = Path("docs/CONFIGURATION.md")

# name -> description, for settings declared without Field(description=...)
DESCRIPTIONS: dict[str, str] = {
    "env": "`development` generates a secret key under `var_dir`; `production` refuses to start without "
    "`TRADERTAPE_SECRET_KEYS`; `test` is for the test suite.",
    "var_dir": "Working directory of the embedded default: the SQLite database, the generated secret key, "
    "saved emails (`mail/`).",
    "database_url": "The event store and read models: `sqlite:///path` (embedded) or "
    "`postgresql://user@host:5432/db` (production).",
    "kafka_bootstrap": "Kafka bootstrap servers (`host:port,...`). Unset: the embedded transport (projections "
    "tail the store in-process). Set: run `tradertape relay` and `tradertape projector` beside the API.",
    "kafka_topic": "The topic the relay publishes every event to.",
    "kafka_partitions": "Partitions the relay creates the topic with (events are keyed by account).",
    "duckdb_path": "The analytics store: its folder holds `analytics/` (Parquet snapshots per account, "
    "backtest trade lists and equity curves).",
    "data_dir": "The bar store: daily OHLCV history (Parquet) read by backtests, scans and marks.",
    "secret_keys": "Comma-separated secret keys (at least 32 characters each). The first signs tokens and "
    "encrypts broker secrets; the others still decrypt (key rotation). Required in production.",
    "smtp_url": "Outgoing mail: `smtp://user:pass@host:port`, `smtps://...`, `?starttls=1`. Unset: emails are "
    "printed to the console and saved under `var_dir/mail/`.",
    "mail_from": "The From header of emails.",
    "cookie_secure": "Mark the session cookie `Secure` (HTTPS only); unset: true when TRADERTAPE_ENV=production.",
    "session_days": "Days a sign-in session lasts.",
    "base_url": "The address links in emails point at (e.g. `https://trade.example.com` behind a proxy). "
                "Unset: the listening address, `http://HOST:PORT` (127.0.0.1 for a wildcard host).",
    "host": "Address `tradertape serve` listens on (also `serve --host`); emailed links follow it.",
    "port": "Port `tradertape serve` listens on (also `serve --port`); emailed links follow it.",
    "admin_emails": "Comma-separated emails that are admins when they sign in.",
    "read_your_writes_timeout": "Seconds a command's answer waits for the read models to apply its events "
    "before it is built from the event store instead.",
    "health_max_lag": "`/api/health` is `degraded` when a read model (a Kafka partition, or the store) is more "
    "than this many events behind.",
    "health_max_failures": "`/api/health` is `degraded` when a projector or relay step failed this many times "
    "in a row.",
    "metrics_token": "Bearer token an operator's monitoring sends to `/metrics` and `/api/health` (for the "
    "detail). Empty: only signed-in admins see the detail.",
    "api_threads": "Synchronous endpoint calls one API process runs at once (first come, first served); "
    "0 = no limit.",
    "scheduler": "Run the market clock (after-close run, expiry sweep) in `serve`. Unset: on with the embedded "
    "transport, off with Kafka (run `tradertape scheduler` as its own process).",
    "scan_time": "Time of the after-close run on trading days, `HH:MM` Asia/Kolkata.",
    "expiry_sweep_seconds": "Seconds between sweeps that expire signals past their validity.",
    "log_level": "Python logging level (`DEBUG` logs each relay and projector batch).",
    "upload_max_mb": "Size limit of one uploaded file (tradebook, ledger, CAS), in MB.",
    "upload_max_files": "Files one tradebook upload may carry.",
    "pdf_parse_seconds": "Wall-clock limit of one CAS PDF parse (a child process).",
    "pdf_parse_memory_mb": "Address-space limit of the CAS parser process, in MB.",
    "kite_api_root": "Kite Connect REST root (tests point it at a loopback stub).",
    "kite_login_url": "Kite Connect login page.",
    "kite_ws_root": "Kite ticker WebSocket root.",
    "broker_cache_seconds": "Seconds `/api/portfolio/*` answers are cached per account.",
    "tick_feed": "`auto`: Kite's ticker while some account has a broker session, else the simulated feed; "
    "`simulated`: never connect to Kite.",
    "tick_interval": "Seconds between simulated ticks of one symbol.",
    "tick_always_open": "The simulated feed moves outside NSE hours too (demos, benchmarks).",
    "tick_heartbeat_seconds": "Seconds between `status` messages (market_open, next_open) to every tick "
                              "WebSocket client, ticks or not (at most 15).",
    "paper_tick_fills": "Paper portfolios fill their GTTs (limit entries, stop/target) on ticks while the tick "
    "feed runs; off: paper fills only on daily bars, exactly as a backtest.",
    "paper_tick_refresh_seconds": "Seconds between reloads of the orders the paper tick feed watches.",
}


# Variables read by command-line tools outside the settings class (the agent runs on the trader's machine).
TOOL_VARIABLES: dict[str, tuple[str, str]] = {  # name -> (default, description)
    "TRADERTAPE_AGENT_KEY": ("(none)", "`tradertape agent`: the agent key (`zt_...`, from `POST /api/auth/agent-key`); "
                             "or `--key`."),
    "TRADERTAPE_MARKET_PROTECTION": ("`-1`", "`tradertape agent`: `market_protection` sent with every MARKET order: "
                                     "-1 automatic, or a percentage above 0 up to 100 (Kite refuses API market "
                                     "orders without it); or `--market-protection`."),
    "TRADERTAPE_ALGO_ID": ("(none)", "`tradertape agent`: `algo_id` sent with every order, when your algo is "
                           "registered; or `--algo-id`."),
    "TRADERTAPE_KITE_API_ROOT": ("`https://api.kite.trade`", "`tradertape agent`: Kite API root; or `--kite-root`."),
    "TRADERTAPE_AGENT_STATE_DIR": ("`~/.tradertape`", "`tradertape agent`: where its journal lives; or "
                                   "`--state-dir`."),
    "TRADERTAPE_KITE_API_KEY": ("(none)", "`tradertape data import-kite`: the Kite app's api_key; or `--api-key`."),
    "TRADERTAPE_KITE_ACCESS_TOKEN": ("(none)", "`tradertape data import-kite`: a Kite access token (keeps it out of "
                                     "the shell history); or `--access-token`."),
    "TRADERTAPE_SERVE_NO_PROJECTOR": ("(unset)", "Internal: `tradertape serve --no-projector` sets it for its "
                                      "worker processes."),
    "TRADERTAPE_AGENT_CRASH": ("(unset)", "Tests only: `<point>:<n>` kills the agent at a fault-injection point."),
}


class UndocumentedSetting(RuntimeError):
    """A setting has no description."""


def env_name(field: str) -> str:
    prefix = str(Settings.model_config.get("env_prefix", ""))
    return f"{prefix}{field}".upper()


def _type_text(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        parts = [_type_text(a) for a in args if a is not type(None)]
        return " \\| ".join(parts) + (" (optional)" if type(None) in args else "")
    if isinstance(annotation, type):
        return {"str": "text", "int": "integer", "float": "number", "bool": "true/false",
                "Path": "path"}.get(annotation.__name__, annotation.__name__)
    return str(annotation)


def _default_text(field: FieldInfo) -> str:
    default = field.default
    if default is PydanticUndefined or default is None:
        return "(unset)"
    if default == "":
        return "(empty)"
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    return f"`{default}`"


def _constraints(field: FieldInfo) -> str:
    out: list[str] = []
    for meta in field.metadata:
        for attr, sign in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
            value = getattr(meta, attr, None)
            if value is not None:
                out.append(f"{sign} {value}")
        pattern = getattr(meta, "pattern", None)
        if pattern:
            out.append(f"matches `{pattern}`")
    return ", ".join(out)


def settings_rows() -> list[tuple[str, str, str, str, str]]:
    """(environment variable, type, default, constraints, description) of every setting, in class order."""
    rows = []
    missing = []
    for name, field in Settings.model_fields.items():
        description = field.description or DESCRIPTIONS.get(name)
        if not description:
            missing.append(env_name(name))
            continue
        rows.append((env_name(name), _type_text(field.annotation), _default_text(field), _constraints(field),
                     description))
    if missing:
        raise UndocumentedSetting(
            f"settings without a description: {', '.join(missing)}; give each a Field(description=...) in "
            "infra/config/settings.py (or an entry in infra/config/reference.py DESCRIPTIONS), then run "
            "`tradertape config reference --write`"
        )
    return rows


def render() -> str:
    """The Markdown of docs/CONFIGURATION.md."""
    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated by `tradertape config reference --write` from infra/config/settings.py; "
        "do not edit by hand. -->",
        "",
        "Every setting is an environment variable (or a line of a `.env` file in the working directory).",
        "Unset variables take the default. Booleans accept `true`/`false`/`1`/`0`. How to run and secure a",
        "deployment: [Operations](OPERATIONS.md).",
        "",
        "| Variable | Type | Default | Allowed | Description |",
        "|---|---|---|---|---|",
    ]
    for env, kind, default, allowed, description in settings_rows():
        text = description.replace("|", "\\|")
        lines.append(f"| `{env}` | {kind} | {default} | {allowed} | {text} |")
    lines += [
        "",
        "## Variables of the command-line tools",
        "",
        "Read by the tools named, not by the server (`tradertape agent` runs on the trader's own machine).",
        "",
        "| Variable | Default | Description |",
        "|---|---|---|",
    ]
    for env, (default, description) in TOOL_VARIABLES.items():
        lines.append(f"| `{env}` | {default} | {description} |")
    lines.append("")
    return "\n".join(lines)


def _command(args: argparse.Namespace) -> int:
    text = render()
    target = Path(args.output)
    if args.check:
        current = target.read_text(encoding="utf-8") if target.exists() else ""
        if current != text:
            print(f"{target} is out of date: run `tradertape config reference --write`", file=sys.stderr)
            return 1
        print(f"{target} is current")
        return 0
    if args.write:
        target.write_text(text, encoding="utf-8")
        print(f"wrote {target}")
        return 0
    sys.stdout.write(text)
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    config = sub.add_parser("config", help="configuration: the reference of every TRADERTAPE_ setting")
    csub = config.add_subparsers(dest="config_cmd", required=True)
    ref = csub.add_parser("reference", help="print the configuration reference (Markdown), or --write/--check it")
    ref.add_argument("--output", default=str(DEFAULT_OUTPUT), help=f"default {DEFAULT_OUTPUT}")
    mode = ref.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="write it to --output")
    mode.add_argument("--check", action="store_true", help="exit 1 when --output differs from the generated text")
    ref.set_defaults(func=_command)
