"""A minimal event-sourced aggregate base, free of any persistence library.

An aggregate is rebuilt by applying its past events in order; a command method checks invariants and
calls `_record`, which applies the new event at once and queues it for the unit of work to save with
optimistic concurrency on (aggregate id, version).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Self

from domain.events import DomainEvent

_NAMESPACE = uuid.UUID("6f1c2f3e-8a34-4c1b-9a55-2d7f1c0e9b11")

# Owner of system aggregates (templates, catalogs): their events carry this account id / Kafka key.
SYSTEM_ACCOUNT_ID = 0

# Allocates a new integer id of a kind ("signal", "position", ...): what a domain method that creates
# numbered things is handed by its command (the platform's sequences), never kept on the aggregate.
IdSource = Callable[[str], int]


def aggregate_uuid(kind: str, int_id: int) -> uuid.UUID:
    """The aggregate id behind integer id `int_id` of kind `kind` (uuid5 over "kind:id")."""
    return uuid.uuid5(_NAMESPACE, f"{kind}:{int_id}")


class Aggregate:
    """Base class. Subclasses set `aggregate_type` and define `when_<EventName>(event)` mutators."""

    aggregate_type: ClassVar[str] = "Aggregate"
    cache_events: ClassVar[bool] = True  # the event store keeps decoded events (False: too large to keep)
    # event class -> its `when_<Event>` function, looked up once per class (see `_mutator`)
    _mutators: ClassVar[dict[type, Callable[[Any, Any], None]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._mutators = {}  # each class its own table: a subclass may override a mutator

    def __init__(self, aggregate_id: uuid.UUID) -> None:
        self.aggregate_id = aggregate_id
        self.version = 0
        self.account_id: int | None = None
        self._pending: list[DomainEvent] = []

    @classmethod
    def rehydrate(cls, aggregate_id: uuid.UUID, events: Iterable[DomainEvent]) -> Self:
        obj = cls(aggregate_id)
        obj.catch_up(events)
        return obj

    def catch_up(self, events: Iterable[DomainEvent]) -> None:
        """Apply stored events that follow this aggregate's version (in order)."""
        for event in events:
            self._apply(event)
            self.version += 1

    def _apply(self, event: DomainEvent) -> None:
        mutator = self._mutators.get(type(event))
        if mutator is None:
            mutator = self._mutator(type(event))
        mutator(self, event)

    @classmethod
    def _mutator(cls, event_type: type) -> Callable[[Any, Any], None]:
        mutator: Callable[[Any, Any], None] | None = getattr(cls, f"when_{event_type.__name__}", None)
        if mutator is None:
            raise TypeError(f"{cls.__name__} cannot apply {event_type.__name__}")
        cls._mutators[event_type] = mutator
        return mutator

    def _record(self, event: DomainEvent) -> None:
        try:
            mutator = self._mutators[type(event)]
        except KeyError:  # the class's first event of this type
            mutator = self._mutator(type(event))
        self.version += 1  # counted first: a mutator that fails half-way leaves a version no event reached
        mutator(self, event)  # as `_apply`, without a call more: thousands of events per backtest
        self._pending.append(event)

    @property
    def has_changes(self) -> bool:
        """Events recorded since the last save?"""
        return bool(self._pending)

    def pending_events(self) -> list[DomainEvent]:
        """The events recorded since the last save (kept until `collect_events`)."""
        return list(self._pending)

    def collect_events(self) -> list[DomainEvent]:
        """Hand over the events recorded since the last save (and forget them)."""
        events, self._pending = self._pending, []
        return events
