"""`domain.events.fast_init` and `maker`: the generated `__init__` and builder make exactly the events the
dataclass would (fields, defaults, equality, hash, repr, frozenness), for every registered event class."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from domain.events import _REGISTRY, fast_init, maker
from domain.portfolio.events import ExitSignalled, FillRecorded, PositionClosed
from domain.portfolio.state import ScanOutcome


def _values(cls: type) -> dict[str, Any]:
    """A distinct value for each field without a default."""
    return {f.name: f"v{i}" for i, f in enumerate(dataclasses.fields(cls)) if f.default is dataclasses.MISSING}


@pytest.mark.parametrize("name", sorted(_REGISTRY))
def test_maker_builds_what_the_class_builds(name: str) -> None:
    cls = _REGISTRY[name]
    kwargs = _values(cls)
    a, b = cls(**kwargs), maker(cls)(**kwargs)
    assert type(b) is cls
    assert a == b and hash(a) == hash(b) and repr(a) == repr(b)
    assert a.to_data() == b.to_data() == dataclasses.asdict(b)
    assert list(vars(b)) == [f.name for f in dataclasses.fields(cls)]  # every field set, defaults included
    field = dataclasses.fields(cls)[0].name if dataclasses.fields(cls) else None
    if field is not None:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(b, field, 1)


def test_positional_keyword_and_default_arguments() -> None:
    make = maker(FillRecorded)
    a = make(1, "2020-01-01", "buy", "ABC", 10, 101.5, 1.25, "t")
    b = make(signal_id=1, day="2020-01-01", side="buy", symbol="ABC", quantity=10, price=101.5, charges=1.25, at="t")
    assert a == b == FillRecorded(1, "2020-01-01", "buy", "ABC", 10, 101.5, 1.25, "t")
    closed = maker(PositionClosed)(position_id=1, day="d", exit_price=1.0, exit_reason="signal", exit_charges=0.0,
                                   realized_pnl=2.0, at="t")
    assert closed.signal_id is None and vars(closed)["signal_id"] is None
    assert maker(ExitSignalled)(position_id=3, day="d", at="t") == ExitSignalled(3, "d", "t")
    with pytest.raises(TypeError):
        make(signal_id=1)  # type: ignore[call-arg]
    assert maker(ScanOutcome)((1,), 2, 0, 0, 0) == ScanOutcome((1,), 2, 0, 0, 0, paused=False)


def test_classes_it_cannot_mirror_keep_their_init() -> None:
    @fast_init
    @dataclasses.dataclass(frozen=True)
    class WithFactory:
        items: list[int] = dataclasses.field(default_factory=list)

    assert maker(WithFactory) is WithFactory
    assert WithFactory().items == []
