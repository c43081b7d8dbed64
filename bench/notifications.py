"""Notifications (issue 20): event to email sent, p99 <= 2 s at 200 events/s.

The store and the commands run in this process (SQLite by default; `--db postgres`: a Postgres of the
test support on loopback); `tradertape notifier` runs as its own process (as in production) and emails
through a real SMTP server (aiosmtpd) on loopback, in a third process (as a mail server would be: not
sharing this process's interpreter with the writer), which logs when each message arrived. Events (an
import finished: one notification each) are recorded open-loop at `--rate` per second across
`--accounts` accounts, each at its planned time. The latency of an event is from its command's commit
to the SMTP server receiving the message that carries its notification. The per-user rate limit is
raised so every notification is its own message (`--user-rate` to measure with merging).

    .venv/bin/python bench/notifications.py                      # 200 events/s for 30 s, SQLite
    .venv/bin/python bench/notifications.py --db postgres --seconds 60
"""

from __future__ import annotations

import argparse
import email
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from _harness import percentile  # type: ignore[import-not-found]
from aiosmtpd.controller import Controller

from commands import imports_messages as im
from commands.ports import CommandMeta
from domain.accounts import Account
from infra.bootstrap import bootstrap
from infra.config.settings import Settings
from projections.notifications import notifications, notifier_state
from streams.workers import make_projector
from tests.support.processes import Proc, tt_env
from tests.support.services import PostgresServer, free_port


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=200.0, help="events per second")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--accounts", type=int, default=50)
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--user-rate", type=int, default=1000, help="TRADERTAPE_NOTIFY_RATE_PER_MINUTE")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="tt-bench-notify-"))
    port = free_port()
    arrivals = tmp / "arrivals.log"  # one line per message: "<epoch> <notification ids>"
    smtp = subprocess.Popen([sys.executable, __file__, "--smtp-sink", str(port), str(arrivals)])
    messages = [0]
    received: dict[int, float] = {}  # notification id -> when the SMTP server had it
    read_at = [0]

    def collect() -> None:
        if not arrivals.exists():
            return
        with arrivals.open() as f:
            f.seek(read_at[0])
            for line in f:
                if not line.endswith("\n"):
                    break
                read_at[0] += len(line)
                at, _, ids = line.strip().partition(" ")
                messages[0] += 1
                for x in ids.split(","):
                    if x:
                        received.setdefault(int(x), float(at))
    pg = url = None
    extra: dict[str, Any] = {}
    if args.db == "postgres":
        pg = PostgresServer().start()
        url = pg.create_database()
        extra["database_url"] = url
    env = tt_env(tmp, smtp_url=f"smtp://127.0.0.1:{port}", notify_rate_per_minute=args.user_rate, notifier="false",
                 **extra)
    settings = Settings(**{k[len("TRADERTAPE_"):].lower(): v for k, v in env.items() if k.startswith("TRADERTAPE_")})
    platform = bootstrap(settings)
    notifier: Proc | None = None
    try:
        meta = CommandMeta(actor="system")
        for i in range(1, args.accounts + 1):
            platform.store.save([Account.register(i, f"bench{i}@example.com", f"bench{i}", False, "bench")], meta)
        projector = make_projector(platform, "store")
        while projector.step():
            pass
        notifier = Proc(["notifier", "--source", "store"], env, tmp / "notifier.log").start()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # started: it has taken the store's head as its start
            with platform.db.read() as conn:
                if conn.execute(sa.select(notifier_state.c.value)).first() is not None:
                    break
            time.sleep(0.1)
        committed: dict[int, float] = {}  # event position -> commit time
        total = int(args.rate * args.seconds)
        lag = [0.0]

        def load() -> None:
            start = time.monotonic()
            for n in range(total):
                due = start + n / args.rate
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                else:
                    lag[0] = max(lag[0], -wait)
                result = platform.bus.handle(im.ImportLedger(n % args.accounts + 1, f"b{n}.csv", 0, ()), meta)
                committed[int(result.position or 0)] = time.time()

        t0 = time.time()
        writer = threading.Thread(target=load)
        writer.start()
        writer.join()
        wrote = time.time() - t0
        deadline = time.monotonic() + 120
        collect()
        while len(received) < total and time.monotonic() < deadline:
            time.sleep(0.2)
            collect()
        with platform.db.read() as conn:
            n = notifications.c
            rows = conn.execute(sa.select(n.id, n.position, n.created_at).where(n.kind == "import_finished")).all()
        by_id = {int(r.id): int(r.position) for r in rows}
        lat = sorted(received[nid] - committed[pos] for nid, pos in by_id.items()
                     if nid in received and pos in committed)
        rec = sorted(float(r.created_at) - committed[int(r.position)] for r in rows if int(r.position) in committed)
    finally:
        if notifier is not None:
            notifier.stop()
        platform.close()
        smtp.terminate()
        smtp.wait(10)
        if pg is not None and url is not None:
            pg.drop_database(url)
            pg.stop()
    print(f"notifications bench ({args.db}): {total} events at {args.rate:.0f}/s over {args.accounts} accounts "
          f"(written in {wrote:.1f} s, the writer at most {lag[0] * 1e3:.0f} ms behind schedule)")
    print(f"  emailed: {len(received)} of {total} notifications in {messages[0]} messages")
    if lat:
        print(f"  event -> email sent: p50 {percentile(lat, 50):.3f} s, p95 {percentile(lat, 95):.3f} s, "
              f"p99 {percentile(lat, 99):.3f} s, max {lat[-1]:.3f} s (target p99 <= 2 s)")
    if rec:
        print(f"  of which event -> recorded (the outbox): p50 {percentile(rec, 50):.3f} s, "
              f"p99 {percentile(rec, 99):.3f} s")


def smtp_sink(port: int, log: Path) -> None:
    """The SMTP server of the bench (its own process): appends "<arrival epoch> <notification ids>" per message."""
    out = log.open("a", buffering=1)

    class Handler:
        async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
            now = time.time()
            msg = email.message_from_bytes(envelope.original_content)
            out.write(f"{now:.6f} {msg['X-TraderTape-Notifications'] or ''}\n")
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        signal.sigwait({signal.SIGTERM, signal.SIGINT})
    finally:
        controller.stop()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--smtp-sink"]:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
        smtp_sink(int(sys.argv[2]), Path(sys.argv[3]))
    else:
        main()
