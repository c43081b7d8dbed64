"""Notification channels (the `NotificationChannel` port, commands/ports.py): email through the mailer.

Telegram and other channels plug in the same way (see the port's docstring)."""

from __future__ import annotations

import contextlib
import logging
import smtplib
import time
from collections.abc import Callable

import sqlalchemy as sa

from commands.ports import NotDelivered, OutgoingNotification
from infra.db import Database
from infra.mail import ConsoleMailer, MailRefused, SmtpMailer, rich_message
from projections.accounts import accounts

log = logging.getLogger(__name__)


class EmailChannel:
    """Email with a text and an HTML part. Over SMTP one connection is kept open between messages (the
    dispatcher's thread alone uses it); the message is committed as sent right before the final "."."""

    name = "email"

    def __init__(self, db: Database, mailer: SmtpMailer | ConsoleMailer) -> None:
        self.db = db
        self.mailer = mailer
        self._smtp: smtplib.SMTP | None = None
        self._used = 0.0  # when the open connection last carried a message
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

    def send(self, message: OutgoingNotification, address: str, commit: Callable[[], bool]) -> None:
        msg = rich_message(self.mailer.sender, address, message.subject, message.text, message.html,
                           message.message_id,
                           {"X-TraderTape-Notifications": ",".join(map(str, message.notification_ids))})
        if isinstance(self.mailer, ConsoleMailer):
            self.mailer.save_committed(msg, commit)
            return
        for fresh in (False, True):
            committed = False

            def once() -> bool:
                nonlocal committed
                committed = True
                return commit()

            try:
                reused = self._smtp is not None and not fresh
                smtp = self._connection() if not fresh else self._reconnect()
                self.mailer.send_committed(smtp, msg, once)
                return
            except MailRefused as exc:
                raise NotDelivered(str(exc)) from None
            except (OSError, smtplib.SMTPException) as exc:
                self.close()
                if committed:
                    raise
                if not reused or fresh:  # the server never got the final ".": nothing was delivered
                    raise NotDelivered(f"SMTP: {type(exc).__name__}: {exc}"[:300]) from None
                # a kept connection the server had closed meanwhile: once more on a new one

    def _connection(self) -> smtplib.SMTP:
        assert isinstance(self.mailer, SmtpMailer)
        if self._smtp is not None:
            if time.monotonic() - self._used < 5.0:  # in steady use: no NOOP round trip per message
                self._used = time.monotonic()
                return self._smtp
            try:
                if self._smtp.noop()[0] == 250:
                    self._used = time.monotonic()
                    return self._smtp
            except (OSError, smtplib.SMTPException):
                pass
            self.close()
        self._smtp = self.mailer.open()
        self._used = time.monotonic()
        return self._smtp

    def _reconnect(self) -> smtplib.SMTP:
        self.close()
        return self._connection()

    def close(self) -> None:
        if self._smtp is not None:
            with contextlib.suppress(Exception):
                self._smtp.close()
            self._smtp = None
