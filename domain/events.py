"""Domain events: small frozen dataclasses named in the past tense.

Every event class registers itself by name so the event store can turn the stored JSON back into
the same class. Event fields hold JSON-friendly values only (str, int, float, bool, None, lists and
dicts of those; dates as ISO strings), so serialisation is `dataclasses.asdict` and back.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, TypeVar

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


_T = TypeVar("_T")
_set_attr = object.__setattr__


def fast_init(cls: type[_T]) -> type[_T]:
    """Give a frozen dataclass event an `__init__` that stores all its fields in one step -- one dict built
    in C, set as the instance's `__dict__` -- instead of one `object.__setattr__` call per field, as the
    dataclass's own `__init__` does. Same signature, defaults, equality, hash, repr and frozenness, about
    twice as fast to build: it matters for events recorded by the ten thousand in one backtest. Apply it
    above `@dataclass(frozen=True)`. Classes it cannot mirror exactly (default factories, `__post_init__`,
    keyword-only or init=False fields, slots) keep the dataclass's `__init__`."""
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    names = [f.name for f in fields]
    if (any(f.default_factory is not dataclasses.MISSING or not f.init or f.kw_only for f in fields)
            or hasattr(cls, "__post_init__") or "__slots__" in cls.__dict__
            or any(n in ("self", "_set_attr") or n.startswith("_default_") for n in names)):
        return cls
    namespace: dict[str, Any] = {"_set_attr": _set_attr}
    params = []
    for f in fields:
        if f.default is dataclasses.MISSING:
            params.append(f.name)
        else:
            namespace[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
    items = ", ".join(f"{n!r}: {n}" for n in names)
    source = f"def __init__(self, {', '.join(params)}):\n    _set_attr(self, '__dict__', {{{items}}})\n"
    # code generated from the class's own field names, as dataclasses itself does
    exec(source, namespace)  # noqa: S102
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    cls.__init__ = init  # type: ignore[method-assign]
    return cls


def event_class(type_name: str) -> type[DomainEvent]:
    """The event class registered under `type_name` (KeyError if unknown)."""
    return _REGISTRY[type_name]


def event_from_data(type_name: str, data: dict[str, Any]) -> DomainEvent:
    """Rebuild an event from its type name and stored fields; unknown extra fields are ignored
    so older code can read events written by newer code."""
    cls = event_class(type_name)
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})

