"""Risk rules (CRUD; deleting a kill_switch rule releases it) and the live risk state."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import Request, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.deps import IdPath, PlatformDep, Reader, SessionUser, answer_rows, dispatch, resource_router
from api.guards import MAX_ID
from commands import messages as m
from commands.bus import CommandResult
from domain.errors import DomainError, NotFound
from domain.market_hours import IST
from domain.risk import RULE_TYPES, RiskBook, normalize_rule
from infra.bootstrap import Platform
from projections.portfolios import list_portfolios, list_positions
from projections.risk import RiskProjection, get_risk_rule, list_risk_rules, orders_on, risk_breaches

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


@router.get("/rules", summary="Your risk rules in force")
def rules(user: Reader, platform: PlatformDep) -> list[dict[str, Any]]:
    with platform.db.read() as conn:
        return list_risk_rules(conn, user.account_id)


@router.post("/rules", status_code=201)
def create_rule(body: RuleBody, request: Request, user: SessionUser, platform: PlatformDep) -> dict[str, Any]:
    result = dispatch(request, platform, m.CreateRiskRule(user.account_id, body.to_command_body()), user)
    return _rule_answer(platform, result, int(result.value), user.account_id)


@router.put("/rules/{rule_id}", summary="Replace a rule (full body)")
def update_rule(rule_id: IdPath, body: RuleBody, request: Request, user: SessionUser,
                platform: PlatformDep) -> dict[str, Any]:
    # (the command finds the rule in the caller's RiskBook, or it is a 404)
    result = dispatch(request, platform, m.UpdateRiskRule(user.account_id, rule_id, body.to_command_body()), user)
    return _rule_answer(platform, result, rule_id, user.account_id)


@router.delete("/rules/{rule_id}", status_code=204, summary="Delete a rule (a kill_switch rule: release it)")
def delete_rule(rule_id: IdPath, request: Request, user: SessionUser, platform: PlatformDep) -> Response:
    dispatch(request, platform, m.DeleteRiskRule(user.account_id, rule_id), user)
    return Response(status_code=204)


def risk_state(platform: Platform, account_id: int, portfolio_id: int | None = None) -> dict[str, Any]:
    """Today's P&L against the loss limits, exposure, positions, orders, sectors, breaches, kill switch;
    for the account, or narrowed to one portfolio (the dashboard)."""
    market_day = platform.bus.deps.market.latest_day()
    today = datetime.now(UTC).astimezone(IST).date().isoformat()
    with platform.db.read() as conn:
        pfs, _ = list_portfolios(conn, account_id, None, 500, 0)
        if portfolio_id is not None:
            pfs = [p for p in pfs if int(p["id"]) == portfolio_id]
        ids = {int(p["id"]) for p in pfs}
        open_rows, _ = list_positions(conn, account_id, None, "open", 100_000, 0)
        closed_rows, _ = list_positions(conn, account_id, None, "closed", 100_000, 0)
        all_rules = list_risk_rules(conn, account_id)
        breaches = risk_breaches(conn, account_id, None, 20)
        orders = orders_on(conn, account_id, today)
    open_rows = [p for p in open_rows if int(p["portfolio_id"]) in ids]
    capital = sum(float(p["capital"]) for p in pfs)
    day_pnl = round(sum(float(p["day_pnl"] or 0) for p in pfs), 2)
    realized_today = round(sum(float(p["realized_pnl"] or 0) for p in closed_rows
                               if int(p["portfolio_id"]) in ids and p["exit_date"] == market_day), 2)
    gross = round(sum(float(p["quantity"]) * float(p["last_price"]) for p in open_rows), 2)
    sectors: dict[str, dict[str, float]] = {}
    for p in open_rows:
        entry = sectors.setdefault(str(p["sector"]), {"positions": 0, "value": 0.0})
        entry["positions"] += 1
        entry["value"] = round(entry["value"] + float(p["quantity"]) * float(p["last_price"]), 2)
    rules_here = [r for r in all_rules if r["portfolio_id"] is None or portfolio_id is None
                  or r["portfolio_id"] == portfolio_id]
    loss_limits = []
    for r in rules_here:
        if r["rule_type"] != "max_daily_loss":
            continue
        scope_ids = ids if r["portfolio_id"] is None else {int(r["portfolio_id"])}
        scope_capital = sum(float(p["capital"]) for p in pfs if int(p["id"]) in scope_ids)
        loss = -sum(float(p["day_pnl"] or 0) for p in pfs if int(p["id"]) in scope_ids)
        limit = float(r["value"]) if r["unit"] == "inr" else scope_capital * float(r["value"]) / 100.0
        loss_limits.append({"rule_id": r["id"], "scope": r["scope"], "portfolio_id": r["portfolio_id"],
                            "limit": round(limit, 2), "loss": round(max(loss, 0.0), 2),
                            "used_pct": round(max(loss, 0.0) / limit * 100.0, 2) if limit else None})
    switches = [r for r in rules_here if r["rule_type"] == "kill_switch"]
    return {
        "day": market_day,
        "capital": round(capital, 2),
        "day_pnl": day_pnl,
        "realized_pnl_today": realized_today,
        "unrealized_pnl_today": round(day_pnl - realized_today, 2),
        "loss_limits": loss_limits,
        "gross_exposure": gross,
        "exposure_pct": round(gross / capital * 100.0, 2) if capital else 0.0,
        "open_positions": len(open_rows),
        "orders_today": orders,
        "sectors": sectors,
        "breaches": [b for b in breaches if portfolio_id is None or b["portfolio_id"] in (None, portfolio_id)],
        "kill_switch": {"engaged": bool(switches), "rules": switches},
        "rules": rules_here,
    }


@router.get("/state", summary="Today's P&L vs limits, exposure, positions, orders, sectors, breaches, kill switch")
def state(user: Reader, platform: PlatformDep) -> dict[str, Any]:
    return risk_state(platform, user.account_id)
