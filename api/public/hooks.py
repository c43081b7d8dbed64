"""Alert hooks (TradingView, Chartink) and what an alert answers."""

from __future__ import annotations

from pydantic import Field

from api.public.base import Public
from api.public.portfolios import SignalPublic


class HookPublic(Public):
    id: int
    portfolio_id: int
    source: str = Field(description="tradingview or chartink")
    name: str
    token_prefix: str = Field(description="the start of its token (never the token)")
    created_at: str | None
    token_rotated_at: str | None
    last_alert_at: str | None
    alerts: int = Field(description="alerts received")
    signals: int = Field(description="signals they became")


class IssuedHookPublic(HookPublic):
    """Shown once: the token and its URL, and what to paste where."""

    token: str
    url: str = Field(description="the webhook URL: keep it secret, it is the credential")
    message: str | None = Field(description="TradingView: the alert message for a buy")
    sell_message: str | None = Field(description="TradingView: the message to exit a held position")
    instructions: str


class IgnoredItem(Public):
    symbol: str
    action: str
    reason: str


class AlertAnswerPublic(Public):
    hook_id: int
    portfolio_id: int
    duplicate: bool = Field(description="true: a repeat of an alert, answered again")
    signals: list[SignalPublic] = Field(description="the signals it became, as GET /api/model/signals")
    ignored: list[IgnoredItem] = Field(description="what the portfolio did not take, and why")
