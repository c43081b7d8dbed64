"""The Strategy aggregate and the validation of a strategy body (base model, rules, exits, params)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from domain.aggregate import SYSTEM_ACCOUNT_ID, Aggregate, aggregate_uuid
from domain.base_models import get_base_model
from domain.errors import DomainError, Forbidden, NotFound
from domain.events import DomainEvent
from domain.rules import RuleError, parse_rules

EXIT_KEYS = ("stop_loss_pct", "target_pct", "trailing_stop_pct", "max_hold_days", "exit_when")


class SpecError(ValueError):
    """A strategy body is invalid; the message names the offending path."""


@dataclass(frozen=True)
class StrategySpec:
    """A validated, normalised strategy body: what the backtest and the scanner consume."""

    base_model: str
    entry_rules: dict[str, Any]
    exit_rules: dict[str, Any]
    params: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"base_model": self.base_model, "entry_rules": self.entry_rules, "exit_rules": self.exit_rules,
                "params": self.params}


def _pct(raw: dict[str, Any], key: str, lo: float, hi: float) -> float | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpecError(f"exit_rules.{key}: must be a number or null")
    if not lo < float(value) <= hi:
        raise SpecError(f"exit_rules.{key}: must be above {lo:g} and at most {hi:g}, got {value}")
    return float(value)


def normalize_exit_rules(raw: Any) -> dict[str, Any]:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise SpecError("exit_rules: must be an object")
    unknown = sorted(set(raw) - set(EXIT_KEYS))
    if unknown:
        raise SpecError(f"exit_rules.{unknown[0]}: unknown key; use {', '.join(EXIT_KEYS)}")
    hold = raw.get("max_hold_days")
    if hold is not None and (isinstance(hold, bool) or not isinstance(hold, int) or not 1 <= hold <= 1000):
        raise SpecError(f"exit_rules.max_hold_days: must be a whole number from 1 to 1000 or null, got {hold!r}")
    exit_when = raw.get("exit_when")
    if exit_when is not None:
        try:
            exit_when = parse_rules(exit_when, "exit_rules.exit_when").to_json()
        except RuleError as exc:
            raise SpecError(str(exc)) from None
    return {
        "stop_loss_pct": _pct(raw, "stop_loss_pct", 0, 99),
        "target_pct": _pct(raw, "target_pct", 0, 1000),
        "trailing_stop_pct": _pct(raw, "trailing_stop_pct", 0, 99),
        "max_hold_days": hold,
        "exit_when": exit_when,
    }


def normalize_spec(base_model: str, entry_rules: Any, exit_rules: Any, params: Any) -> StrategySpec:
    """Validate and normalise a strategy body; raises SpecError naming the offending path.

    `entry_rules`/`exit_rules` of None take the base model's defaults.
    """
    try:
        model = get_base_model(base_model)
    except DomainError as exc:
        raise SpecError(exc.detail) from None
    raw_entry = model.entry_rules if entry_rules is None else entry_rules
    try:
        entry = parse_rules(raw_entry, "entry_rules").to_json()
    except RuleError as exc:
        raise SpecError(str(exc)) from None
    exits = normalize_exit_rules(model.exit_rules if exit_rules is None else exit_rules)
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise SpecError("params: must be an object")
    try:
        norm_params = model.normalize_params(params)
    except DomainError as exc:
        raise SpecError(exc.detail) from None
    return StrategySpec(base_model=base_model, entry_rules=entry, exit_rules=exits, params=norm_params)


@dataclass(frozen=True)
class StrategyCreated(DomainEvent):
    strategy_id: int
    owner_id: int | None
    name: str
    description: str
    base_model: str
    entry_rules: dict[str, Any]
    exit_rules: dict[str, Any]
    params: dict[str, Any]
    is_active: bool
    is_template: bool
    is_public: bool
    forked_from: int | None


@dataclass(frozen=True)
class StrategyUpdated(DomainEvent):
    name: str
    description: str
    base_model: str
    entry_rules: dict[str, Any]
    exit_rules: dict[str, Any]
    params: dict[str, Any]
    is_active: bool


@dataclass(frozen=True)
class StrategyShared(DomainEvent):
    is_public: bool


@dataclass(frozen=True)
class StrategyDeleted(DomainEvent):
    pass


@dataclass(frozen=True)
class TemplateRegistered(DomainEvent):
    key: str
    strategy_id: int


class Strategy(Aggregate):
    aggregate_type = "Strategy"

    strategy_id: int
    owner_id: int | None
    name: str
    description: str
    spec: StrategySpec
    is_active: bool
    is_template: bool
    is_public: bool
    forked_from: int | None
    deleted: bool

    @staticmethod
    def uuid_for(strategy_id: int) -> uuid.UUID:
        return aggregate_uuid("strategy", strategy_id)

    @classmethod
    def create(
        cls,
        strategy_id: int,
        owner_id: int | None,
        name: str,
        description: str,
        spec: StrategySpec,
        is_active: bool = True,
        is_template: bool = False,
        forked_from: int | None = None,
    ) -> Strategy:
        s = cls(cls.uuid_for(strategy_id))
        s._record(StrategyCreated(
            strategy_id, owner_id, name, description, spec.base_model, spec.entry_rules, spec.exit_rules,
            spec.params, is_active, is_template, False, forked_from,
        ))
        return s

    def when_StrategyCreated(self, e: StrategyCreated) -> None:
        self.strategy_id = e.strategy_id
        self.owner_id = e.owner_id
        self.account_id = e.owner_id if e.owner_id is not None else SYSTEM_ACCOUNT_ID
        self.name = e.name
        self.description = e.description
        self.spec = StrategySpec(e.base_model, e.entry_rules, e.exit_rules, e.params)
        self.is_active = e.is_active
        self.is_template = e.is_template
        self.is_public = e.is_public
        self.forked_from = e.forked_from
        self.deleted = False

    def readable_by(self, account_id: int) -> bool:
        return not self.deleted and (self.is_template or self.is_public or self.owner_id == account_id)

    def check_readable(self, account_id: int) -> None:
        """NotFound unless the caller may read it: another user's private strategy does not leak."""
        if not self.readable_by(account_id):
            raise NotFound(f"Strategy {self.strategy_id} not found")

    def check_owner(self, account_id: int) -> None:
        self.check_readable(account_id)
        if self.owner_id != account_id:
            what = "a template" if self.is_template else "another user's strategy"
            raise Forbidden(f"Strategy {self.strategy_id} is {what}; fork it to change it")

    def update(self, account_id: int, name: str, description: str, spec: StrategySpec, is_active: bool) -> None:
        self.check_owner(account_id)
        self._record(StrategyUpdated(
            name, description, spec.base_model, spec.entry_rules, spec.exit_rules, spec.params, is_active
        ))

    def when_StrategyUpdated(self, e: StrategyUpdated) -> None:
        self.name = e.name
        self.description = e.description
        self.spec = StrategySpec(e.base_model, e.entry_rules, e.exit_rules, e.params)
        self.is_active = e.is_active

    def toggle_share(self, account_id: int, is_public: bool | None = None) -> None:
        """Set `is_public` (None: flip it). Setting the value it already has records nothing (idempotent)."""
        self.check_owner(account_id)
        target = (not self.is_public) if is_public is None else is_public
        if target != self.is_public:
            self._record(StrategyShared(target))

    def when_StrategyShared(self, e: StrategyShared) -> None:
        self.is_public = e.is_public

    def delete(self, account_id: int) -> None:
        self.check_owner(account_id)
        self._record(StrategyDeleted())

    def when_StrategyDeleted(self, e: StrategyDeleted) -> None:
        self.deleted = True

    def fork(self, account_id: int, new_id: int, name: str | None = None) -> Strategy:
        """A private copy owned by `account_id` (own, public or template strategies only)."""
        self.check_readable(account_id)
        return Strategy.create(
            new_id, account_id, name or f"{self.name} (fork)", self.description, self.spec,
            is_active=True, forked_from=self.strategy_id,
        )


class TemplateCatalog(Aggregate):
    """Which template keys have been seeded, so concurrent seeding can never create duplicates."""

    aggregate_type = "TemplateCatalog"
    ID = aggregate_uuid("template-catalog", 1)

    def __init__(self, aggregate_id: uuid.UUID) -> None:
        super().__init__(aggregate_id)
        self.account_id = SYSTEM_ACCOUNT_ID
        self.templates: dict[str, int] = {}

    def register(self, key: str, strategy_id: int) -> None:
        self._record(TemplateRegistered(key, strategy_id))

    def when_TemplateRegistered(self, e: TemplateRegistered) -> None:
        self.templates[e.key] = e.strategy_id
