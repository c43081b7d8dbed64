"""The unit of work a handler runs in: loads aggregates, saves their events, remembers the position, and
hands the aggregates back to the store when it ends."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Self, TypeVar

from commands.brokers import BrokerSecrets, NoBrokerSecrets
from commands.imports_messages import RecordIndex
from commands.ports import (
    Clock,
    CommandMeta,
    EventStore,
    IdAllocator,
    Mailer,
    MarketData,
    OrderRouter,
    PaperAndAgentRouter,
    PasswordHasher,
    PortfolioUsage,
    SecurityStore,
    TokenHasher,
)
from domain.aggregate import SYSTEM_ACCOUNT_ID, Aggregate, IdSource
from domain.errors import DomainError, NotFound

A = TypeVar("A", bound=Aggregate)


@dataclass
class AuthPolicy:
    base_url: str = "http://127.0.0.1:8000"
    login_code_minutes: int = 15
    session_days: int = 30
    otp_max_attempts: int = 5
    link_requests_per_email: int = 5  # per rate window
    link_requests_per_ip: int = 30
    login_attempts_per_ip: int = 60
    rate_window_seconds: int = 900
    invitations_per_day: int = 20  # family invitations one account may send in 24 hours
    otp_failures_per_day: int = 20  # wrong sign-in codes one email may send in 24 hours
    admin_emails: tuple[str, ...] = ()


class _NoPortfolios:
    def active_portfolios_using(self, strategy_id: int) -> int:
        return 0


class _NoMarket:
    """Stands in until the composition root connects the bar store."""

    def __getattr__(self, name: str) -> object:
        raise DomainError("No market data is connected to this process; import or generate bars first")


@dataclass
class Deps:
    """Everything handlers may use; built once by the composition root."""

    store: EventStore
    ids: IdAllocator
    clock: Clock
    security: SecurityStore
    mailer: Mailer
    passwords: PasswordHasher
    token_hash: TokenHasher
    auth: AuthPolicy = field(default_factory=AuthPolicy)
    portfolio_usage: PortfolioUsage = field(default_factory=_NoPortfolios)
    market: MarketData = field(default_factory=_NoMarket)  # type: ignore[assignment]
    router: OrderRouter = field(default_factory=PaperAndAgentRouter)
    records: RecordIndex | None = None  # imports' duplicate pre-check (None: load each aggregate)
    secrets: BrokerSecrets = field(default_factory=NoBrokerSecrets)  # type: ignore[assignment]


class UnitOfWork:
    """One command's loads and saves, used as a context manager (the bus opens one per attempt).

    The aggregates it loads are checked out of the store (which may hand over an object kept from an
    earlier command, brought up to date: no other caller has it meanwhile) and are checked back in when
    the block ends, whether the handler finished or failed. Only those it can vouch for go back: each
    at the version it was loaded or last saved at, with nothing recorded since (the store, too, keeps
    only aggregates with no unsaved events). Everything about keeping aggregates stays between this
    class and the store: handlers and the domain only load, change and save."""

    def __init__(self, deps: Deps, meta: CommandMeta) -> None:
        self.deps = deps
        self.meta = meta
        self.position: int | None = None
        self.account_id: int | None = meta.account_id
        self.touched_accounts: set[int] = set()  # owners of the aggregates saved (Kafka partition keys)
        # what this unit checked out or saved (by object identity), with the version the store knows it at
        self._held: dict[int, tuple[Aggregate, int]] = {}

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        """Check in what was loaded or saved, on success and on failure alike: only the aggregates still at
        the version they were loaded or last saved at. A version that moved means unsaved events, or a
        mutator that failed half-way (the version is counted before it runs): that object stays out."""
        clean = [agg for agg, version in self._held.values() if agg.version == version and not agg.has_changes]
        self._held.clear()
        if clean:
            self.deps.store.check_in(clean)

    @property
    def ids(self) -> IdSource:
        """The platform's id sequences, for the domain methods that create signals and positions."""
        return self.deps.ids.next_id

    def load(self, cls: type[A], aggregate_id: uuid.UUID) -> A | None:
        agg = self.deps.store.check_out(cls, aggregate_id)
        if agg is not None:
            self._held[id(agg)] = (agg, agg.version)
        return agg

    def get(self, cls: type[A], aggregate_id: uuid.UUID, what: str) -> A:
        agg = self.load(cls, aggregate_id)
        if agg is None:
            raise NotFound(f"{what} not found")
        return agg

    def save(self, *aggregates: Aggregate) -> None:
        pos = self.deps.store.save(list(aggregates), self.meta)  # a conflict leaves their events unsaved
        for agg in aggregates:
            self._held[id(agg)] = (agg, agg.version)
        if pos is not None:
            self.position = pos
            self.touched_accounts.update(
                SYSTEM_ACCOUNT_ID if a.account_id is None else a.account_id for a in aggregates)
