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


def aggregate_uuid(kind: str, int_id: int) -> uuid.UUID:
    """The aggregate id behind integer id `int_id` of kind `kind` (uuid5 over "kind:id")."""
    return uuid.uuid5(_NAMESPACE, f"{kind}:{int_id}")


# (aggregate class, event class) -> its `when_<Event>` function, looked up once per pair
_MUTATORS: dict[tuple[type, type], Callable[[Any, Any], None]] = {}


class Aggregate:
    """Base class. Subclasses set `aggregate_type` and define `when_<EventName>(event)` mutators."""

    aggregate_type: ClassVar[str] = "Aggregate"
    cache_events: ClassVar[bool] = True  # the event store keeps decoded events (False: too large to keep)

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
        key = (type(self), type(event))
        mutator = _MUTATORS.get(key)
        if mutator is None:
            mutator = getattr(key[0], f"when_{key[1].__name__}", None)
            if mutator is None:
                raise TypeError(f"{key[0].__name__} cannot apply {key[1].__name__}")
            _MUTATORS[key] = mutator
        mutator(self, event)

    def _record(self, event: DomainEvent) -> None:
        self._apply(event)
        self.version += 1
        self._pending.append(event)

    @property
    def has_changes(self) -> bool:
        """Events recorded since the last save?"""
        return bool(self._pending)

    def detach(self) -> None:
        """Drop what a command attached for its own use (an id source, say) before the store keeps this
        object for later commands: a kept aggregate must be the same as one rebuilt from its events."""

    def pending_events(self) -> list[DomainEvent]:
        """The events recorded since the last save (kept until `collect_events`)."""
        return list(self._pending)

    def collect_events(self) -> list[DomainEvent]:
        """Hand over the events recorded since the last save (and forget them)."""
        events, self._pending = self._pending, []
        return events
