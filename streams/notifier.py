"""The notifier: records notifications from the event stream and sends them through the channels.

- The recorder is a projection runner (streams/runner.py) over its own source -- the store's log in the
  embedded default, the relay's Kafka topic in production -- applying `NotifierProjection` with its
  tracking row ("notifier") in the same transaction as the notifications and their deliveries (the
  outbox). A restart resumes after the last recorded event: nothing is recorded twice or skipped.
- One dispatcher thread per channel claims due deliveries (a lease, so two notifier processes never
  send the same one), and sends them. A send records the delivery as sent right before its point of no
  return (`NotificationChannel`, commands/ports.py): killed before, it is sent again (the server never
  completed it); killed after, it is not. A failed send is retried with exponential backoff and, after
  `notify_max_attempts`, shown as failed in the notification list.
- Per user and channel, at most `notify_rate_per_minute` messages a minute: when more are due than the
  allowance left, they go as one message with a list; past the limit they wait. Quiet hours (IST) hold
  email and chat messages until they end; the in-app list shows them at once.
- Timed checks (`TimedChecks`): signals about to expire while still pending approval, the agent
  offline in market hours, the Kite session (ends 06:00 IST) before the open, the daily digest.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from commands.ports import NotDelivered, NotificationChannel, OutgoingNotification
from domain.notifications import channel_on, quiet_until, render_many
from infra.bootstrap import Platform, schema_lock
from infra.mail import ConsoleMailer, SmtpMailer
from infra.notify_channels import EmailChannel
from projections.base import projection_tracking, read_tracking
from projections.notifications import (
    FAILED,
    PENDING,
    SENDING,
    SENT,
    SKIPPED,
    NotifierProjection,
    get_preferences,
    notification_deliveries,
    notifications,
    notifier_signals,
    record,
)
from streams.loop import StepLoop, status_reporter
from streams.runner import ProjectionRunner
from streams.sources import EventSource

log = logging.getLogger(__name__)

ChannelFactory = Callable[[Platform], NotificationChannel | None]
# Outer layers (the Telegram adapter) add theirs here; each returns None when its settings are absent.
CHANNEL_FACTORIES: list[ChannelFactory] = []


def make_channels(platform: Platform) -> list[NotificationChannel]:
    mailer = platform.mailer
    channels: list[NotificationChannel] = []
    if isinstance(mailer, (SmtpMailer, ConsoleMailer)):
        channels.append(EmailChannel(platform.db, mailer))
    for factory in CHANNEL_FACTORIES:
        channel = factory(platform)
        if channel is not None:
            channels.append(channel)
    return channels


class RecorderRunner(ProjectionRunner):
    """The projection runner applying the notifier projection; tells the dispatchers after each batch."""

    def __init__(self, *args: Any, on_recorded: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_recorded = on_recorded
        self.loop = StepLoop("notifier", self.step, idle_wait=0.2 if self._listener is None else 0.5,
                             idle=None if self._listener is None else self._listener.wait,
                             report=status_reporter(self.db, "notifier"))

    def step(self) -> int:
        n = super().step()
        if n:
            self._on_recorded()
        return n


def _backoff(base: float, attempts: int) -> float:
    return float(min(base * (2 ** max(attempts - 1, 0)), 3600.0))


class Dispatcher:
    """Sends one channel's due deliveries (its own thread)."""

    BATCH = 200

    def __init__(self, platform: Platform, channel: NotificationChannel,
                 clock: Callable[[], float] = time.time) -> None:
        self.platform = platform
        self.db = platform.db
        self.channel = channel
        s = platform.settings
        self.rate = s.notify_rate_per_minute
        self.max_attempts = s.notify_max_attempts
        self.retry = s.notify_retry_seconds
        self.lease = s.notify_lease_seconds
        self.base_url = s.public_base_url
        self.clock = clock
        self.sent_messages = 0
        self.loop = StepLoop(f"notifier-{channel.name}", self.step, idle_wait=0.5,
                             report=status_reporter(self.db, f"notifier-{channel.name}"))

    def wake(self) -> None:
        self.loop.wake()

    def _claim(self, token: str, now: float) -> list[Any]:
        d, n = notification_deliveries, notifications
        takeable = sa.or_(d.c.status == PENDING, sa.and_(d.c.status == SENDING, d.c.claimed_until < now))
        with self.db.write() as conn:
            ids = [r.id for r in conn.execute(sa.select(d.c.id).where(
                d.c.channel == self.channel.name, d.c.not_before <= now, takeable).order_by(d.c.id).limit(self.BATCH))]
            if not ids:
                return []
            conn.execute(sa.update(d).where(d.c.id.in_(ids), takeable).values(
                status=SENDING, claim=token, claimed_until=now + self.lease))
            return list(conn.execute(
                sa.select(d.c.id, d.c.account_id, d.c.attempts, d.c.notification_id, n.c.kind, n.c.payload, n.c.link,
                          n.c.occurred_at)
                .join(n, n.c.id == d.c.notification_id).where(d.c.claim == token).order_by(d.c.id)).all())

    def _release(self, ids: Sequence[int], token: str, **values: Any) -> None:
        d = notification_deliveries
        with self.db.write() as conn:
            conn.execute(sa.update(d).where(d.c.id.in_(list(ids)), d.c.claim == token, d.c.status == SENDING)
                         .values(claim=None, claimed_until=None, **values))

    def _recent(self, account_id: int, now: float) -> tuple[int, float]:
        """Messages sent to the account on this channel in the last minute, and the oldest one's time."""
        d = notification_deliveries
        with self.db.read() as conn:
            row = conn.execute(sa.select(sa.func.count(sa.distinct(d.c.message_ref)), sa.func.min(d.c.sent_at)).where(
                d.c.account_id == account_id, d.c.channel == self.channel.name, d.c.status == SENT,
                d.c.sent_at > now - 60)).first()
        return (int(row[0] or 0), float(row[1] or now)) if row is not None else (0, now)

    def step(self) -> int:
        now = self.clock()
        token = uuid.uuid4().hex
        rows = self._claim(token, now)
        if not rows:
            return 0
        by_account: dict[int, list[Any]] = {}
        for r in rows:
            by_account.setdefault(int(r.account_id), []).append(r)
        for account_id, group in by_account.items():
            try:
                self._account(account_id, group, token, now)
            except Exception:  # one account's trouble never stops the others'
                log.exception("notifier %s: deliveries of account %d failed", self.channel.name, account_id)
                self._release([r.id for r in group], token, status=PENDING, not_before=now + self.retry)
        return len(rows)

    def _account(self, account_id: int, group: list[Any], token: str, now: float) -> None:
        with self.db.read() as conn:
            prefs = get_preferences(conn, account_id)
        off = [r for r in group if not channel_on(prefs, r.kind, self.channel.name)]
        if off:
            self._release([r.id for r in off], token, status=SKIPPED, last_error="switched off in preferences")
        group = [r for r in group if channel_on(prefs, r.kind, self.channel.name)]
        if not group:
            return
        quiet = quiet_until(prefs, datetime.fromtimestamp(now, UTC))
        if quiet is not None:
            self._release([r.id for r in group], token, status=PENDING, not_before=quiet.timestamp())
            return
        sent, oldest = self._recent(account_id, now)
        allowance = self.rate - sent
        if allowance <= 0:
            self._release([r.id for r in group], token, status=PENDING, not_before=oldest + 60.0)
            return
        address = self.channel.address(account_id)
        if address is None:
            self._release([r.id for r in group], token, status=SKIPPED,
                          last_error=f"no {self.channel.name} address: not set up for this account")
            return
        batches = [[r] for r in group] if len(group) <= allowance else [group]
        for batch in batches:
            self._send(account_id, batch, address, token)

    def _message(self, account_id: int, batch: list[Any]) -> OutgoingNotification:
        import json

        parts = []
        items: list[dict[str, Any]] = []
        for r in batch:
            its = json.loads(r.payload)
            items.extend(its)
            link = next((i["link"] for i in its if isinstance(i.get("link"), str)), r.link)
            parts.append((r.kind, its, link))
        rendered = render_many(parts, self.base_url, batch[-1].occurred_at)
        ids = tuple(int(r.id) for r in batch)
        return OutgoingNotification(
            account_id=account_id, channel=self.channel.name, delivery_ids=ids,
            notification_ids=tuple(int(r.notification_id) for r in batch), kinds=tuple(r.kind for r in batch),
            subject=rendered.subject, text=rendered.text, html=rendered.html, link=rendered.link,
            message_id=f"<tt-{self.channel.name}-{'.'.join(map(str, ids))[:120]}@tradertape.local>",
            items=tuple(items))

    def _send(self, account_id: int, batch: list[Any], address: str, token: str) -> None:
        d = notification_deliveries
        ids = [int(r.id) for r in batch]
        msg = self._message(account_id, batch)
        committed = False

        def commit() -> bool:
            nonlocal committed
            with self.db.write() as conn:
                done = conn.execute(sa.update(d).where(d.c.id.in_(ids), d.c.claim == token, d.c.status == SENDING)
                                    .values(status=SENT, sent_at=self.clock(), message_ref=msg.message_id,
                                            claim=None, claimed_until=None, attempts=d.c.attempts + 1,
                                            last_error=None)).rowcount
                if done != len(ids):  # another dispatcher took some over: send nothing
                    conn.rollback()
                    return False
            committed = True
            return True

        try:
            self.channel.send(msg, address, commit)
        except NotDelivered as exc:
            self._failed(ids, token, msg.message_id, exc.reason, exc.retry, max(int(r.attempts) for r in batch))
            return
        except Exception as exc:
            text = f"{type(exc).__name__}: {exc}"[:400]
            if committed:  # it may have gone out: never send it twice
                log.warning("notifier %s: deliveries %s in doubt after commit: %s", self.channel.name, ids, text)
                with self.db.write() as conn:
                    conn.execute(sa.update(d).where(d.c.id.in_(ids), d.c.message_ref == msg.message_id)
                                 .values(last_error=f"in doubt: {text}"))
                return
            self._failed(ids, token, msg.message_id, text, True, max(int(r.attempts) for r in batch))
            return
        if committed:
            self.sent_messages += 1

    def _failed(self, ids: list[int], token: str, message_id: str, reason: str, retry: bool, attempts: int) -> None:
        """Back to pending with backoff (or failed for good): from our claim, or from `sent` when the
        server refused the message after it was recorded sent."""
        d = notification_deliveries
        tried = attempts + 1
        now = self.clock()
        give_up = not retry or tried >= self.max_attempts
        mine = sa.or_(sa.and_(d.c.claim == token, d.c.status == SENDING),
                      sa.and_(d.c.status == SENT, d.c.message_ref == message_id))
        with self.db.write() as conn:
            conn.execute(sa.update(d).where(d.c.id.in_(ids), mine).values(
                status=FAILED if give_up else PENDING, attempts=tried, claim=None, claimed_until=None,
                sent_at=None, message_ref=None, last_error=reason[:500],
                not_before=now if give_up else now + _backoff(self.retry, tried)))
        log.info("notifier %s: deliveries %s not delivered (%s)%s", self.channel.name, ids, reason,
                 "; giving up" if give_up else "; will retry")

    def run(self, stop: threading.Event) -> None:
        self.loop.run(stop)
        close = getattr(self.channel, "close", None)
        if callable(close):
            close()


class TimedChecks:
    """Notifications no single event causes; each at most once per key (`dedupe_key`)."""

    def __init__(self, platform: Platform, channels: Sequence[str], clock: Callable[[], float] = time.time) -> None:
        self.platform = platform
        self.channels = list(channels)
        self.clock = clock
        s = platform.settings
        self.reminder = s.notify_expiry_reminder_minutes * 60
        self.loop = StepLoop("notifier-checks", self.step, idle_wait=s.notify_check_seconds)
        self.on_recorded: Callable[[], None] = lambda: None

    def step(self) -> int:
        now = self.clock()
        n = self.expiry_reminders(now)
        if n:
            self.on_recorded()
        return 0  # (always wait the interval)

    def expiry_reminders(self, now: float) -> int:
        """Signals still pending approval that expire within the reminder window: one reminder each
        account per run (a list), each signal reminded once."""
        s = notifier_signals
        iso = datetime.fromtimestamp(now, UTC).isoformat()
        made = 0
        with self.platform.db.write() as conn:
            rows = conn.execute(sa.select(s).where(s.c.pending.is_(True), s.c.expires_epoch > now,
                                                   s.c.expires_epoch <= now + self.reminder)
                                .order_by(s.c.account_id, s.c.signal_id)).all()
            for r in rows:
                if r.account_id is None:
                    continue
                nid = record(conn, self.channels, int(r.account_id), "signal_expiring",
                             {"signal_id": int(r.signal_id), "symbol": r.symbol, "portfolio": r.portfolio,
                              "expires_at": r.expires_at}, iso, None,
                             group_key=f"signal_expiring:{r.account_id}:{int(now // max(self.reminder, 1))}",
                             dedupe_key=f"signal_expiring:{r.signal_id}:{r.account_id}", now=now)
                if nid is not None:
                    made += 1
        return made


class Notifier:
    """The recorder, one dispatcher per channel and the timed checks, as threads of one process (the
    API process in the embedded default, `tradertape notifier` in production)."""

    def __init__(self, platform: Platform, source: EventSource, wake_channel: str | None = None,
                 channels: Sequence[NotificationChannel] | None = None) -> None:
        self.platform = platform
        self.channels = list(make_channels(platform) if channels is None else channels)
        names = [c.name for c in self.channels]
        self.projection = NotifierProjection(names)
        self.dispatchers = [Dispatcher(platform, c) for c in self.channels]
        self.runner = RecorderRunner(platform.db, [self.projection], source, wake_channel=wake_channel,
                                     on_recorded=self.wake_dispatchers)
        self.checks = TimedChecks(platform, names)
        self.checks.on_recorded = self.wake_dispatchers
        with schema_lock(platform.db):
            self.runner.create_tables()
            with platform.db.write() as conn:
                first = not read_tracking(conn, ["notifier"])
                head = platform.store.max_position() if first else 0
                self.projection.start_silently(conn, head)
        self._threads: list[threading.Thread] = []

    def wake_dispatchers(self) -> None:
        for d in self.dispatchers:
            d.wake()

    def notify(self, _position: int | None = None) -> None:
        """New events were saved in this process: record now."""
        self.runner.notify()

    def start(self, stop: threading.Event) -> None:
        def spawn(target: Callable[[threading.Event], None], name: str) -> None:
            t = threading.Thread(target=target, args=(stop,), name=name, daemon=True)
            t.start()
            self._threads.append(t)

        spawn(self.runner.run, "notifier")
        for d in self.dispatchers:
            spawn(d.run, f"notifier-{d.channel.name}")
        spawn(self.checks.loop.run, "notifier-checks")

    def join(self, timeout: float = 5.0) -> None:
        for t in self._threads:
            t.join(timeout)


def tracking_position(platform: Platform) -> int:
    with platform.db.read() as conn:
        v = conn.execute(sa.select(sa.func.max(projection_tracking.c.position))
                         .where(projection_tracking.c.projection == "notifier")).scalar()
    return int(v or 0)
