"""Ports: what the command handlers need from the outside world, as Protocols."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from domain.aggregate import Aggregate
from domain.sizing import Candidate

A = TypeVar("A", bound=Aggregate)


@dataclass(frozen=True)
class CommandMeta:
    """Who issued a command and under which request: recorded with every event it causes."""

    actor: str  # "user:7", "agent:zt_ab12", "scheduler", "system"
    request_id: str | None = None
    account_id: int | None = None
    correlation_id: str | None = None
    idempotency_key: str | None = None  # the request's Idempotency-Key (a retry looks for its events)


class ConcurrencyConflict(Exception):
    """Another command saved the same aggregate version first."""


class EventStore(Protocol):
    """Loads aggregates from their events and saves new events atomically with optimistic concurrency.

    A store may keep built aggregates between commands, so that a command on a long-lived one replays only
    the events stored since. It hands them out only through an explicit check-out: `check_out` (the unit of
    work, which checks them back in when it ends) or `reading` (a reader outside a command, for one block)."""

    def check_out(self, cls: type[A], aggregate_id: uuid.UUID) -> A | None:
        """The aggregate, up to date, for the caller alone (no other caller is handed the same object until
        it is checked in); maybe one kept from an earlier command."""
        ...

    def check_in(self, aggregates: Sequence[Aggregate]) -> None:
        """Hand back checked-out (or saved) aggregates the caller changed only through events it saved: the
        store may give them to a later `check_out` (it drops any with unsaved events)."""
        ...

    def reading(self, cls: type[A], aggregate_id: uuid.UUID) -> AbstractContextManager[A | None]:
        """The aggregate (or None), checked out for reading inside the block and checked in when it ends:
        for readers outside a command, which change nothing."""
        ...

    def save(self, aggregates: Sequence[Aggregate], meta: CommandMeta) -> int | None:
        """Save every pending event of `aggregates` in one transaction; returns the last position
        (None when nothing was pending); raises ConcurrencyConflict on a version clash."""
        ...


class IdAllocator(Protocol):
    """Allocates the integer ids the API shows, from a sequence per kind in the store."""

    def next_id(self, kind: str) -> int: ...


class Clock(Protocol):
    def now(self) -> datetime: ...


class Mailer(Protocol):
    """Sends one plain-text email."""

    def send(self, to: str, subject: str, body: str) -> None: ...


class PasswordHasher(Protocol):
    def hash(self, password: str) -> str: ...

    def verify(self, password_hash: str, password: str) -> bool: ...

    def dummy_verify(self) -> None:
        """Spend the time of a verification, so unknown accounts answer as slowly as known ones."""
        ...


class TokenHasher(Protocol):
    """Keyed hash of bearer secrets (session tokens, login links, OTPs, agent keys); only hashes are stored."""

    def __call__(self, token: str) -> str: ...


class SecurityStore(Protocol):
    """Plain tables for ephemeral security records and secrets (not events)."""

    def rate_hit(self, key: str, window_seconds: int, limit: int, now: datetime) -> bool:
        """Record one attempt under `key`; False when more than `limit` fell in the window."""
        ...

    def rate_count(self, key: str, window_seconds: int, now: datetime) -> int:
        """How many attempts under `key` fell in the window (recording none)."""
        ...

    def claim_email(self, email: str, account_id: int) -> int:
        """Map `email` to `account_id` unless it is mapped already; returns the mapped id."""
        ...

    def account_id_for_email(self, email: str) -> int | None: ...

    def create_login_code(self, email: str, token_hash: str, otp_hash: str, expires_at: datetime,
                          now: datetime) -> None: ...

    def use_login_token(self, email: str, token_hash: str, now: datetime) -> bool: ...

    def use_login_otp(self, email: str, otp_hash: str, now: datetime, max_attempts: int) -> str:
        """"ok", "wrong", "locked" (too many wrong tries) or "none" (no live code)."""
        ...

    def create_session(self, account_id: int, token_hash: str, expires_at: datetime, now: datetime) -> None: ...

    def revoke_session(self, token_hash: str, now: datetime) -> int | None: ...

    def password_hash(self, account_id: int) -> str | None: ...

    def set_password_hash(self, account_id: int, password_hash: str, now: datetime) -> None: ...

    def revoke_account_sessions(self, account_id: int, now: datetime, keep_hash: str | None = None,
                                id_prefixes: Sequence[str] | None = None) -> list[str]:
        """Revoke the account's live sessions (all but `keep_hash`, or those whose token hash starts with one
        of `id_prefixes`); returns the revoked token hashes."""
        ...

    def set_agent_key(self, account_id: int, prefix: str, key_hash: str, now: datetime) -> None: ...

    def revoke_agent_key(self, account_id: int, now: datetime) -> bool: ...


class PortfolioUsage(Protocol):
    """How many active (not retired) portfolios use a strategy."""

    def active_portfolios_using(self, strategy_id: int) -> int: ...


class BacktestRunner(Protocol):
    """Runs one prepared backtest (`backtest.runner.plan_run`'s plain arguments) away from the caller's thread,
    in a worker process: only plain values cross, never bar matrices."""

    def submit(self, plan: Mapping[str, Any]) -> Future[dict[str, Any]]:
        """The run's result (summary, trades, equity curve, ...) when it is done."""
        ...


class BacktestArchive(Protocol):
    """Where a run's detail (per-trade rows, equity curve, refused entries) is kept, apart from its event."""

    def write(self, trades: list[dict[str, Any]], equity_curve: list[dict[str, Any]],
              refused_entries: list[dict[str, Any]] | None = None) -> str:
        """Store one run's detail whole (a reader never sees half of it); returns its reference."""
        ...

    def read(self, ref: str) -> dict[str, list[dict[str, Any]]]: ...

    def delete(self, ref: str) -> None: ...


class ClockReads(Protocol):
    """Where the market clock finds its work (the read models; each answer is checked against the aggregate
    or by the command before anything is done)."""

    def active_portfolios(self) -> list[tuple[int, str | None]]:
        """(portfolio_id, last processed day) of every active or paused portfolio, by id."""
        ...

    def overdue_signals(self, moment: str) -> list[tuple[int, int]]:
        """(portfolio_id, signal_id) of pending or in-cart signals whose `expires_at` lies before `moment`
        (an ISO instant), by signal id."""
        ...


@dataclass(frozen=True)
class ScanResult:
    """A strategy evaluated at one day's close: entry candidates and the held symbols whose exit rules fired."""

    day: str
    candidates: list[Candidate]
    exits: dict[str, str]  # symbol -> the exit rule values that fired


class MarketData(Protocol):
    """The stored daily bars, as the live side sees them (implemented over the Parquet bar store)."""

    def latest_day(self) -> str | None:
        """The last trading day with stored bars (None when nothing is stored)."""
        ...

    def trading_days(self, after: str, until: str) -> list[str]:
        """Stored trading days d with after < d <= until, in order."""
        ...

    def check_universe(self, name: str) -> None:
        """DomainError when `name` is not a known universe with stored bars."""
        ...

    def warmup_start(self, day: str) -> str:
        """Where indicator warm-up starts for a portfolio deployed on `day` (as a backtest from `day`)."""
        ...

    def bars_on(self, day: str, symbols: Sequence[str]) -> dict[str, tuple[float, float, float, float]]:
        """(open, high, low, close) of `symbols` that traded on `day`."""
        ...

    def last_prices(self, symbols: Sequence[str], day: str) -> dict[str, float]:
        """The latest close on or before `day` of each symbol that has one."""
        ...

    def real_marks(self, symbols: Sequence[str], day: str) -> dict[str, tuple[float, str]]:
        """(close, its date) of each of `symbols` with real prices (imported, not synthetic demo history):
        its latest real close on or before `day`. Only these may value a user's real holdings."""
        ...

    def sectors(self, universe: str, symbols: Sequence[str]) -> dict[str, str]:
        """The sector of each of `symbols` that is a member of `universe` (others are absent)."""
        ...

    def scan(self, strategy: Mapping[str, Any], universe: str, anchor: str, day: str) -> ScanResult:
        """Evaluate `strategy` over `universe` with bars from `anchor` to `day` (nothing later)."""
        ...


class OrderRouter(Protocol):
    """Where a placed order goes: the paper broker fills it from the bars; live orders wait for the agent."""

    def route(self, mode: str, account_id: int, portfolio_id: int, signal_id: int) -> tuple[str | None, str | None]:
        """(order_id, gtt_id) for the order; (None, None) when it is queued for the agent."""
        ...


class PaperAndAgentRouter:
    """Paper orders get simulated GTT ids (the Portfolio's fill model fills them on the next bars); live
    orders stay queued (status `placed` without a gtt_id) until the agent reports them."""

    def route(self, mode: str, account_id: int, portfolio_id: int, signal_id: int) -> tuple[str | None, str | None]:
        if mode == "live":
            return None, None
        return None, f"paper-gtt-{signal_id}"


# --------------------------------------------------------------------------------------- notifications


@dataclass(frozen=True)
class OutgoingNotification:
    """One message a notification channel sends: a single notification, or several of one account merged
    into one message (batching, the per-user rate limit). Built by the notifier's dispatcher
    (streams/notifier.py) from the recorded notifications (projections/notifications.py)."""

    account_id: int
    channel: str
    delivery_ids: tuple[int, ...]  # the (notification, channel) deliveries this message carries
    notification_ids: tuple[int, ...]
    kinds: tuple[str, ...]
    subject: str
    text: str  # plain text (email's text part, a chat message)
    html: str  # an HTML document (email's HTML part)
    link: str  # absolute URL into the web app
    message_id: str  # stable for these deliveries: a resend carries the same identity
    items: tuple[dict[str, Any], ...] = ()  # the notifications' items (e.g. signal ids, for action buttons)
    possible_repeat: bool = False  # sent again after a stop between "recorded sent" and the server's answer


class NotDelivered(Exception):
    """Raised by a channel when it KNOWS the message did not reach the recipient (the server refused it,
    the connection failed before the point of no return). `retry`: worth trying again later (with
    backoff); False: give up at once (e.g. the chat blocked the bot). The delivery stays visible in the
    notification list with this reason."""

    def __init__(self, reason: str, retry: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry


class Commit(Protocol):
    """Records a notification's delivery as sent; `then` (if given) is called the moment that is durable."""

    def __call__(self, then: Callable[[], None] | None = None) -> bool: ...


class NotificationChannel(Protocol):
    """A way to reach a user (email, Telegram, ...). How to add one:

    1. Implement this protocol (an adapter in `infra/`, e.g. `infra/mail/channels.py`'s EmailChannel):
       `name` (also the key in the user's preferences: add it to `domain.notifications.CHANNELS`),
       `address(account_id)` and `send(message, address, commit)`.
    2. Register it where the notifier is built (`streams.notifier.make_channels`), usually only when its
       settings are present. From then on the notifier records a delivery for that channel for every
       notification whose kind the user switched on for it, and one dispatcher thread per channel sends
       them: a slow or failing channel delays neither the others nor commands and projections.

    Delivery guarantee (each (event, channel) at most once, never lost): `send` must call `commit()`
    exactly once, immediately before the step that cannot be taken back (SMTP: the final "." that makes
    the server accept the message; an HTTP API: the request that posts the message), and must abort
    without delivering when `commit()` returns False (another dispatcher took the delivery over).
    `commit()` records the delivery as sent in the database, still held by the sender; `send` returning
    normally (the server answered) releases it. A process killed before `commit()` leaves the delivery to
    be sent again as if new; one killed after it, before `send` returned, leaves it in doubt (the server may
    or may not have it): once the sender's lease runs out it is sent again marked as a possible repeat
    (`possible_repeat`, with the same message id), never silently lost. A step that is one short write
    (SMTP's ".") is passed as `commit(then)`: it is taken inside the commit, microseconds after the record
    became durable (`Database.commit_then`), so a repeat of a message that did arrive is rare. Raise
    `NotDelivered` for a known failure before or after `commit()` (it is retried with backoff); any other
    exception after `commit()` leaves it in doubt too (the error shown), sent again marked as a
    possible repeat after the retry backoff."""

    name: str

    def address(self, account_id: int) -> str | None:
        """Where `account_id` receives this channel (an email address, a chat id), or None when the
        account has not set it up (the delivery is then skipped, shown as such)."""
        ...

    def send(self, message: OutgoingNotification, address: str, commit: Commit) -> None: ...
