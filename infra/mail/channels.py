"""Notification channels (the `NotificationChannel` port, commands/ports.py): email through the mailer.

Telegram and other channels plug in the same way (see the port's docstring)."""

from __future__ import annotations

import contextlib
import logging
import smtplib
import threading
import time
from collections.abc import Callable

import sqlalchemy as sa

from commands.ports import Commit, NotDelivered, OutgoingNotification
from infra.mail.mailers import ConsoleMailer, MailRefused, SmtpMailer, rich_message
from infra.store.db import Database
from projections.accounts import accounts

log = logging.getLogger(__name__)


class _Connection(threading.local):
    smtp: smtplib.SMTP | None = None
    used = 0.0  # when the open connection last carried a message


class EmailChannel:
    """Email with a text and an HTML part. Over SMTP each sending thread of the dispatcher keeps its own
    connection open between messages; the message is recorded as sent and its final "." written in one step
    (`Database.commit_then`)."""

    name = "email"

    def __init__(self, db: Database, mailer: SmtpMailer | ConsoleMailer) -> None:
        self.db = db
        self.mailer = mailer
        self._local = _Connection()
        self._open: set[smtplib.SMTP] = set()  # every thread's connection (closed at the end)
        self._lock = threading.Lock()
        self._addresses: dict[int, tuple[str, float]] = {}

    def address(self, account_id: int) -> str | None:
        hit = self._addresses.get(account_id)
        if hit is not None and time.monotonic() - hit[1] < 60.0:  # (an address rarely changes: a minute's cache)
            return hit[0]
        with self.db.read() as conn:
            found = conn.execute(sa.select(accounts.c.email).where(accounts.c.id == account_id)).scalar_one_or_none()
        if found is not None:
            self._addresses[account_id] = (found, time.monotonic())
        return found

    def send(self, message: OutgoingNotification, address: str, commit: Commit) -> None:
        msg = rich_message(self.mailer.sender, address, message.subject, message.text, message.html,
                           message.message_id,
                           {"X-TraderTape-Notifications": ",".join(map(str, message.notification_ids)),
                            **({"X-TraderTape-Possible-Repeat": "yes"} if message.possible_repeat else {})})
        if isinstance(self.mailer, ConsoleMailer):
            self.mailer.save_committed(msg, commit)
            return
        for fresh in (False, True):
            committed = False

            def once(then: Callable[[], None] | None = None) -> bool:
                nonlocal committed
                committed = True
                return commit(then)

            try:
                reused = self._local.smtp is not None and not fresh
                smtp = self._connection() if not fresh else self._reconnect()
                self.mailer.send_committed(smtp, msg, once)
                return
            except MailRefused as exc:
                raise NotDelivered(str(exc)) from None
            except (OSError, smtplib.SMTPException) as exc:
                self._drop()
                if committed:
                    raise
                if not reused or fresh:  # the server never got the final ".": nothing was delivered
                    raise NotDelivered(f"SMTP: {type(exc).__name__}: {exc}"[:300]) from None
                # a kept connection the server had closed meanwhile: once more on a new one

    def _connection(self) -> smtplib.SMTP:
        assert isinstance(self.mailer, SmtpMailer)
        local = self._local
        if local.smtp is not None:
            if time.monotonic() - local.used < 5.0:  # in steady use: no NOOP round trip per message
                local.used = time.monotonic()
                return local.smtp
            try:
                if local.smtp.noop()[0] == 250:
                    local.used = time.monotonic()
                    return local.smtp
            except (OSError, smtplib.SMTPException):
                pass
            self._drop()
        smtp = self.mailer.open()
        with self._lock:
            self._open.add(smtp)
        local.smtp, local.used = smtp, time.monotonic()
        return smtp

    def _reconnect(self) -> smtplib.SMTP:
        self._drop()
        return self._connection()

    def _drop(self) -> None:
        """Close this thread's connection."""
        smtp, self._local.smtp = self._local.smtp, None
        if smtp is not None:
            with self._lock:
                self._open.discard(smtp)
            with contextlib.suppress(Exception):
                smtp.close()

    def close(self) -> None:
        """Close every thread's connection (the dispatcher has stopped sending)."""
        with self._lock:
            found, self._open = list(self._open), set()
        self._local.smtp = None
        for smtp in found:
            with contextlib.suppress(Exception):
                smtp.close()
