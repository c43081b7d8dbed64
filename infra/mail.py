"""Mailer adapters: SMTP for production and tests, the console plus .eml files in development."""

from __future__ import annotations

import logging
import re
import smtplib
import ssl
import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

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
