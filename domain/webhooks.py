"""The Webhook aggregate: an inbound alert hook (TradingView or Chartink) that turns outside alerts into
signals of one of its owner's portfolios.

The hook's token is its credential (it is the last part of the URL the alert service posts to); only its
HMAC is kept, in the events, like a family invitation's. The token names the hook (`th_<id>_<random>`)
so that it is found without an index; the hash decides. Rotating the token replaces the hash at once;
deleting the hook makes every token of it unknown.

Every alert the hook accepts is recorded (`WebhookAlertReceived`, saved with the portfolio's signals in
one transaction) with its de-duplication key: the alert's own id, or a hash of its content. An alert
whose key the hook recorded within the de-duplication window is a repeat: it records nothing and gets
the first answer again. Keys are remembered for at most `MEMORY_SECONDS` (the longest window allowed).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from domain.aggregate import Aggregate, aggregate_uuid
from domain.errors import DomainError, NotFound
from domain.events import DomainEvent

SOURCES = ("tradingview", "chartink")
TOKEN_PREFIX = "th_"  # noqa: S105 (what every hook token starts with, not a secret)
MEMORY_SECONDS = 86_400  # keys older than this (relative to the newest alert) are forgotten
_TOKEN = re.compile(r"^th_([1-9][0-9]{0,18})_[A-Za-z0-9_-]{20,100}$")


def hook_id_of(token: str) -> int | None:
    """The hook a token names (None: not a hook token at all)."""
    found = _TOKEN.match(token)
    return int(found.group(1)) if found else None


def content_key(content: Any) -> str:
    """The de-duplication key of an alert without an id: a hash of its normalised content."""
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def _epoch(at: str) -> float:
    return datetime.fromisoformat(at).timestamp()


@dataclass(frozen=True)
class WebhookCreated(DomainEvent):
    hook_id: int
    account_id: int
    portfolio_id: int
    source: str
    name: str
    token_hash: str
    token_prefix: str
    at: str


@dataclass(frozen=True)
class WebhookTokenRotated(DomainEvent):
    token_hash: str
    token_prefix: str
    at: str


@dataclass(frozen=True)
class WebhookDeleted(DomainEvent):
    at: str


@dataclass(frozen=True)
class WebhookAlertReceived(DomainEvent):
    key: str  # "id:<alert id>" or "sha256:<content hash>"
    items: list[dict[str, Any]]  # [{symbol, action, price}] as received (normalised)
    signal_ids: list[int]  # entry signals generated (with auto-approve: placed at once)
    exit_signal_ids: list[int]  # exits of held positions ("sell" alerts)
    ignored: list[dict[str, Any]]  # [{symbol, action, reason}]: what the portfolio did not take
    at: str


@dataclass(frozen=True)
class Received:
    """An alert recorded earlier (for a repeat's answer)."""

    at: str
    signal_ids: tuple[int, ...]
    exit_signal_ids: tuple[int, ...]
    ignored: tuple[dict[str, Any], ...]


class Webhook(Aggregate):
    aggregate_type: ClassVar[str] = "Webhook"

    def __init__(self, aggregate_id: uuid.UUID) -> None:
        super().__init__(aggregate_id)
        self.hook_id = 0
        self.portfolio_id = 0
        self.source = ""
        self.name = ""
        self.token_hash = ""
        self.token_prefix = ""
        self.deleted = False
        self.alerts = 0
        self.recent: dict[str, Received] = {}  # in the order recorded (oldest first)

    @staticmethod
    def uuid_for(hook_id: int) -> uuid.UUID:
        return aggregate_uuid("webhook", hook_id)

    @classmethod
    def create(cls, hook_id: int, account_id: int, portfolio_id: int, source: str, name: str, token_hash: str,
               token_prefix: str, at: str) -> Webhook:
        if source not in SOURCES:
            raise DomainError(f"source must be one of {', '.join(SOURCES)}")
        name = name.strip()
        if not name:
            raise DomainError("name must not be empty")
        hook = cls(cls.uuid_for(hook_id))
        hook._record(WebhookCreated(hook_id, account_id, portfolio_id, source, name, token_hash, token_prefix, at))
        return hook

    def owned_by(self, account_id: int) -> Webhook:
        """The hook if `account_id` owns it and it was not deleted; otherwise 404 (existence never leaks)."""
        if self.deleted or self.account_id != account_id:
            raise NotFound(f"Hook {self.hook_id} not found")
        return self

    def accepts(self, token_hash: str) -> bool:
        """The token whose hash is `token_hash` is this hook's current one (and the hook is not deleted)."""
        return not self.deleted and hmac.compare_digest(self.token_hash, token_hash)

    def rotate(self, token_hash: str, token_prefix: str, at: str) -> None:
        self._record(WebhookTokenRotated(token_hash, token_prefix, at))

    def delete(self, at: str) -> None:
        self._record(WebhookDeleted(at))

    def earlier(self, key: str, now: str, window_seconds: float) -> Received | None:
        """The alert with this key recorded within `window_seconds` before `now`, if any."""
        seen = self.recent.get(key)
        if seen is None or _epoch(now) - _epoch(seen.at) > window_seconds:
            return None
        return seen

    def record_alert(self, key: str, items: list[dict[str, Any]], signal_ids: list[int], exit_signal_ids: list[int],
                     ignored: list[dict[str, Any]], at: str) -> None:
        if self.deleted:
            raise NotFound(f"Hook {self.hook_id} not found")
        self._record(WebhookAlertReceived(key, items, signal_ids, exit_signal_ids, ignored, at))

    # ------------------------------------------------------------------ mutators

    def when_WebhookCreated(self, e: WebhookCreated) -> None:
        self.hook_id = e.hook_id
        self.account_id = e.account_id
        self.portfolio_id = e.portfolio_id
        self.source = e.source
        self.name = e.name
        self.token_hash = e.token_hash
        self.token_prefix = e.token_prefix

    def when_WebhookTokenRotated(self, e: WebhookTokenRotated) -> None:
        self.token_hash = e.token_hash
        self.token_prefix = e.token_prefix

    def when_WebhookDeleted(self, e: WebhookDeleted) -> None:
        self.deleted = True
        self.token_hash = ""
        self.recent = {}

    def when_WebhookAlertReceived(self, e: WebhookAlertReceived) -> None:
        self.alerts += 1
        self.recent.pop(e.key, None)  # a key seen again past the window moves to the end
        self.recent[e.key] = Received(e.at, tuple(e.signal_ids), tuple(e.exit_signal_ids), tuple(e.ignored))
        horizon = _epoch(e.at) - MEMORY_SECONDS
        while self.recent:  # forget keys no window can reach any more (oldest first)
            oldest = next(iter(self.recent))
            if _epoch(self.recent[oldest].at) >= horizon:
                break
            del self.recent[oldest]
