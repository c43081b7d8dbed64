"""The `tradertape` command line (the `tradertape` console script in pyproject.toml).

It sits in `api`, the top layer, because its subcommands come from every component: `serve` (api), the
projector, relay, notifier, audit and Telegram bot (streams), bar data, backtests and research (backtest),
the agent, analytics and the configuration reference (infra). Each component adds its subcommands through
a `register(subparsers)` function, imported here by name like any other import.

`tradertape agent` is the exception to loading everything: the agent runs on the trader's machine, often
one cycle at a time (`--once`), and the server's modules take seconds to import; it loads only the Kite
integration's command line (`infra.kite.cli`).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from infra.kite import cli as kite_cli


def plugins() -> tuple[Any, ...]:
    """What adds subcommands through a `register(subparsers)` function, in the order `--help` lists them."""
    from backtest import cli as backtest_cli
    from backtest.research import cli as research_cli
    from infra.analytics import cli as analytics_cli
    from infra.config import reference as config_reference
    from streams import audit as streams_audit
    from streams import cli as streams_cli
    from streams import telegram_bot

    return (streams_cli, streams_audit, backtest_cli, research_cli, kite_cli, analytics_cli, config_reference,
            telegram_bot)


def _init(args: argparse.Namespace) -> None:
    from infra.bootstrap import bootstrap, seed
    from infra.config.settings import Settings
    from streams.workers import make_projector

    platform = bootstrap(Settings())
    make_projector(platform, "store").create_tables()
    seed(platform)
    print("database ready")


def _serve(args: argparse.Namespace) -> None:
    from api.server import serve  # imported when serving: the other commands need not load the web app

    serve(args)


def _grant_admin(args: argparse.Namespace) -> None:
    from commands.handlers.auth import normalize_email
    from commands.messages import GrantAdmin
    from commands.ports import CommandMeta
    from infra.bootstrap import bootstrap
    from infra.config.settings import Settings

    platform = bootstrap(Settings())
    account_id = platform.security.account_id_for_email(normalize_email(args.email))
    if account_id is None:
        raise SystemExit(f"No account with email {args.email}; sign in once first")
    platform.bus.handle(GrantAdmin(account_id), CommandMeta(actor="cli"))
    print(f"{args.email} is now an admin")


def _root() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction[argparse.ArgumentParser]]:
    parser = argparse.ArgumentParser(prog="tradertape", description="TraderTape: event-sourced trading platform")
    return parser, parser.add_subparsers(dest="command", required=True)


def build_parser() -> argparse.ArgumentParser:
    parser, sub = _root()
    p = sub.add_parser("serve", help="serve the API (embedded default: with projectors and scheduler)")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--no-projector", action="store_true", help="do not run projectors in this process")
    p.add_argument("--workers", type=int, default=1, help="API worker processes (default 1)")
    p.set_defaults(func=_serve)
    p = sub.add_parser("db", help="database maintenance")
    dsub = p.add_subparsers(dest="db_cmd", required=True)
    dsub.add_parser("init", help="create tables and seed templates").set_defaults(func=_init)
    p = sub.add_parser("users", help="user administration")
    usub = p.add_subparsers(dest="users_cmd", required=True)
    g = usub.add_parser("grant-admin", help="make an existing user an admin")
    g.add_argument("email")
    g.set_defaults(func=_grant_admin)
    for plugin in plugins():
        plugin.register(sub)
    return parser


def agent_parser() -> argparse.ArgumentParser:
    """`tradertape agent ...` alone (and `tradertape secrets ...`, registered beside it)."""
    parser, sub = _root()
    kite_cli.register(sub)
    return parser


def main(argv: list[str] | None = None) -> None:
    given = sys.argv[1:] if argv is None else argv
    parser = agent_parser() if given[:1] == ["agent"] else build_parser()
    args = parser.parse_args(given)
    if getattr(args, "data_dir", None) is None and hasattr(args, "data_dir"):
        from infra.config.settings import Settings

        args.data_dir = Settings().data_dir  # the configured data dir unless --data-dir was given
    rc = args.func(args)
    if isinstance(rc, int) and rc:
        sys.exit(rc)


if __name__ == "__main__":
    main(sys.argv[1:])
