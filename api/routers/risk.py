"""Risk rules (CRUD; deleting a kill_switch rule releases it) and the live risk state."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import Request, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.deps import IdPath, PlatformDep, Reader, SessionUser, answer_rows, dispatch, resource_router
from api.guards import MAX_ID
from api.public.base import answers
from api.public.risk import RiskRulePublic, RiskStatePublic
from api.risk_state import risk_state
from commands import messages as m
from commands.bus import CommandResult
from domain.errors import DomainError, NotFound
from domain.risk import RULE_TYPES, RiskBook, normalize_rule
from infra.bootstrap import Platform
from projections.risk import RiskProjection, get_risk_rule, list_risk_rules

router = resource_router("/api/risk", ["risk"])
RuleType = Literal[RULE_TYPES]  # type: ignore[valid-type]


class RuleBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule_type: RuleType = Field(description=", ".join(RULE_TYPES))
    portfolio_id: int | None = Field(default=None, ge=1, le=MAX_ID, description="null: the whole account")
    value: float | None = Field(default=None, gt=0, le=1e13,
                                description="INR, percent or a count by rule type")
    unit: Literal["inr", "pct"] | None = Field(default=None, description="max_daily_loss only (default inr)")
    symbols: list[str] = Field(default_factory=list, max_length=500, description="blocked_symbols only")
    note: str = Field(default="", max_length=200)

    @model_validator(mode="after")
    def _fields_for_the_type(self) -> RuleBody:
        """Which fields a rule type needs is part of the schema: a rule without them is a 422 (api/errors.py)."""
        try:
            normalize_rule(self.rule_type, self.value, self.unit, self.symbols)
        except DomainError as exc:
            raise ValueError(exc.detail) from None
        return self

    def to_command_body(self) -> m.RiskRuleBody:
        return m.RiskRuleBody(self.rule_type, self.portfolio_id, self.value, self.unit, tuple(self.symbols),
                              self.note)


def _rule_answer(platform: Platform, result: CommandResult, rule_id: int, account_id: int) -> dict[str, Any]:
    """The rule as the command left it: the read model once it applied the command, else the account's
    RiskBook events replayed."""
    with answer_rows(platform, result, RiskProjection, [RiskBook.uuid_for(account_id)]) as conn:
        row = get_risk_rule(conn, rule_id)
    if row is None or row["account_id"] != account_id:
        raise NotFound(f"Risk rule {rule_id} not found")
    return row


@router.get("/rules", **answers(list[RiskRulePublic]), summary="Your risk rules in force")
def rules(user: Reader, platform: PlatformDep) -> list[dict[str, Any]]:
    """By id: account-wide rules (`portfolio_id` null) and those of one portfolio; `auto` marks a kill switch a
    max_daily_loss breach engaged."""
    with platform.db.read() as conn:
        return list_risk_rules(conn, user.account_id)


@router.post("/rules", status_code=201, **answers(RiskRulePublic), summary="Add a risk rule")
def create_rule(body: RuleBody, request: Request, user: SessionUser, platform: PlatformDep) -> dict[str, Any]:
    """The fields a rule type needs are part of the schema (a max_daily_loss rule without `value` is a 422);
    the rule answers as the command left it."""
    result = dispatch(request, platform, m.CreateRiskRule(user.account_id, body.to_command_body()), user)
    return _rule_answer(platform, result, int(result.value), user.account_id)


@router.put("/rules/{rule_id}", **answers(RiskRulePublic), summary="Replace a rule (full body)")
def update_rule(rule_id: IdPath, body: RuleBody, request: Request, user: SessionUser,
                platform: PlatformDep) -> dict[str, Any]:
    """The whole rule body, as for POST; another user's rule is a 404."""
    # (the command finds the rule in the caller's RiskBook, or it is a 404)
    result = dispatch(request, platform, m.UpdateRiskRule(user.account_id, rule_id, body.to_command_body()), user)
    return _rule_answer(platform, result, rule_id, user.account_id)


@router.delete("/rules/{rule_id}", status_code=204, summary="Delete a rule (a kill_switch rule: release it)")
def delete_rule(rule_id: IdPath, request: Request, user: SessionUser, platform: PlatformDep) -> Response:
    """Deleting an engaged kill switch releases it."""
    dispatch(request, platform, m.DeleteRiskRule(user.account_id, rule_id), user)
    return Response(status_code=204)


@router.get("/state", **answers(RiskStatePublic),
            summary="Today's P&L vs limits, exposure, positions, orders, sectors, breaches, kill switch")
def state(user: Reader, platform: PlatformDep) -> dict[str, Any]:
    """The account's risk picture for the latest market day: P&L against each max_daily_loss limit, gross
    exposure and its share of capital, open positions and orders today, exposure per sector, the latest
    breaches and whether a kill switch is engaged."""
    return risk_state(platform, user.account_id)
