"""`tradertape relay`, `tradertape projector`, `tradertape projections rebuild`."""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from rich.console import Console

from infra.bootstrap import bootstrap
from infra.config.settings import Settings
from infra.runtime import heap
from streams.notifier import Notifier
from streams.runner import RebuildStalled
from streams.workers import make_projector, make_relay, make_source, rebuild_read_models

console = Console()


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def relay(args: argparse.Namespace) -> None:
    settings = Settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    platform = bootstrap(settings)
    r = make_relay(platform)
    console.print(f"relay: store -> kafka {settings.kafka_bootstrap} topic {settings.kafka_topic} "
                  f"(from position {r.position()})")
    heap.settle()
    r.run(_stop_on_signals())


def projector(args: argparse.Namespace) -> None:
    settings = Settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    platform = bootstrap(settings)
    parts = [int(p) for p in args.partitions.split(",")] if args.partitions else None
    runner = make_projector(platform, args.source, parts)
    console.print(f"projector: source {args.source or ('store' if settings.embedded_transport else 'kafka')}")
    heap.settle()
    runner.run(_stop_on_signals())


def notifier(args: argparse.Namespace) -> None:
    settings = Settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    platform = bootstrap(settings)
    kind = args.source or ("store" if settings.embedded_transport else "kafka")
    wake = platform.store.insert_channel if kind == "kafka" else None
    n = Notifier(platform, make_source(platform, kind), wake_channel=wake)
    console.print(f"notifier: source {kind}; channels {', '.join(c.name for c in n.channels) or 'in-app only'}")
    heap.settle()
    stop = _stop_on_signals()
    n.start(stop)
    stop.wait()
    n.join()


def rebuild(args: argparse.Namespace) -> int:
    settings = Settings()
    platform = bootstrap(settings)
    try:
        kind = args.source or ("store" if settings.embedded_transport else "kafka")
        runner = make_projector(platform, kind)
        head = platform.store.max_position()
        try:
            with console.status(f"rebuilding read models from the {kind} up to position {head}..."):
                n, covered, head = rebuild_read_models(platform, runner, kind, head)
        except RebuildStalled as exc:
            console.print(f"[red]rebuild failed:[/] {exc}")
            return 1
        finally:
            runner.source.close()
    finally:
        platform.close()
    console.print(f"rebuilt {len(runner.projections)} projections from {n} events up to position {covered} "
                  f"(store head {head}); projectors on the store and on every Kafka partition resume after it")
    if covered < head:
        console.print(f"[red]incomplete:[/] the relay has published only up to position {covered}; "
                      "the projector applies the rest once the relay catches up")
        return 1
    return 0


def retry_failed(args: argparse.Namespace) -> int:
    settings = Settings()
    platform = bootstrap(settings)
    try:
        runner = make_projector(platform, "store")  # (the events come from the dead-letter table)
        applied, failed = runner.retry_failed(args.projection)
    finally:
        platform.close()
    console.print(f"re-applied {applied} set-aside event(s); {failed} still failing "
                  "(see /api/health or the projection_dead_letters table)")
    return 1 if failed else 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("relay", help="publish stored events to Kafka")
    p.set_defaults(func=relay)
    p = sub.add_parser("projector", help="build read models from Kafka (or the store)")
    p.add_argument("--source", choices=["store", "kafka"], default=None)
    p.add_argument("--partitions", help="comma-separated partitions to own (default: all)")
    p.set_defaults(func=projector)
    p = sub.add_parser("notifier", help="record notifications from the events and send them (email, ...)")
    p.add_argument("--source", choices=["store", "kafka"], default=None)
    p.set_defaults(func=notifier)
    p = sub.add_parser("projections", help="read-model maintenance")
    psub = p.add_subparsers(dest="projections_cmd", required=True)
    r = psub.add_parser("rebuild", help="drop every read model and replay the events into it (stop projectors "
                                        "first); non-zero if it could not reach the store's head")
    r.add_argument("--source", choices=["store", "kafka"], default=None)
    r.set_defaults(func=rebuild)
    f = psub.add_parser("retry-failed", help="apply the events set aside as failing (dead letters) again, after a "
                                             "fix; non-zero if some still fail")
    f.add_argument("--projection", default=None, help="only this projection's (default: all)")
    f.set_defaults(func=retry_failed)
