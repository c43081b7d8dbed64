"""CLI subcommands of the broker integration: `tradertape agent` and `tradertape secrets rotate`."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("agent", help="run the trading agent on your machine (places GTTs with Kite)")
    p.add_argument("--server", required=True, help="the TraderTape server, e.g. http://127.0.0.1:8000")
    p.add_argument("--key", default=None, help="the agent key zt_... (default: TRADERTAPE_AGENT_KEY)")
    p.add_argument("--paper", action="store_true", help="simulate fills locally (a trial run; Kite is not called)")
    p.add_argument("--once", action="store_true", help="run one cycle and exit")
    p.add_argument("--kite-root", default=None, help="Kite API root (default https://api.kite.trade)")
    p.add_argument("--state-dir", type=Path, default=None, help="where the journal lives (default ~/.tradertape)")
    p.add_argument("--poll", type=float, default=2.0, help="seconds between cycles (default 2)")
    p.add_argument("--sync-every", type=float, default=60.0, help="seconds between holdings/positions pushes")
    p.add_argument("--market-protection", default=None,
                   help="market_protection sent with every MARKET order: -1 automatic (default), or a percentage "
                        "above 0 up to 100 (default: TRADERTAPE_MARKET_PROTECTION or -1)")
    p.add_argument("--algo-id", default=None,
                   help="algo_id sent with every order, when your algo is registered (default: TRADERTAPE_ALGO_ID)")
    p.set_defaults(func=_agent)
    s = subparsers.add_parser("secrets", help="broker secret maintenance")
    ssub = s.add_subparsers(dest="secrets_cmd", required=True)
    ssub.add_parser("rotate", help="re-encrypt every stored broker secret with the first TRADERTAPE_SECRET_KEYS key"
                    ).set_defaults(func=_rotate)


def _agent(args: argparse.Namespace) -> int:
    from infra.kite.agent import Agent, AgentConfig

    key = args.key or os.environ.get("TRADERTAPE_AGENT_KEY", "")
    if not key.startswith("zt_"):
        print("an agent key (zt_...) is needed: --key or TRADERTAPE_AGENT_KEY; generate one with "
              "POST /api/auth/agent-key", file=sys.stderr)
        return 2
    raw = args.market_protection if args.market_protection is not None else \
        os.environ.get("TRADERTAPE_MARKET_PROTECTION", "-1")
    protection = market_protection(raw)
    if protection is None:
        print("market protection must be -1 (automatic) or a percentage above 0 up to 100; Kite refuses API "
              "market orders without it", file=sys.stderr)
        return 2
    algo_id = (args.algo_id if args.algo_id is not None else os.environ.get("TRADERTAPE_ALGO_ID", "")).strip()
    logging.basicConfig(level=os.environ.get("TRADERTAPE_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("tradertape.agent").setLevel(logging.INFO)
    config = AgentConfig(
        server=args.server, key=key, paper=args.paper,
        kite_root=args.kite_root or os.environ.get("TRADERTAPE_KITE_API_ROOT") or None,
        api_secret=os.environ.get("KITE_API_SECRET") or None,
        state_dir=(args.state_dir or Path(os.environ.get("TRADERTAPE_AGENT_STATE_DIR", "~/.tradertape"))).expanduser(),
        poll_seconds=args.poll, sync_every=args.sync_every, market_protection=protection, algo_id=algo_id or None,
    )
    try:
        return Agent(config).run(once=args.once)
    except KeyboardInterrupt:
        return 0


def market_protection(raw: object) -> float | None:
    """The market_protection setting as Kite takes it (-1, or 0 < percent <= 100); None when invalid."""
    try:
        value = float(str(raw).strip())
    except ValueError:
        return None
    if value == -1 or 0 < value <= 100:
        return value
    return None


def _rotate(args: argparse.Namespace) -> int:
    from infra.auth.secrets import SecretBox, SqlBrokerSecrets
    from infra.config.settings import Settings
    from infra.store.db import Database

    settings = Settings()
    store = SqlBrokerSecrets(Database.from_settings(settings), SecretBox(settings.secret_key_list))
    store.create_table()
    n = store.rotate_all()
    print(f"re-encrypted {n} broker secret(s) with the first secret key; older keys may now be removed")
    return 0
