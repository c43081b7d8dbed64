"""Ports: what the command handlers need from the outside world, as Protocols."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
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
    """Loads aggregates from their events and saves new events atomically with optimistic concurrency."""

    def load(self, cls: type[A], aggregate_id: uuid.UUID) -> A | None:
        """The aggregate, for the caller alone: no other caller is ever handed the same object."""
        ...

    def save(self, aggregates: Sequence[Aggregate], meta: CommandMeta) -> int | None:
        """Save every pending event of `aggregates` in one transaction; returns the last position
        (None when nothing was pending); raises ConcurrencyConflict on a version clash."""
        ...

    def release(self, aggregates: Sequence[Aggregate]) -> None:
        """The caller is done with these loaded (or saved) aggregates and changed them only through
        events it saved: the store may hand them to a later `load` instead of rebuilding them."""
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

    def real_symbols(self, symbols: Sequence[str]) -> set[str]:
        """Those of `symbols` whose stored bars are real prices (imported), not synthetic demo history:
        only these may value a user's real holdings."""
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
