"""The notifier: records notifications from the event stream and sends them through the channels.

- The recorder is a projection runner (streams/runner.py) over its own source -- the store's log in the
  embedded default, the relay's Kafka topic in production -- applying `NotifierProjection` with its
  tracking row ("notifier") in the same transaction as the notifications and their deliveries (the
  outbox). A restart resumes after the last recorded event: nothing is recorded twice or skipped.
- One dispatcher thread per channel claims due deliveries (a lease, so two notifier processes never
  send the same one), and sends them through `notify_senders` sending threads (one connection each): the
  accounts of a claimed batch in parallel, one account's messages in order. A send records the delivery
  as sent right before its point of no return (`NotificationChannel`, commands/ports.py) and releases it
  when the server answers: killed before the record, it is sent again (the server never completed it);
  killed after it but before the answer, it is sent again marked as a possible repeat once the lease runs
  out (the record and the final SMTP "." are microseconds apart, so this is rare). A failed send is retried
  with exponential backoff and, after `notify_max_attempts`, shown as failed in the notification list.
- Per user and channel, at most `notify_rate_per_minute` messages a minute: when more are due than the
  allowance left, they go as one message with a list; past the limit they wait. Quiet hours (IST) hold
  email and chat messages until they end; the in-app list shows them at once.
- Timed checks (`TimedChecks`): signals about to expire while still pending approval, the agent
  offline in market hours, the Kite session (ends 06:00 IST) before the open, the daily digest.

Over 500 lines because the recorder, the dispatcher and the timed checks share the claim/lease and the
delivery states this module defines; the messages' wording is in projections/notifications.py and the
channels in infra/mail/.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from datetime import time as dtime
from typing import Any

import sqlalchemy as sa

from commands.ports import NotDelivered, NotificationChannel, OutgoingNotification
from domain.calendar import nse_calendar
from domain.money import format_inr, format_price
from domain.notifications import (
    IST,
    channel_on,
    default_preferences,
    ist,
    possible_repeat,
    quiet_until,
    render_many,
)
from domain.status import PositionStatus, SignalStatus
from infra.bootstrap import Platform, schema_lock
from infra.mail.channels import EmailChannel
from infra.mail.mailers import ConsoleMailer, SmtpMailer
from infra.store.db import agent_keys
from projections.base import projection_tracking, read_tracking
from projections.broker import connections
from projections.notifications import (
    FAILED,
    PENDING,
    SENDING,
    SENT,
    SKIPPED,
    NotifierProjection,
    notification_deliveries,
    notification_preferences,
    notifications,
    notifier_portfolios,
    notifier_signals,
    record,
)
from projections.portfolios.queries import list_portfolios, list_positions, list_signals
from projections.values import utc_epoch
from streams.loop import StepLoop, status_reporter
from streams.runner import ProjectionRunner
from streams.sources import EventSource, Item
from streams.telegram_channel import telegram_channel

log = logging.getLogger(__name__)

ChannelFactory = Callable[[Platform], NotificationChannel | None]
# Outer layers (the Telegram adapter) add theirs here; each returns None when its settings are absent.
CHANNEL_FACTORIES: list[ChannelFactory] = [telegram_channel]


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
    """The projection runner applying the notifier projection; tells the dispatchers after each batch it
    applied. Most events notify nobody and change none of its maps (strategies, ticks, ledger rows): a
    batch of only those is read past without a write transaction. Where it was read to is recorded with
    the next batch that applies something, when the stream is idle, or at the latest every
    READ_PAST_SECONDS; until then the position is this process's own, so a restart reads those events
    again and skips them again -- recording them is a no-op (Projection.apply), so nothing is recorded
    twice or missed."""

    READ_PAST_SECONDS = 2.0

    def __init__(self, *args: Any, on_recorded: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_recorded = on_recorded
        self._applies: frozenset[str] = frozenset().union(*(p.event_types for p in self.projections))
        self._read_past: dict[str, Item] = {}  # per shard: the last event read past, its position not recorded
        self._recorded_at = time.monotonic()
        self._applied = False  # the last step applied something
        self.loop = StepLoop("notifier", self.step, idle_wait=0.2 if self._listener is None else 0.5,
                             idle=None if self._listener is None else self._listener.wait,
                             report=status_reporter(self.db, "notifier"))

    def _combined(self) -> dict[str, tuple[int, int | None]]:
        combined = super()._combined()
        for shard, item in self._read_past.items():
            if item.envelope.position > combined.get(shard, (0, None))[0]:
                combined[shard] = (item.envelope.position, item.offset)
        return combined

    def _apply_batch(self, items: list[Item]) -> None:
        if any(i.envelope.type in self._applies for i in items):
            super()._apply_batch(items)  # the tracking of the events read past with it, in one transaction
            for i in items:
                self._read_past.pop(i.shard, None)
            self._recorded_at = time.monotonic()
            self._applied = True
            return
        for i in items:  # in order within a shard: the last one stays
            self._read_past[i.shard] = i
        if time.monotonic() - self._recorded_at >= self.READ_PAST_SECONDS:
            self._record_read_past()

    def _record_read_past(self) -> None:
        """Record the position of the events read past: their last ones applied (a no-op) with the tracking."""
        if self._read_past:
            super()._apply_batch(list(self._read_past.values()))
            self._read_past.clear()
        self._recorded_at = time.monotonic()

    def step(self) -> int:
        self._applied = False
        n = super().step()
        if not n:
            self._record_read_past()  # idle: nothing is held up by one small write now
        elif self._applied:
            self._on_recorded()
        return n


def _backoff(base: float, attempts: int) -> float:
    return float(min(base * (2 ** max(attempts - 1, 0)), 3600.0))


class Dispatcher:
    """Sends one channel's due deliveries (its own thread, claiming), through `notify_senders` sending
    threads: the accounts of a claimed batch in parallel, each account's messages in order by one of
    them. A channel keeps one connection per sending thread."""

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
        self._count_lock = threading.Lock()
        self.senders = s.notify_senders
        self._pool = ThreadPoolExecutor(self.senders, thread_name_prefix=f"notifier-{channel.name}-send")
        self.loop = StepLoop(f"notifier-{channel.name}", self.step, idle_wait=0.5,
                             report=status_reporter(self.db, f"notifier-{channel.name}"))

    def wake(self) -> None:
        self.loop.wake()

    def _claim(self, token: str, now: float) -> list[Any]:
        d, n = notification_deliveries, notifications
        # pending; or held by a sender whose lease ran out: before it recorded them sent, or after (in doubt:
        # sent again as a possible repeat) but before the server's answer released them
        takeable = sa.or_(d.c.status == PENDING, sa.and_(d.c.status.in_((SENDING, SENT)), d.c.claim.isnot(None),
                                                         d.c.claimed_until < now))
        due = sa.select(d.c.id).where(d.c.channel == self.channel.name, d.c.not_before <= now, takeable)
        with self.db.read() as conn:  # nothing due (most wake-ups and polls): no write transaction
            if conn.execute(due.limit(1)).first() is None:
                return []
        with self.db.write() as conn:
            ids = [r.id for r in conn.execute(due.order_by(d.c.id).limit(self.BATCH))]
            if not ids:
                return []
            conn.execute(sa.update(d).where(d.c.id.in_(ids), takeable).values(
                status=SENDING, claim=token, claimed_until=now + self.lease))
            return list(conn.execute(
                sa.select(d.c.id, d.c.account_id, d.c.attempts, d.c.notification_id, d.c.message_ref, d.c.sent_at,
                          n.c.kind, n.c.payload, n.c.link, n.c.occurred_at)
                .join(n, n.c.id == d.c.notification_id).where(d.c.claim == token).order_by(d.c.id)).all())

    def _release(self, ids: Sequence[int], token: str, **values: Any) -> None:
        d = notification_deliveries
        with self.db.write() as conn:
            conn.execute(sa.update(d).where(d.c.id.in_(list(ids)), d.c.claim == token, d.c.status == SENDING)
                         .values(claim=None, claimed_until=None, **values))

    def _recent(self, accounts: list[int], now: float) -> dict[int, tuple[int, float]]:
        """Per account: messages sent on this channel in the last minute, and the oldest one's time."""
        d = notification_deliveries
        with self.db.read() as conn:
            rows = conn.execute(sa.select(d.c.account_id, sa.func.count(sa.distinct(d.c.message_ref)),
                                          sa.func.min(d.c.sent_at)).where(
                d.c.account_id.in_(accounts), d.c.channel == self.channel.name, d.c.status == SENT,
                d.c.sent_at > now - 60).group_by(d.c.account_id)).all()
        return {int(r[0]): (int(r[1] or 0), float(r[2] or now)) for r in rows}

    def _preferences(self, accounts: list[int]) -> dict[int, dict[str, Any]]:
        p = notification_preferences
        with self.db.read() as conn:
            found = {int(r.account_id): json.loads(r.doc) for r in conn.execute(
                sa.select(p.c.account_id, p.c.doc).where(p.c.account_id.in_(accounts)))}
        return {a: found.get(a) or default_preferences() for a in accounts}

    def step(self) -> int:
        now = self.clock()
        token = uuid.uuid4().hex
        rows = self._claim(token, now)
        if not rows:
            return 0
        by_account: dict[int, list[Any]] = {}
        for r in rows:
            by_account.setdefault(int(r.account_id), []).append(r)
        accounts = sorted(by_account)
        prefs, recent = self._preferences(accounts), self._recent(accounts, now)
        # Each account's messages go in order by one sender; accounts are sent in parallel (`notify_senders`).
        work = [(account_id, group) for account_id, group in by_account.items()]
        list(self._pool.map(lambda job: self._account_safely(job[0], job[1], token, now, prefs[job[0]],
                                                             recent.get(job[0], (0, now))), work))
        return len(rows)

    def _account_safely(self, account_id: int, group: list[Any], token: str, now: float, prefs: dict[str, Any],
                        recent: tuple[int, float]) -> None:
        try:
            self._account(account_id, group, token, now, prefs, recent)
        except Exception:  # one account's trouble never stops the others'
            log.exception("notifier %s: deliveries of account %d failed", self.channel.name, account_id)
            self._release([r.id for r in group], token, status=PENDING, not_before=now + self.retry)

    def _account(self, account_id: int, group: list[Any], token: str, now: float, prefs: dict[str, Any],
                 recent: tuple[int, float]) -> None:
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
        sent, oldest = recent
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
        parts = []
        items: list[dict[str, Any]] = []
        for r in batch:
            its = json.loads(r.payload)
            items.extend(its)
            link = next((i["link"] for i in its if isinstance(i.get("link"), str)), r.link)
            parts.append((r.kind, its, link))
        rendered = render_many(parts, self.base_url, batch[-1].occurred_at)
        first_sent = [float(r.sent_at) for r in batch if r.message_ref is not None]  # (both set by one commit)
        if first_sent:  # recorded sent by a notifier that stopped before the server answered
            rendered = possible_repeat(rendered, datetime.fromtimestamp(min(first_sent), UTC).isoformat())
        ids = tuple(int(r.id) for r in batch)
        return OutgoingNotification(
            account_id=account_id, channel=self.channel.name, delivery_ids=ids,
            notification_ids=tuple(int(r.notification_id) for r in batch), kinds=tuple(r.kind for r in batch),
            subject=rendered.subject, text=rendered.text, html=rendered.html, link=rendered.link,
            message_id=f"<tt-{self.channel.name}-{'.'.join(map(str, ids))[:120]}@tradertape.local>",
            items=tuple(items), possible_repeat=bool(first_sent))

    def _send(self, account_id: int, batch: list[Any], address: str, token: str) -> None:
        d = notification_deliveries
        ids = [int(r.id) for r in batch]
        msg = self._message(account_id, batch)
        committed = False

        def commit(then: Callable[[], None] | None = None) -> bool:
            nonlocal committed

            def sent() -> None:
                nonlocal committed
                committed = True  # from here on it may have gone out: never send it again
                if then is not None:
                    then()

            with self.db.write() as conn:
                done = conn.execute(sa.update(d).where(d.c.id.in_(ids), d.c.claim == token, d.c.status == SENDING)
                                    .values(status=SENT, sent_at=self.clock(), message_ref=msg.message_id,
                                            claimed_until=self.clock() + self.lease, attempts=d.c.attempts + 1,
                                            last_error=None)).rowcount  # (still ours until the server answers)
                if done != len(ids):  # another dispatcher took some over: send nothing
                    conn.rollback()
                    return False
                self.db.commit_then(conn, sent)
            return True

        try:
            self.channel.send(msg, address, commit)
        except NotDelivered as exc:
            self._failed(ids, token, exc.reason, exc.retry, max(int(r.attempts) for r in batch))
            return
        except Exception as exc:
            text = f"{type(exc).__name__}: {exc}"[:400]
            if committed:  # it may or may not have arrived: sent again later, marked as a possible repeat
                tried = max(int(r.attempts) for r in batch) + 1
                again = tried < self.max_attempts
                wait = _backoff(self.retry, tried)
                error = (f"in doubt, sent again as a possible repeat after {wait:.0f} s: {text}" if again
                         else f"in doubt after {tried} attempts, not sent again: {text}")
                log.warning("notifier %s: deliveries %s %s", self.channel.name, ids, error)
                with self.db.write() as conn:  # ours: recorded sent, or still sending if the COMMIT itself failed
                    conn.execute(sa.update(d).where(d.c.id.in_(ids), d.c.claim == token)
                        .values(status=SENT, message_ref=msg.message_id, sent_at=sa.func.coalesce(
                            d.c.sent_at, self.clock()), claim=token if again else None,
                            claimed_until=self.clock() + wait if again else None, last_error=error[:500]))
                return
            self._failed(ids, token, text, True, max(int(r.attempts) for r in batch))
            return
        if committed:
            with self.db.write() as conn:  # the server answered: no longer in doubt
                conn.execute(sa.update(d).where(d.c.id.in_(ids), d.c.claim == token, d.c.status == SENT)
                             .values(claim=None, claimed_until=None))
            with self._count_lock:
                self.sent_messages += 1

    def _failed(self, ids: list[int], token: str, reason: str, retry: bool, attempts: int) -> None:
        """Back to pending with backoff (or failed for good): from our claim, sending or (the server refused the
        message after it was recorded sent) sent."""
        d = notification_deliveries
        tried = attempts + 1
        now = self.clock()
        give_up = not retry or tried >= self.max_attempts
        with self.db.write() as conn:
            conn.execute(sa.update(d).where(d.c.id.in_(ids), d.c.claim == token).values(
                status=FAILED if give_up else PENDING, attempts=tried, claim=None, claimed_until=None,
                sent_at=None, message_ref=None, last_error=reason[:500],
                not_before=now if give_up else now + _backoff(self.retry, tried)))
        log.info("notifier %s: deliveries %s not delivered (%s)%s", self.channel.name, ids, reason,
                 "; giving up" if give_up else "; will retry")

    def run(self, stop: threading.Event) -> None:
        self.loop.run(stop)
        self._pool.shutdown(wait=True)
        close = getattr(self.channel, "close", None)
        if callable(close):
            close()


class TimedChecks:
    """Notifications no single event causes; each at most once per key (`dedupe_key`), so a check that
    runs again (or in two notifier processes) records nothing twice."""

    def __init__(self, platform: Platform, channels: Sequence[str], clock: Callable[[], float] = time.time) -> None:
        self.platform = platform
        self.channels = list(channels)
        self.clock = clock
        s = platform.settings
        self.reminder = s.notify_expiry_reminder_minutes * 60
        self.offline = s.notify_agent_offline_minutes * 60
        self.kite_time = dtime.fromisoformat(s.notify_kite_reminder_time)
        self.digest_time = dtime.fromisoformat(s.notify_digest_time)
        self.calendar = nse_calendar()
        self.loop = StepLoop("notifier-checks", self.step, idle_wait=s.notify_check_seconds)
        self.on_recorded: Callable[[], None] = lambda: None

    def step(self) -> int:
        now = self.clock()
        n = self.expiry_reminders(now) + self.agent_offline(now) + self.kite_session(now) + self.daily_digest(now)
        if n:
            self.on_recorded()
        return 0  # (always wait the interval)

    def _trading(self, local: datetime) -> bool:
        return bool(self.calendar.is_trading_day(local.date()))

    def _record(self, conn: Any, account_id: int, kind: str, item: dict[str, Any], now: float, dedupe: str,
                group: str | None = None) -> int:
        iso = datetime.fromtimestamp(now, UTC).isoformat()
        return 0 if record(conn, self.channels, account_id, kind, item, iso, None, group_key=group,
                           dedupe_key=dedupe, now=now) is None else 1

    def expiry_reminders(self, now: float) -> int:
        """Signals still pending approval that expire within the reminder window: one reminder each
        account per run (a list), each signal reminded once."""
        s = notifier_signals
        made = 0
        with self.platform.db.write() as conn:
            rows = conn.execute(sa.select(s).where(s.c.pending.is_(True), s.c.expires_epoch > now,
                                                   s.c.expires_epoch <= now + self.reminder)
                                .order_by(s.c.account_id, s.c.signal_id)).all()
            for r in rows:
                if r.account_id is None:
                    continue
                made += self._record(conn, int(r.account_id), "signal_expiring",
                                     {"signal_id": int(r.signal_id), "symbol": r.symbol, "portfolio": r.portfolio,
                                      "expires_at": r.expires_at}, now,
                                     dedupe=f"signal_expiring:{r.signal_id}:{r.account_id}",
                                     group=f"signal_expiring:{r.account_id}:{int(now // max(self.reminder, 1))}")
        return made

    def _live_accounts(self, conn: Any) -> list[int]:
        p = notifier_portfolios
        return sorted({int(r[0]) for r in conn.execute(sa.select(p.c.account_id).where(
            p.c.mode == "live", p.c.account_id.is_not(None))).all()})

    def _live_accounts_now(self) -> list[int]:
        with self.platform.db.read() as conn:
            return self._live_accounts(conn)

    def agent_offline(self, now: float) -> int:
        """During NSE hours on a trading day: accounts with a live portfolio and an agent key whose agent
        has not called for `notify_agent_offline_minutes` (or never did) -- once per outage."""
        local = datetime.fromtimestamp(now, IST)
        if not (self._trading(local) and dtime(9, 15) <= local.time() <= dtime(15, 30)):
            return 0
        made = 0
        with self.platform.db.write() as conn:
            for account in self._live_accounts(conn):
                key = conn.execute(sa.select(agent_keys.c.last_used_at, agent_keys.c.created_at).where(
                    agent_keys.c.account_id == account, agent_keys.c.revoked_at.is_(None))).first()
                if key is None:
                    continue
                last = key.last_used_at
                if last is not None and now - float(last) < self.offline:
                    continue
                since = "never" if last is None else ist(datetime.fromtimestamp(float(last), UTC).isoformat())
                made += self._record(conn, account, "agent_offline", {
                    "title": "Your agent is offline",
                    "text": f"The agent has not called since {since} and the market is open: live orders are not "
                            "reaching Kite. Start the agent (tradertape agent run)."},
                    now, dedupe=f"agent_offline:{account}:{local.date()}:{last}")
        return made

    def kite_session(self, now: float) -> int:
        """On a trading day from `notify_kite_reminder_time` IST until the open: accounts with a live
        portfolio whose Kite session has ended (sessions end at 06:00 IST) -- once a day."""
        local = datetime.fromtimestamp(now, IST)
        if not (self._trading(local) and self.kite_time <= local.time() < dtime(9, 15)):
            return 0
        made = 0
        c = connections.c
        with self.platform.db.write() as conn:
            for account in self._live_accounts(conn):
                row = conn.execute(sa.select(c.connected, c.expires_at).where(c.account_id == account)).first()
                if row is not None and row.connected and row.expires_at and utc_epoch(row.expires_at) > now:
                    continue
                made += self._record(conn, account, "kite_session", {
                    "title": "Log in to Kite before the open",
                    "text": "Your Kite session ended at 06:00 IST: log in from the Broker page before 09:15 IST so "
                            "today's live orders reach Kite."}, now, dedupe=f"kite_session:{account}:{local.date()}")
        return made

    def daily_digest(self, now: float) -> int:
        """After `notify_digest_time` IST on a trading day: per account with portfolios, the day's and the
        total P&L (each portfolio's too), the open positions, and what is pending for tomorrow (signals
        waiting for approval, the cart, entries placed to fill at the open, exits signalled) -- once a day."""
        local = datetime.fromtimestamp(now, IST)
        if not (self._trading(local) and local.time() >= self.digest_time):
            return 0
        made = 0
        with self.platform.db.write() as conn:
            p = notifier_portfolios
            accounts = sorted({int(r[0]) for r in conn.execute(sa.select(p.c.account_id).where(
                p.c.account_id.is_not(None))).all()})
            for account in accounts:
                lines = digest_lines(conn, account)
                if not lines:
                    continue
                made += self._record(conn, account, "daily_digest",
                                     {"title": f"Daily digest for {local.day} {local:%b %Y}", "lines": lines},
                                     now, dedupe=f"daily_digest:{account}:{local.date()}")
        return made


DIGEST_ROWS = 30  # positions and pending items listed each; more are counted


def _more(total: int, shown: int, what: str) -> list[dict[str, Any]]:
    return [{"line": f"\u2026 and {total - shown} more {what} in the web app"}] if total > shown else []


def digest_lines(conn: Any, account: int) -> list[dict[str, Any]]:
    """The digest of one account's active and paused portfolios: lines, some of them headings
    (`"heading": true`); none when the account has no such portfolio."""
    rows, _ = list_portfolios(conn, account, None, 100, 0)
    if not rows:
        return []
    names = {int(pf["id"]): str(pf["name"]) for pf in rows}
    day = sum(float(pf["day_pnl"] or 0) for pf in rows)
    total = sum(float(pf["total_pnl"] or 0) for pf in rows)
    n = len(rows)
    lines: list[dict[str, Any]] = [
        {"line": f"P&L today {format_inr(day, sign=True)}, in total {format_inr(total, sign=True)} "
                 f"({n} portfolio{'s' if n != 1 else ''})"}]
    lines += [{"line": f"{pf['name']} ({pf['mode']}{', paused' if pf['status'] == 'paused' else ''}): "
                       f"equity {format_inr(pf['equity'])}, today {format_inr(pf['day_pnl'], sign=True)}, "
                       f"in total {format_inr(pf['total_pnl'], sign=True)} ({pf['return_pct']:+.2f}%)"}
              for pf in rows]
    held, held_n = list_positions(conn, account, None, PositionStatus.OPEN, DIGEST_ROWS, 0)
    held = [x for x in held if int(x["portfolio_id"]) in names]
    lines.append({"line": f"Open positions ({held_n})", "heading": True})
    lines += [{"line": f"{x['quantity']} {x['symbol']} at \u20b9{format_price(x['avg_price'])}, last "
                       f"\u20b9{format_price(x['last_price'])}: P&L {format_inr(x['unrealized_pnl'], sign=True)}; "
                       f"stop \u20b9{format_price(x['stop_loss'])}, target \u20b9{format_price(x['target'])}"
                       f"{' (exit at the open)' if x['exit_pending'] else ''} ({names[int(x['portfolio_id'])]})"}
              for x in held]
    lines += _more(held_n, len(held), "open positions")
    if not held_n:
        lines.append({"line": "No open positions."})
    waiting: list[dict[str, Any]] = []
    count = 0
    for status in (SignalStatus.PENDING_APPROVAL, SignalStatus.IN_CART, SignalStatus.PLACED):
        found, n_found = list_signals(conn, account, status=status, limit=DIGEST_ROWS)
        found = [x for x in found if int(x["portfolio_id"]) in names]
        count += n_found
        waiting += [{"line": _pending_line(x, names[int(x["portfolio_id"])])} for x in found]
    lines.append({"line": f"Pending for tomorrow ({count})", "heading": True})
    lines += waiting[:DIGEST_ROWS * 3]
    lines += _more(count, len(waiting), "pending items")
    if not count:
        lines.append({"line": "Nothing pending for tomorrow."})
    return lines


def _pending_line(sig: dict[str, Any], portfolio: str) -> str:
    what = f"{str(sig['side']).upper()} {sig['quantity']} {sig['symbol']}"
    price = sig.get("limit_price") or sig.get("reference_price")
    at = f" at \u20b9{format_price(price)}" if price else ""
    if sig["status"] == SignalStatus.PENDING_APPROVAL:
        return f"approve or reject: {what}{at}, expires {ist(sig.get('expires_at'))} ({portfolio})"
    if sig["status"] == SignalStatus.IN_CART:
        return f"in the cart, not placed yet: {what}{at} ({portfolio})"
    if sig["kind"] == "exit":
        return f"exit at the open: {what} ({portfolio})"
    return f"placed, to fill at the open: {what}{at} ({portfolio})"


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
