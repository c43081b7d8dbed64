"""Mailer adapters: SMTP for production and tests, the console plus .eml files in development."""

from __future__ import annotations

import logging
import re
import smtplib
import ssl
import uuid
from datetime import UTC, datetime
from email.charset import Charset
from email.header import Header
from email.message import EmailMessage, Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, cast
from urllib.parse import parse_qs, unquote, urlparse

if TYPE_CHECKING:
    from commands.ports import Commit

log = logging.getLogger(__name__)


def _message(sender: str, to: str, subject: str, body: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = make_msgid(domain="tradertape.local")
    # 7bit/8bit, never quoted-printable or base64: a link copied out of the raw message (a saved .eml, a
    # mail log) must be the link, not one broken by "=" soft line breaks. Lines stay far below 998 bytes.
    msg.set_content(body, charset="utf-8", cte="7bit" if body.isascii() else "8bit")
    return msg


_UTF8_8BIT = Charset("utf-8")
_UTF8_8BIT.body_encoding = None  # type: ignore[assignment]  # (allowed: 8bit bodies; links stay whole)


def rich_message(sender: str, to: str, subject: str, text: str, html: str, message_id: str | None = None,
                 headers: dict[str, str] | None = None) -> Message:
    """A text part and an HTML alternative (notifications), 8bit UTF-8. `message_id`: a stable identity (a
    message sent again carries the same one, which mail clients show once). Built with the email package's
    compat32 classes: four times cheaper than the modern policy's header objects, which a notifier sending
    hundreds a minute notices."""
    msg = MIMEMultipart("alternative")
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject if subject.isascii() else Header(subject, "utf-8").encode()
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = message_id or make_msgid(domain="tradertape.local")
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.attach(MIMEText(text, "plain", cast(str, _UTF8_8BIT)))  # (a Charset is accepted: the stub says str)
    msg.attach(MIMEText(html, "html", cast(str, _UTF8_8BIT)))
    return msg


def _wire(msg: Message) -> bytes:
    """The message as DATA carries it: CRLF line ends, leading dots doubled, ending with CRLF (the
    final "." is sent separately)."""
    raw = re.sub(rb"\r?\n", b"\r\n", msg.as_bytes())
    raw = re.sub(rb"(?m)^\.", b"..", raw)
    return raw if raw.endswith(b"\r\n") else raw + b"\r\n"


class MailRefused(Exception):
    """The SMTP server answered an error: the message was not accepted."""


_LINK = re.compile(r"https?://\S+")
_CODE = re.compile(r"\bcode:?\s*(\d{6})\b")


def console_summary(subject: str, body: str) -> str:
    """The link(s) and the code of an email, one per line, for a terminal (nothing else to copy around)."""
    lines = [f"  link: {url}" for url in _LINK.findall(body)]
    code = _CODE.search(subject) or _CODE.search(body)
    if code:
        lines.append(f"  code: {code.group(1)}")
    return "\n".join(lines)


class SmtpMailer:
    """smtp://user:pass@host:port (plain; add ?starttls=1 to upgrade) or smtps://host:port (implicit TLS)."""

    def __init__(self, url: str, sender: str, timeout: float = 10.0) -> None:
        u = urlparse(url)
        if u.scheme not in ("smtp", "smtps"):
            raise ValueError(f"SMTP URL must start with smtp:// or smtps://, got {url!r}")
        self.host = u.hostname or "127.0.0.1"
        self.port = u.port or (465 if u.scheme == "smtps" else 25)
        self.implicit_tls = u.scheme == "smtps"
        self.starttls = parse_qs(u.query).get("starttls", ["0"])[0] in ("1", "true", "yes")
        self.username = unquote(u.username) if u.username else None
        self.password = unquote(u.password) if u.password else None
        self.sender = sender
        self.timeout = timeout

    def send(self, to: str, subject: str, body: str) -> None:
        msg = _message(self.sender, to, subject, body)
        smtp: smtplib.SMTP
        if self.implicit_tls:
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        with smtp:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(msg)


    def open(self) -> smtplib.SMTP:
        smtp: smtplib.SMTP
        if self.implicit_tls:
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        smtp.ehlo()
        if self.starttls:
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if self.username:
            smtp.login(self.username, self.password or "")
        return smtp

    def send_committed(self, smtp: smtplib.SMTP, msg: Message, commit: Commit) -> bool:
        """Send `msg` over an open connection, the final "." that makes the server accept it handed to
        `commit(then)` to write the moment the delivery is recorded as sent. If `commit` returns False the
        transaction is abandoned (no final ".": nothing is delivered) and False returned. A process killed
        before the record is durable leaves an unfinished transaction the server discards; one killed after
        it, a "." already written (or, in the microseconds between, none: the one window left). Raises
        MailRefused when the server refuses."""
        to = str(msg["To"])
        code, resp = smtp.mail(parseaddr(self.sender)[1] or self.sender)
        if code != 250:
            smtp.rset()
            raise MailRefused(f"MAIL FROM refused: {code}")
        code, resp = smtp.rcpt(to)
        if code not in (250, 251):
            smtp.rset()
            raise MailRefused(f"recipient refused: {code}")
        code, resp = smtp.docmd("DATA")
        if code != 354:
            smtp.rset()
            raise MailRefused(f"DATA refused: {code}")
        smtp.send(_wire(msg))
        sock = smtp.sock
        if sock is None:  # closed under us: nothing was accepted (the channel retries on a new connection)
            raise smtplib.SMTPServerDisconnected("the SMTP connection is closed")
        if not commit(lambda: sock.sendall(b".\r\n")):
            smtp.close()  # no final ".": the server drops the transaction
            return False
        code, resp = smtp.getreply()
        if code != 250:
            raise MailRefused(f"message refused: {code} {resp[:200]!r}")
        return True


class ConsoleMailer:
    """Development: prints each email and keeps a copy as an .eml file under `mail_dir`."""

    def __init__(self, mail_dir: Path, sender: str) -> None:
        self.mail_dir = mail_dir
        self.sender = sender

    def send(self, to: str, subject: str, body: str) -> None:
        msg = _message(self.sender, to, subject, body)
        self.mail_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        path = self.mail_dir / f"{stamp}-{uuid.uuid4().hex[:8]}.eml"
        path.write_bytes(bytes(msg))
        summary = console_summary(subject, body)
        print(f"\n--- email to {to} (saved to {path}) ---\nSubject: {subject}\n\n{body}--- end of email ---\n"
              + (f"{summary}\n" if summary else ""), flush=True)
        log.info("email to %s saved to %s", to, path)

    def save_committed(self, msg: Message, commit: Commit) -> bool:
        """Development: record it sent, then keep the message as an .eml file."""
        if not commit():
            return False
        self.mail_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        path = self.mail_dir / f"{stamp}-{uuid.uuid4().hex[:8]}.eml"
        path.write_bytes(bytes(msg))
        print(f"\n--- notification email to {msg['To']} (saved to {path}): {msg['Subject']}", flush=True)
        return True
