"""Risk rules and the day's risk state."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from api.public.base import Number, Public


class RiskRulePublic(Public):
    id: int
    account_id: int | None
    rule_type: str = Field(description="max_daily_loss, kill_switch, blocked_symbols, ... (RuleBody)")
    scope: Literal["account", "portfolio"]
    portfolio_id: int | None
    value: float | None = Field(description="INR, percent or a count by rule type")
    unit: str | None = Field(description="max_daily_loss: inr or pct")
    symbols: list[str]
    note: str
    auto: bool = Field(description="a kill switch engaged by a max_daily_loss breach (delete it to release)")
    created_at: str | None
    updated_at: str | None


class BreachPublic(Public):
    id: int
    rule_id: int
    rule_type: str
    portfolio_id: int | None
    signal_id: int | None
    symbol: str | None
    action: str
    limit: float | None
    actual: float | None
    message: str
    day: str
    at: str | None


class LossLimitPublic(Public):
    rule_id: int
    scope: str
    portfolio_id: int | None
    limit: float = Field(description="INR")
    loss: float = Field(description="today's loss so far, INR (0 when in profit)")
    used_pct: float | None


class SectorExposure(Public):
    positions: int
    value: Number = Field(description="INR at the last price")


class KillSwitchPublic(Public):
    engaged: bool
    rules: list[RiskRulePublic]


class RiskStatePublic(Public):
    day: str | None = Field(description="the latest market day with bars")
    capital: Number
    day_pnl: Number
    realized_pnl_today: Number
    unrealized_pnl_today: Number
    loss_limits: list[LossLimitPublic]
    gross_exposure: Number
    exposure_pct: Number
    open_positions: int
    orders_today: int
    sectors: dict[str, SectorExposure]
    breaches: list[BreachPublic]
    kill_switch: KillSwitchPublic
    rules: list[RiskRulePublic]
