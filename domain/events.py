"""Domain events: small frozen dataclasses named in the past tense.

Every event class registers itself by name so the event store can turn the stored JSON back into
the same class. Event fields hold JSON-friendly values only (str, int, float, bool, None, lists and
dicts of those; dates as ISO strings), so serialisation is `dataclasses.asdict` and back.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

_REGISTRY: dict[str, type[DomainEvent]] = {}


@dataclasses.dataclass(frozen=True)
class DomainEvent:
    """Base of every event. `schema_version` grows when a class's fields change incompatibly."""

    schema_version: ClassVar[int] = 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__name__
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise TypeError(f"duplicate event type name {name!r}")
        _REGISTRY[name] = cls

    @property
    def type(self) -> str:
        return type(self).__name__

    def to_data(self) -> dict[str, Any]:
        """The event's fields as a JSON-ready dict."""
        return dataclasses.asdict(self)


def event_class(type_name: str) -> type[DomainEvent]:
    """The event class registered under `type_name` (KeyError if unknown)."""
    return _REGISTRY[type_name]


def event_from_data(type_name: str, data: dict[str, Any]) -> DomainEvent:
    """Rebuild an event from its type name and stored fields; unknown extra fields are ignored
    so older code can read events written by newer code."""
    cls = event_class(type_name)
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})

