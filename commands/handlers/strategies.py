"""Strategy commands: create, replace, delete, fork, share, and seeding the templates."""

from __future__ import annotations

from commands import messages as m
from commands.uow import UnitOfWork
from domain.base_models import BASE_MODELS
from domain.errors import Conflict, DomainError
from domain.strategies import SpecError, Strategy, StrategySpec, TemplateCatalog, normalize_spec


def _spec(body: m.StrategyBody) -> StrategySpec:
    try:
        return normalize_spec(body.base_model, body.entry_rules, body.exit_rules, body.params)
    except SpecError as exc:
        raise DomainError(str(exc)) from None


def create_strategy(cmd: m.CreateStrategy, uow: UnitOfWork) -> int:
    spec = _spec(cmd.body)
    strategy_id = uow.deps.ids.next_id("strategy")
    s = Strategy.create(strategy_id, cmd.account_id, cmd.body.name, cmd.body.description, spec,
                        is_active=cmd.body.is_active)
    uow.save(s)
    return strategy_id


def update_strategy(cmd: m.UpdateStrategy, uow: UnitOfWork) -> int:
    s = uow.get(Strategy, Strategy.uuid_for(cmd.strategy_id), f"Strategy {cmd.strategy_id}")
    s.check_owner(cmd.account_id)
    s.update(cmd.account_id, cmd.body.name, cmd.body.description, _spec(cmd.body), cmd.body.is_active)
    uow.save(s)
    return cmd.strategy_id


def delete_strategy(cmd: m.DeleteStrategy, uow: UnitOfWork) -> None:
    s = uow.get(Strategy, Strategy.uuid_for(cmd.strategy_id), f"Strategy {cmd.strategy_id}")
    s.check_owner(cmd.account_id)
    in_use = uow.deps.portfolio_usage.active_portfolios_using(cmd.strategy_id)
    if in_use:
        which = "an active portfolio" if in_use == 1 else f"{in_use} active portfolios"
        raise Conflict(f"Strategy {cmd.strategy_id} is used by {which}: retire {'it' if in_use == 1 else 'them'} "
                       "first (Portfolios, Retire), then delete the strategy")
    s.delete(cmd.account_id)
    uow.save(s)


def fork_strategy(cmd: m.ForkStrategy, uow: UnitOfWork) -> int:
    s = uow.get(Strategy, Strategy.uuid_for(cmd.strategy_id), f"Strategy {cmd.strategy_id}")
    s.check_readable(cmd.account_id)
    new_id = uow.deps.ids.next_id("strategy")
    fork = s.fork(cmd.account_id, new_id, cmd.name)
    uow.save(fork)
    return new_id


def toggle_share_strategy(cmd: m.ToggleShareStrategy, uow: UnitOfWork) -> int:
    s = uow.get(Strategy, Strategy.uuid_for(cmd.strategy_id), f"Strategy {cmd.strategy_id}")
    s.toggle_share(cmd.account_id, cmd.is_public)
    uow.save(s)
    return cmd.strategy_id


TEMPLATE_NAMES = {
    "v3_dip_buyer": "V3 Dip Buyer",
    "momentum_breakout": "Momentum Breakout",
    "sma_crossover": "SMA Crossover 10/30",
    "bollinger_reversion": "Bollinger Reversion",
}


def seed_templates(cmd: m.SeedTemplates, uow: UnitOfWork) -> list[int]:
    """Create the system templates once; the catalog's version guards against concurrent seeding."""
    catalog = uow.load(TemplateCatalog, TemplateCatalog.ID) or TemplateCatalog(TemplateCatalog.ID)
    created: list[Strategy] = []
    for key, model in BASE_MODELS.items():
        if key in catalog.templates:
            continue
        spec = normalize_spec(key, None, None, None)
        sid = uow.deps.ids.next_id("strategy")
        created.append(Strategy.create(sid, None, TEMPLATE_NAMES.get(key, model.title), model.description, spec,
                                       is_active=True, is_template=True))
        catalog.register(key, sid)
    if created:
        uow.save(catalog, *created)
    return [s.strategy_id for s in created]
