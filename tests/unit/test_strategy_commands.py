"""Strategy commands through the message bus, with in-memory fakes."""

from __future__ import annotations

import pytest

from commands import messages as m
from commands.bus import MessageBus
from commands.handlers import HANDLERS
from commands.ports import CommandMeta
from domain.errors import Conflict, DomainError, Forbidden, NotFound
from domain.strategies import Strategy
from tests.unit.fakes import fake_deps

META = CommandMeta(actor="user:1", request_id="r1")


def _bus() -> MessageBus:
    return MessageBus(fake_deps(), HANDLERS)


def _body(name: str = "s", **kw: object) -> m.StrategyBody:
    values: dict[str, object] = {"entry_rules": None, "exit_rules": None, "params": None}
    values.update(kw)
    return m.StrategyBody(name, "", "sma_crossover", values["entry_rules"], values["exit_rules"],  # type: ignore[arg-type]
                          values["params"], True)  # type: ignore[arg-type]


def test_create_records_one_event_with_the_callers_meta() -> None:
    bus = _bus()
    result = bus.handle(m.CreateStrategy(1, _body()), META)
    assert result.value == 1 and result.position == 1 and result.touched_accounts == {1}
    assert bus.deps.store.log == [(1, "StrategyCreated", META)]  # type: ignore[attr-defined]


def test_invalid_rules_are_refused_and_nothing_is_recorded() -> None:
    bus = _bus()
    with pytest.raises(DomainError, match=r"entry_rules.all\[0\].left.ind"):
        bus.handle(m.CreateStrategy(1, _body(entry_rules={"all": [{"left": {"ind": "x"}, "op": ">", "right": 1}]})),
                   META)
    assert bus.deps.store.log == []  # type: ignore[attr-defined]


def test_update_by_another_user_is_not_found_and_by_owner_is_recorded() -> None:
    bus = _bus()
    sid = bus.handle(m.CreateStrategy(1, _body()), META).value
    with pytest.raises(NotFound):
        bus.handle(m.UpdateStrategy(2, sid, _body("hijack")), META)
    bus.handle(m.UpdateStrategy(1, sid, _body("renamed")), META)
    with bus.deps.store.reading(Strategy, Strategy.uuid_for(sid)) as s:
        assert s is not None and s.name == "renamed" and s.version == 2


def test_delete_with_an_active_portfolio_is_a_conflict() -> None:
    bus = _bus()
    sid = bus.handle(m.CreateStrategy(1, _body()), META).value
    bus.deps.portfolio_usage.using[sid] = 1  # type: ignore[attr-defined]
    with pytest.raises(Conflict, match="active portfolio"):
        bus.handle(m.DeleteStrategy(1, sid), META)
    bus.deps.portfolio_usage.using[sid] = 0  # type: ignore[attr-defined]
    bus.handle(m.DeleteStrategy(1, sid), META)
    with pytest.raises(NotFound):
        bus.handle(m.UpdateStrategy(1, sid, _body()), META)


def test_templates_seed_once_and_are_forkable_not_editable() -> None:
    bus = _bus()
    first = bus.handle(m.SeedTemplates(), META).value
    assert len(first) == 4
    assert bus.handle(m.SeedTemplates(), META).value == []
    with pytest.raises(Forbidden):
        bus.handle(m.UpdateStrategy(1, first[0], _body()), META)
    fork_id = bus.handle(m.ForkStrategy(1, first[0]), META).value
    with bus.deps.store.reading(Strategy, Strategy.uuid_for(fork_id)) as fork:
        assert fork is not None and fork.owner_id == 1 and fork.forked_from == first[0] and not fork.is_template


def test_share_toggles_and_public_strategy_can_be_forked_by_others() -> None:
    bus = _bus()
    sid = bus.handle(m.CreateStrategy(1, _body()), META).value
    with pytest.raises(NotFound):
        bus.handle(m.ForkStrategy(2, sid), META)
    bus.handle(m.ToggleShareStrategy(1, sid), META)
    assert bus.handle(m.ForkStrategy(2, sid), META).value > sid
    with pytest.raises(Forbidden):
        bus.handle(m.ToggleShareStrategy(2, sid), META)


def test_version_conflicts_are_retried_on_fresh_state_then_surface_as_409() -> None:
    from commands.bus import ATTEMPTS
    from commands.ports import ConcurrencyConflict

    class Clash:
        def __init__(self, clashes: int) -> None:
            self.clashes = clashes
            self.runs = 0

    def handler(cmd: Clash, uow: object) -> int:  # another writer wins the first `clashes` saves
        cmd.runs += 1
        if cmd.runs <= cmd.clashes:
            raise ConcurrencyConflict("portfolio 1")
        return cmd.runs

    bus = MessageBus(fake_deps(), {Clash: handler})
    busy = Clash(ATTEMPTS - 1)  # several carts of one account at once: each save but the last clashes
    assert bus.handle(busy, META).value == ATTEMPTS
    hopeless = Clash(ATTEMPTS)
    with pytest.raises(Conflict, match="try again"):
        bus.handle(hopeless, META)
    assert hopeless.runs == ATTEMPTS  # bounded: no endless retrying
