"""The TelegramLink aggregate: which Telegram chat speaks for an account (one per account).

Linking: the account asks for a one-time code (its HMAC is kept, with an expiry); the person sends the bot
`/start CODE` from their chat; the code names the account (`L<account id>_<random>`, so no index is
needed), the hash decides, and a used or replaced code never works again. Only the linked chat may act for
the account; unlinking forgets the chat at once.

Buttons the bot sends (approve / reject a signal, place a portfolio's cart) carry a signed nonce; a pressed
button's nonce is recorded (`TelegramActionUsed`), so each button acts once. Nonces older than
`NONCE_SECONDS` are refused anyway, so only those younger are remembered.
"""

from __future__ import annotations

import hmac
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from domain.aggregate import Aggregate, aggregate_uuid
from domain.errors import DomainError
from domain.events import DomainEvent
from domain.text import safe_text

CODE_MINUTES = 15
NONCE_SECONDS = 7 * 86_400  # a button older than a week is refused (and its nonce forgotten)
_CODE = re.compile(r"^L([1-9][0-9]{0,18})_[A-Za-z0-9_-]{16,40}$")


def account_of_code(code: str) -> int | None:
    found = _CODE.match(code)
    return int(found.group(1)) if found else None


def _epoch(at: str) -> float:
    return datetime.fromisoformat(at).timestamp()


@dataclass(frozen=True)
class TelegramLinkCodeIssued(DomainEvent):
    code_hash: str
    expires_at: str
    at: str


@dataclass(frozen=True)
class TelegramLinked(DomainEvent):
    chat_id: int
    username: str
    at: str


@dataclass(frozen=True)
class TelegramUnlinked(DomainEvent):
    chat_id: int
    at: str


@dataclass(frozen=True)
class TelegramActionUsed(DomainEvent):
    nonce: str
    action: str  # approve | reject | place (the cart of portfolio_id)
    signal_id: int  # (0 for place)
    issued_at: str  # when the button was made (its nonce's time)
    at: str
    portfolio_id: int | None = None  # place: whose cart


class TelegramLink(Aggregate):
    aggregate_type: ClassVar[str] = "TelegramLink"

    def __init__(self, aggregate_id: uuid.UUID) -> None:
        super().__init__(aggregate_id)
        self.chat_id: int | None = None
        self.username = ""
        self.code_hash: str | None = None
        self.code_expires_at = ""
        self.used: dict[str, str] = {}  # nonce -> when its button was made (oldest first)

    @staticmethod
    def uuid_for(account_id: int) -> uuid.UUID:
        return aggregate_uuid("telegram_link", account_id)

    @classmethod
    def open(cls, account_id: int) -> TelegramLink:
        link = cls(cls.uuid_for(account_id))
        link.account_id = account_id
        return link

    def issue_code(self, code_hash: str, expires_at: str, at: str) -> None:
        """A new code; an earlier unused one stops working."""
        self._record(TelegramLinkCodeIssued(code_hash, expires_at, at))

    def link(self, code_hash: str, chat_id: int, username: str, at: str) -> None:
        if (self.code_hash is None or not hmac.compare_digest(self.code_hash, code_hash)
                or self.code_expires_at < at):
            raise DomainError("This link code is unknown, used or expired; ask TraderTape for a new one "
                              "(Settings -> Telegram)")
        self._record(TelegramLinked(chat_id, safe_text(username)[:64], at))  # a name from elsewhere: cleaned

    def unlink(self, at: str) -> bool:
        if self.chat_id is None:
            return False
        self._record(TelegramUnlinked(self.chat_id, at))
        return True

    def speaks_for(self, chat_id: int) -> bool:
        return self.chat_id is not None and self.chat_id == chat_id

    def use_nonce(self, nonce: str, action: str, signal_id: int, issued_at: str, at: str,
                  portfolio_id: int | None = None) -> None:
        if _epoch(at) - _epoch(issued_at) > NONCE_SECONDS:
            raise DomainError("This button is too old; send /pending for fresh ones")
        if nonce in self.used:
            raise DomainError("This button was used already")
        self._record(TelegramActionUsed(nonce, action, signal_id, issued_at, at, portfolio_id))

    # ------------------------------------------------------------------ mutators

    def when_TelegramLinkCodeIssued(self, e: TelegramLinkCodeIssued) -> None:
        self.code_hash = e.code_hash
        self.code_expires_at = e.expires_at

    def when_TelegramLinked(self, e: TelegramLinked) -> None:
        self.chat_id = e.chat_id
        self.username = e.username
        self.code_hash = None  # single use

    def when_TelegramUnlinked(self, e: TelegramUnlinked) -> None:
        self.chat_id = None
        self.username = ""

    def when_TelegramActionUsed(self, e: TelegramActionUsed) -> None:
        self.used[e.nonce] = e.issued_at
        horizon = _epoch(e.at) - NONCE_SECONDS
        while self.used:
            oldest = next(iter(self.used))
            if _epoch(self.used[oldest]) >= horizon:
                break
            del self.used[oldest]
