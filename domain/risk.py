"""Risk rules and the RiskBook aggregate (one per account): rules, the kill switch, orders per day, breaches.

Rule types (API "Risk rules"), each scoped to the account or to one portfolio:
- ``max_daily_loss``: `value` INR (`unit` "inr") or percent of capital (`unit` "pct"); when the day's
  realized + unrealized loss reaches it, new entries are refused and the kill switch engages by itself;
- ``max_position_value``: INR per new position;
- ``max_exposure_pct``: open + committed entry value, percent of capital;
- ``max_open_positions``: open positions + entries approved or placed;
- ``max_per_sector``: the same, per sector;
- ``max_orders_per_day``: orders placed per trading day;
- ``blocked_symbols``: `symbols` never entered;
- ``kill_switch``: while such a rule exists, no new entry passes (delete it to release).

Only risk-increasing actions (approving or placing an entry) are checked; exits always pass.
`check_entry` is pure: the handler gathers an `Exposure` per scope from the portfolios it loaded.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from domain.aggregate import Aggregate, aggregate_uuid
from domain.errors import Conflict, DomainError, NotFound
from domain.events import DomainEvent
from domain.money import format_inr
from domain.text import NSE_SYMBOL

RULE_TYPES = (
    "max_daily_loss", "max_position_value", "max_exposure_pct", "max_open_positions", "max_per_sector",
    "max_orders_per_day", "blocked_symbols", "kill_switch",
)
_COUNT_RULES = ("max_open_positions", "max_per_sector", "max_orders_per_day")
_MAX_VALUE = 1e13


# ---------------------------------------------------------------------------------------------- events


@dataclass(frozen=True)
class RiskRuleCreated(DomainEvent):
    rule_id: int
    rule_type: str
    portfolio_id: int | None
    value: float | None
    unit: str | None
    symbols: list[str]
    note: str
    at: str


@dataclass(frozen=True)
class RiskRuleUpdated(RiskRuleCreated):
    """A rule replaced in full (same fields as its creation)."""


@dataclass(frozen=True)
class RiskRuleDeleted(DomainEvent):
    rule_id: int
    at: str


@dataclass(frozen=True)
class RiskBreached(DomainEvent):
    rule_id: int
    rule_type: str
    portfolio_id: int | None
    signal_id: int | None
    symbol: str | None
    action: str  # approve | place | auto_approve | daily_loss
    limit: float | None
    actual: float | None
    message: str
    day: str
    at: str


@dataclass(frozen=True)
class KillSwitchEngaged(DomainEvent):
    rule_id: int  # the kill_switch rule it created; deleting that rule releases it
    trigger_rule_id: int
    loss: float
    limit: float
    day: str
    at: str


@dataclass(frozen=True)
class OrderCounted(DomainEvent):
    portfolio_id: int
    signal_id: int
    day: str
    at: str


@dataclass(frozen=True)
class EntryApproved(DomainEvent):
    """An approval took account-wide room (recorded only while account-scoped limits exist, so that
    concurrent approvals in different portfolios serialise on the RiskBook)."""

    portfolio_id: int
    signal_id: int
    day: str
    at: str


@dataclass(frozen=True)
class RiskBookOpened(DomainEvent):
    account_id: int


@dataclass(frozen=True)
class PortfolioRegistered(DomainEvent):
    portfolio_id: int
    at: str


# ---------------------------------------------------------------------------------------------- rules


@dataclass(frozen=True)
class RiskRule:
    rule_id: int
    rule_type: str
    portfolio_id: int | None = None
    value: float | None = None
    unit: str | None = None
    symbols: tuple[str, ...] = ()
    note: str = ""

    @property
    def scope(self) -> str:
        return "account" if self.portfolio_id is None else "portfolio"

    def applies_to(self, portfolio_id: int) -> bool:
        return self.portfolio_id is None or self.portfolio_id == portfolio_id

    def to_json(self) -> dict[str, Any]:
        return {"id": self.rule_id, "rule_type": self.rule_type, "scope": self.scope,
                "portfolio_id": self.portfolio_id, "value": self.value, "unit": self.unit,
                "symbols": list(self.symbols), "note": self.note}


def _blocked_symbol(index: int, value: Any) -> str:
    """An NSE trading symbol as signals name it (`YESBANK`, `M&M`, `BAJAJ-AUTO`; an `NSE:` prefix is dropped)."""
    text = value.strip().upper() if isinstance(value, str) else ""
    text = text.removeprefix("NSE:")
    if not NSE_SYMBOL.fullmatch(text):
        raise DomainError(f"symbols[{index}] is not an NSE symbol (letters, digits, & . _ -, at most 30, "
                          "like \"YESBANK\" or \"M&M\")")
    return text


def normalize_rule(rule_type: str, value: Any, unit: Any, symbols: Any) -> tuple[float | None, str | None,
                                                                                   list[str]]:
    """Validate one rule's parameters; DomainError says what to change (never repeating what was sent).
    Returns (value, unit, symbols)."""
    if rule_type not in RULE_TYPES:
        raise DomainError(f"rule_type must be one of {', '.join(RULE_TYPES)}")
    if rule_type == "kill_switch":
        return None, None, []
    if rule_type == "blocked_symbols":
        if not isinstance(symbols, list | tuple) or not symbols:
            raise DomainError("blocked_symbols needs symbols: a non-empty list like [\"YESBANK\"]")
        return None, None, sorted({_blocked_symbol(i, s) for i, s in enumerate(symbols)})
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < float(value) <= _MAX_VALUE:
        raise DomainError(f"{rule_type} needs a positive number value")
    v = float(value)
    if rule_type in _COUNT_RULES:
        if v != int(v):
            raise DomainError(f"{rule_type} value is a count; give a whole number")
        return v, None, []
    if rule_type == "max_exposure_pct":
        return v, "pct", []
    if rule_type == "max_position_value":
        return v, "inr", []
    unit = "inr" if unit is None else unit
    if unit not in ("inr", "pct"):
        raise DomainError("max_daily_loss unit must be inr or pct")
    if unit == "pct" and v > 100:
        raise DomainError("max_daily_loss as a percent of capital must be at most 100")
    return v, str(unit), []


@dataclass
class Exposure:
    """What one scope (the account, or one portfolio) holds and has committed, for a risk check."""

    capital: float = 0.0
    invested: float = 0.0  # open positions at their marks
    committed: float = 0.0  # approved or placed entries at their expected value
    open_positions: int = 0  # open positions + approved or placed entries
    sectors: dict[str, int] = field(default_factory=dict)  # the same, per sector
    orders_today: int = 0
    day_pnl: float = 0.0  # realized + unrealized since the previous close (negative: a loss)

    def add(self, other: Exposure) -> None:
        self.capital += other.capital
        self.invested += other.invested
        self.committed += other.committed
        self.open_positions += other.open_positions
        for k, v in other.sectors.items():
            self.sectors[k] = self.sectors.get(k, 0) + v
        self.day_pnl += other.day_pnl


@dataclass(frozen=True)
class Breach:
    rule: RiskRule
    limit: float | None
    actual: float | None
    message: str


@dataclass(frozen=True)
class EntryRequest:
    """A risk-increasing action: a new position in `symbol` of about `value` rupees."""

    portfolio_id: int
    symbol: str
    sector: str
    value: float
    counts_as_order: bool  # placing (an order is sent) vs approving (a slot is taken)
    already_committed: bool  # approved before: its slot and value are in the exposure already


def daily_loss_limit(rule: RiskRule, capital: float) -> float:
    assert rule.value is not None
    return rule.value if rule.unit == "inr" else capital * rule.value / 100.0


def check_entry(rules: Iterable[RiskRule], req: EntryRequest, scopes: Mapping[str, Exposure]) -> list[Breach]:
    """Every rule the entry would breach. `scopes` maps "account" and "portfolio" to their exposure
    (the portfolio one for `req.portfolio_id`)."""
    out: list[Breach] = []
    add_slot = 0 if req.already_committed else 1
    add_value = 0.0 if req.already_committed else req.value
    for rule in rules:
        if not rule.applies_to(req.portfolio_id):
            continue
        x = scopes[rule.scope]
        where = "account" if rule.scope == "account" else f"portfolio {req.portfolio_id}"
        rt, v = rule.rule_type, rule.value
        if rt == "kill_switch":
            out.append(Breach(rule, None, None, f"kill_switch rule {rule.rule_id} is engaged for the {where}: "
                                                "no new entries until it is released"))
        elif rt == "blocked_symbols" and req.symbol in rule.symbols:
            out.append(Breach(rule, None, None, f"blocked_symbols rule {rule.rule_id}: {req.symbol} is blocked"))
        elif v is None:
            continue
        elif rt == "max_position_value" and req.value > v:
            out.append(Breach(rule, v, round(req.value, 2), f"max_position_value rule {rule.rule_id}: the "
                              f"position would be worth {format_inr(req.value)}, above the limit {format_inr(v)}"))
        elif rt == "max_exposure_pct" and x.capital > 0:
            pct = (x.invested + x.committed + add_value) / x.capital * 100.0
            if pct > v + 1e-9:
                out.append(Breach(rule, v, round(pct, 2), f"max_exposure_pct rule {rule.rule_id}: {where} "
                                  f"exposure would be {pct:.2f} % of capital, above {v:g} %"))
        elif rt == "max_open_positions" and x.open_positions + add_slot > v:
            out.append(Breach(rule, v, x.open_positions + add_slot, f"max_open_positions rule {rule.rule_id}: "
                              f"{where} would hold {x.open_positions + add_slot} positions, above {v:g}"))
        elif rt == "max_per_sector":
            n = x.sectors.get(req.sector, 0) + add_slot
            if n > v:
                out.append(Breach(rule, v, n, f"max_per_sector rule {rule.rule_id}: {where} would hold {n} "
                                  f"positions in {req.sector}, above {v:g}"))
        elif rt == "max_orders_per_day" and req.counts_as_order and x.orders_today + 1 > v:
            out.append(Breach(rule, v, x.orders_today + 1, f"max_orders_per_day rule {rule.rule_id}: {where} "
                              f"has placed {x.orders_today} orders today, the limit is {v:g}"))
        elif rt == "max_daily_loss":
            limit = daily_loss_limit(rule, x.capital)
            if -x.day_pnl >= limit > 0:
                out.append(Breach(rule, round(limit, 2), round(-x.day_pnl, 2), f"max_daily_loss rule "
                                  f"{rule.rule_id}: {where} lost {format_inr(-x.day_pnl)} today, "
                                  f"the limit is {format_inr(limit)}"))
    return out


# ---------------------------------------------------------------------------------------------- aggregate


class RiskBook(Aggregate):
    """One account's risk rules, kill switches, orders per day and the portfolios they watch."""

    aggregate_type: ClassVar[str] = "RiskBook"

    def __init__(self, aggregate_id: uuid.UUID) -> None:
        super().__init__(aggregate_id)
        self.rules: dict[int, RiskRule] = {}
        self.portfolios: list[int] = []
        self.orders: dict[tuple[str, int], int] = {}  # (day, portfolio_id) -> orders placed
        self._oldest_order_day = ""  # the oldest day in `orders` ("" while empty)
        self.engaged_for: dict[int, int] = {}  # auto kill_switch rule id -> the max_daily_loss rule id

    @staticmethod
    def uuid_for(account_id: int) -> uuid.UUID:
        return aggregate_uuid("riskbook", account_id)

    @classmethod
    def open(cls, account_id: int) -> RiskBook:
        book = cls(cls.uuid_for(account_id))
        book._record(RiskBookOpened(account_id))
        return book

    # ------------------------------------------------------------------------------- queries

    def orders_on(self, day: str, portfolio_id: int | None = None) -> int:
        return sum(n for (d, p), n in self.orders.items() if d == day and (portfolio_id is None or p == portfolio_id))

    def rule(self, rule_id: int) -> RiskRule:
        found = self.rules.get(rule_id)
        if found is None:
            raise NotFound(f"Risk rule {rule_id} not found")
        return found

    # ------------------------------------------------------------------------------- commands

    def register_portfolio(self, portfolio_id: int, at: str) -> None:
        if portfolio_id not in self.portfolios:
            self._record(PortfolioRegistered(portfolio_id, at))

    def create_rule(self, rule_id: int, rule_type: str, portfolio_id: int | None, value: Any, unit: Any,
                    symbols: Any, note: str, at: str) -> None:
        v, u, syms = normalize_rule(rule_type, value, unit, symbols)
        self._check_scope(portfolio_id)
        self._check_unique(None, rule_type, portfolio_id, v, u, syms)
        self._record(RiskRuleCreated(rule_id, rule_type, portfolio_id, v, u, syms, note, at))

    def update_rule(self, rule_id: int, rule_type: str, portfolio_id: int | None, value: Any, unit: Any,
                    symbols: Any, note: str, at: str) -> None:
        self.rule(rule_id)
        v, u, syms = normalize_rule(rule_type, value, unit, symbols)
        self._check_scope(portfolio_id)
        self._check_unique(rule_id, rule_type, portfolio_id, v, u, syms)
        self._record(RiskRuleUpdated(rule_id, rule_type, portfolio_id, v, u, syms, note, at))

    def _check_unique(self, rule_id: int | None, rule_type: str, portfolio_id: int | None, value: float | None,
                      unit: str | None, symbols: list[str]) -> None:
        """A second rule identical to one you have (type, scope, limit, unit, symbols) only doubles the cards and
        the breaches: a Conflict naming the one you have (kill switches may stack: releasing one keeps another)."""
        if rule_type == "kill_switch":
            return
        for other in self.rules.values():
            if other.rule_id != rule_id and (other.rule_type, other.portfolio_id, other.value, other.unit,
                                              tuple(other.symbols)) == (rule_type, portfolio_id, value, unit,
                                                                         tuple(symbols)):
                raise Conflict(f"You already have this rule: {rule_type} rule {other.rule_id}")

    def delete_rule(self, rule_id: int, at: str) -> None:
        self.rule(rule_id)
        self._record(RiskRuleDeleted(rule_id, at))

    def record_breaches(self, breaches: Sequence[Breach], *, action: str, portfolio_id: int | None,
                        signal_id: int | None, symbol: str | None, day: str, at: str) -> None:
        for b in breaches:
            self._record(RiskBreached(b.rule.rule_id, b.rule.rule_type, portfolio_id, signal_id, symbol, action,
                                      b.limit, b.actual, b.message, day, at))

    def guards_account_room(self) -> bool:
        """Do account-scoped rules limit positions or exposure (so approvals must serialise here)?"""
        return any(r.portfolio_id is None and r.rule_type in ("max_open_positions", "max_per_sector",
                                                              "max_exposure_pct") for r in self.rules.values())

    def note_approval(self, portfolio_id: int, signal_id: int, day: str, at: str) -> None:
        self._record(EntryApproved(portfolio_id, signal_id, day, at))

    def count_order(self, portfolio_id: int, signal_id: int, day: str, at: str) -> None:
        self._record(OrderCounted(portfolio_id, signal_id, day, at))

    def engage_kill_switch(self, new_rule_id: int, trigger: RiskRule, loss: float, limit: float, day: str,
                           at: str) -> None:
        """The day's loss reached `trigger` (a max_daily_loss rule): record the breach and a kill_switch
        rule of the same scope, unless one engaged by that rule is already in force."""
        if trigger.rule_id in self.engaged_for.values():
            return
        where = "account" if trigger.portfolio_id is None else f"portfolio {trigger.portfolio_id}"
        self._record(RiskBreached(trigger.rule_id, trigger.rule_type, trigger.portfolio_id, None, None,
                                  "daily_loss", round(limit, 2), round(loss, 2),
                                  f"max_daily_loss rule {trigger.rule_id}: {where} lost {format_inr(loss)} today, the "
                                  f"limit is {format_inr(limit)}; kill switch engaged", day, at))
        self._record(KillSwitchEngaged(new_rule_id, trigger.rule_id, round(loss, 2), round(limit, 2), day, at))

    def _check_scope(self, portfolio_id: int | None) -> None:
        if portfolio_id is not None and portfolio_id not in self.portfolios:
            raise NotFound(f"Portfolio {portfolio_id} not found")

    # ------------------------------------------------------------------------------- mutators

    def when_RiskBookOpened(self, e: RiskBookOpened) -> None:
        self.account_id = e.account_id

    def when_PortfolioRegistered(self, e: PortfolioRegistered) -> None:
        self.portfolios.append(e.portfolio_id)

    def when_RiskRuleCreated(self, e: RiskRuleCreated) -> None:
        self.rules[e.rule_id] = RiskRule(e.rule_id, e.rule_type, e.portfolio_id, e.value, e.unit,
                                         tuple(e.symbols), e.note)

    def when_RiskRuleUpdated(self, e: RiskRuleUpdated) -> None:
        self.rules[e.rule_id] = RiskRule(e.rule_id, e.rule_type, e.portfolio_id, e.value, e.unit,
                                         tuple(e.symbols), e.note)
        self.engaged_for.pop(e.rule_id, None)

    def when_RiskRuleDeleted(self, e: RiskRuleDeleted) -> None:
        self.rules.pop(e.rule_id, None)
        self.engaged_for.pop(e.rule_id, None)

    def when_EntryApproved(self, e: EntryApproved) -> None:
        pass  # serialises account-wide approvals; the exposure itself lives in the portfolios

    def when_RiskBreached(self, e: RiskBreached) -> None:
        pass  # a fact for the audit trail and the risk-state projection

    def when_KillSwitchEngaged(self, e: KillSwitchEngaged) -> None:
        trigger = self.rules.get(e.trigger_rule_id)
        self.rules[e.rule_id] = RiskRule(e.rule_id, "kill_switch", trigger.portfolio_id if trigger else None,
                                         note=f"engaged automatically by max_daily_loss rule {e.trigger_rule_id} "
                                              f"on {e.day} (loss {format_inr(e.loss)}, limit {format_inr(e.limit)})")
        self.engaged_for[e.rule_id] = e.trigger_rule_id

    def when_OrderCounted(self, e: OrderCounted) -> None:
        key = (e.day, e.portfolio_id)
        self.orders[key] = self.orders.get(key, 0) + 1
        if self._oldest_order_day < e.day:  # only recent days matter: drop older ones (once per new day)
            for old in [k for k in self.orders if k[0] < e.day]:
                del self.orders[old]
        self._oldest_order_day = e.day  # every other day left is this one or later
