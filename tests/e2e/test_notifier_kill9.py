"""`tradertape notifier` killed with SIGKILL in the middle of a burst of 500 notified events (on SQLite and on
Postgres, whose COMMIT is answered after the final "." went out): after a
restart every notification is emailed, none twice -- except a message the killed process had recorded sent
without the server's answer yet (at most one per sending thread, and rare: the record and the final "." are
microseconds apart), which is sent again marked as a possible repeat with the same Message-ID (real SMTP on
loopback, counted exactly)."""

from __future__ import annotations

import email
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from commands import imports_messages as im
from commands.ports import CommandMeta
from domain.accounts import Account
from infra.bootstrap import bootstrap
from infra.config.settings import Settings
from projections.notifications import notification_deliveries, notifications
from streams.workers import make_projector
from tests.support.processes import Proc, tt_env
from tests.support.services import smtp_server
from tests.support.waiting import eventually

ACCOUNTS = 10
EVENTS = 500


def carried(received: list[Any]) -> Counter[int]:
    """How many times each notification id arrived by email."""
    seen: Counter[int] = Counter()
    for env in list(received):
        msg = email.message_from_bytes(env.original_content)
        for x in (msg["X-TraderTape-Notifications"] or "").split(","):
            if x:
                seen[int(x)] += 1
    return seen


def repeated(received: list[Any]) -> dict[int, set[str]]:
    """Notification id -> the Message-IDs of the messages that carried it again as a possible repeat."""
    seen: dict[int, set[str]] = {}
    for env in list(received):
        msg = email.message_from_bytes(env.original_content)
        if msg["X-TraderTape-Possible-Repeat"] == "yes":
            for x in (msg["X-TraderTape-Notifications"] or "").split(","):
                seen.setdefault(int(x), set()).add(str(msg["Message-ID"]))
    return seen


def test_sigkill_mid_burst_loses_nothing_and_repeats_only_what_was_in_doubt(tmp_path: Path, database_url: str) -> None:
    with smtp_server() as (port, received):
        env = tt_env(tmp_path, database_url=database_url, smtp_url=f"smtp://127.0.0.1:{port}", notify_lease_seconds=2,
                     notify_rate_per_minute=1000, notifier="false")
        fields: dict[str, Any] = {k[len("TRADERTAPE_"):].lower(): v for k, v in env.items()
                                  if k.startswith("TRADERTAPE_")}
        settings = Settings(**fields)
        platform = bootstrap(settings)
        meta = CommandMeta(actor="system")
        for i in range(1, ACCOUNTS + 1):  # the accounts (their emails come from the accounts read model)
            platform.store.save([Account.register(i, f"trader{i}@example.com", f"trader{i}", False, "test")], meta)
        projector = make_projector(platform, "store")
        while projector.step():
            pass
        log = tmp_path / "notifier.log"
        notifier = Proc(["notifier", "--source", "store"], env, log).start()
        try:
            eventually(lambda: _started(platform), "the notifier's first position", 60)

            def burst() -> None:  # ~200 events/s
                for n in range(EVENTS):
                    account = n % ACCOUNTS + 1
                    platform.bus.handle(im.ImportLedger(account, f"ledger-{n}.csv", 0, ()), meta)
                    time.sleep(0.005)

            writer = threading.Thread(target=burst)
            writer.start()
            eventually(lambda: len(carried(received)) >= 60, "the first emails", 120)
            notifier.kill9()
            at_kill = len(carried(received))
            assert writer.is_alive(), "the burst was over before the kill: nothing was tested mid-burst"
            writer.join()
            assert at_kill < EVENTS
            notifier = Proc(["notifier", "--source", "store"], env, log).start()
            eventually(lambda: _recorded(platform) == EVENTS, "every event recorded", 120)
            ids = _ids(platform)
            eventually(lambda: set(carried(received)) >= ids, "every notification emailed", 120)
            time.sleep(settings.notify_lease_seconds + 2)  # anything claimed twice would have gone out by now
            notifier.stop()
            with platform.db.read() as conn:  # every delivery sent and answered: none left in doubt
                d = notification_deliveries
                assert conn.execute(sa.select(sa.func.count()).select_from(d).where(
                    sa.or_(d.c.status != "sent", d.c.claim.isnot(None)))).scalar_one() == 0
        finally:
            notifier.stop()
            platform.close()
        got, repeats = carried(received), repeated(received)
        assert len(ids) == EVENTS
        assert set(got) == ids, "a notification was never emailed (or one that does not exist was)"
        twice = {i for i, n in got.items() if n > 1}
        assert twice <= set(repeats), "a notification was emailed twice without being marked a possible repeat"
        assert all(n <= 2 for n in got.values()), "a notification was emailed three times"
        assert len(repeats) <= settings.notify_senders, "more in doubt than messages being sent at the kill"
        assert sum(got.values()) == EVENTS + len(twice)


def _started(platform: Any) -> bool:
    try:
        with platform.db.read() as conn:
            return conn.execute(sa.text("SELECT count(*) FROM projection_tracking WHERE projection = 'notifier'"))\
                .scalar_one() > 0 or conn.execute(sa.text("SELECT count(*) FROM notifier_state")).scalar_one() > 0
    except sa.exc.DBAPIError:
        return False


def _recorded(platform: Any) -> int:
    with platform.db.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(notifications)
                                .where(notifications.c.kind == "import_finished")).scalar_one())


def _ids(platform: Any) -> set[int]:
    with platform.db.read() as conn:
        return {int(r[0]) for r in conn.execute(sa.select(notifications.c.id)
                                                .where(notifications.c.kind == "import_finished"))}
