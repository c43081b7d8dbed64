"""The `tradertape` command line.

The CLI sits in infra but its subcommands live in the outer layers (api, streams, backtest); they are
looked up by module name at run time so the layer contract (outer -> inner only) holds statically.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from commands.handlers.auth import normalize_email
from commands.messages import GrantAdmin
from commands.ports import CommandMeta
from infra.bootstrap import bootstrap, seed
from infra.config.settings import Settings

# Modules that add subcommands through a `register(subparsers)` function.
PLUGINS = ("streams.cli", "streams.audit", "backtest.cli", "backtest.research.cli", "infra.kite.cli",
           "infra.analytics.cli", "infra.config.reference", "streams.telegram_bot")


def _init(args: argparse.Namespace) -> None:
    platform = bootstrap(Settings())
    importlib.import_module("streams.workers").make_projector(platform, "store").create_tables()
    seed(platform)
    print("database ready")


def _grant_admin(args: argparse.Namespace) -> None:
    platform = bootstrap(Settings())
    account_id = platform.security.account_id_for_email(normalize_email(args.email))
    if account_id is None:
        raise SystemExit(f"No account with email {args.email}; sign in once first")
    platform.bus.handle(GrantAdmin(account_id), CommandMeta(actor="cli"))
    print(f"{args.email} is now an admin")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tradertape", description="TraderTape: event-sourced trading platform")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="serve the API (embedded default: with projectors and scheduler)")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--no-projector", action="store_true", help="do not run projectors in this process")
    p.add_argument("--workers", type=int, default=1, help="API worker processes (default 1)")
    p.set_defaults(func=lambda a: importlib.import_module("api.server").serve(a))
    p = sub.add_parser("db", help="database maintenance")
    dsub = p.add_subparsers(dest="db_cmd", required=True)
    dsub.add_parser("init", help="create tables and seed templates").set_defaults(func=_init)
    p = sub.add_parser("users", help="user administration")
    usub = p.add_subparsers(dest="users_cmd", required=True)
    g = usub.add_parser("grant-admin", help="make an existing user an admin")
    g.add_argument("email")
    g.set_defaults(func=_grant_admin)
    for name in PLUGINS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "data_dir", None) is None and hasattr(args, "data_dir"):
        args.data_dir = Settings().data_dir  # the configured data dir unless --data-dir was given
    rc = args.func(args)
    if isinstance(rc, int) and rc:
        sys.exit(rc)


if __name__ == "__main__":
    main(sys.argv[1:])
