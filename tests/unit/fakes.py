"""In-memory fakes of the command-side ports, for unit tests through the bus."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from commands.ports import CommandMeta, ConcurrencyConflict
from domain.aggregate import Aggregate
from domain.events import DomainEvent

A = TypeVar("A", bound=Aggregate)


class FakeStore:
    def __init__(self) -> None:
        self.streams: dict[uuid.UUID, list[DomainEvent]] = defaultdict(list)
        self.log: list[tuple[int, str, CommandMeta]] = []

    def load(self, cls: type[A], aggregate_id: uuid.UUID) -> A | None:
        events = self.streams.get(aggregate_id)
        return cls.rehydrate(aggregate_id, events) if events else None

    def save(self, aggregates: Sequence[Aggregate], meta: CommandMeta) -> int | None:
        staged: list[tuple[Aggregate, list[DomainEvent]]] = []
        for agg in aggregates:
            pending = agg.collect_events()
            if len(self.streams.get(agg.aggregate_id, [])) != agg.version - len(pending):
                raise ConcurrencyConflict(str(agg.aggregate_id))
            staged.append((agg, pending))
        for agg, pending in staged:
            self.streams[agg.aggregate_id].extend(pending)
            for e in pending:
                self.log.append((len(self.log) + 1, e.type, meta))
        return len(self.log) if staged and any(p for _, p in staged) else None

    def check_out(self, cls: type[A], aggregate_id: uuid.UUID) -> A | None:
        return self.load(cls, aggregate_id)  # every load replays: nothing is kept

    def check_in(self, aggregates: Sequence[Aggregate]) -> None:
        pass

    @contextmanager
    def reading(self, cls: type[A], aggregate_id: uuid.UUID) -> Iterator[A | None]:
        yield self.load(cls, aggregate_id)


class FakeIds:
    def __init__(self) -> None:
        self.n: dict[str, int] = defaultdict(int)

    def next_id(self, kind: str) -> int:
        self.n[kind] += 1
        return self.n[kind]


class FakeClock:
    def __init__(self) -> None:
        self.t = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.t


class FakeMailer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []

    def send(self, to: str, subject: str, body: str) -> None:
        self.sent.append((to, subject, body))


class FakePortfolios:
    def __init__(self) -> None:
        self.using: dict[int, int] = {}

    def active_portfolios_using(self, strategy_id: int) -> int:
        return self.using.get(strategy_id, 0)


def fake_deps() -> Any:
    from commands.uow import Deps

    class NoSecurity:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"security store not expected here ({name})")

    return Deps(store=FakeStore(), ids=FakeIds(), clock=FakeClock(), security=NoSecurity(),  # type: ignore[arg-type]
                mailer=FakeMailer(), passwords=None, token_hash=lambda t: t,  # type: ignore[arg-type]
                portfolio_usage=FakePortfolios())
