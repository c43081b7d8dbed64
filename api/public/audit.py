"""The audit trail: event envelopes with their hash chain, a portfolio's timeline, a portfolio as of a moment."""

from __future__ import annotations

from pydantic import Field

from api.public.base import Number, OpenObject, OpenPublic, Public


class EventMeta(OpenPublic):
    """Who caused the event and within which request."""

    actor: str | None = None
    request_id: str | None = None
    correlation_id: str | None = None


class AuditEventPublic(Public):
    position: int = Field(description="the event's place in the store")
    event_id: str
    type: str
    schema_version: int
    aggregate_type: str
    aggregate_id: str
    aggregate_version: int
    account_id: int | None
    occurred_at: str
    meta: EventMeta
    data: OpenObject = Field(description="the event's data (its keys depend on the type)")
    prev_hash: str | None = Field(default=None, description="the account's SHA-256 chain")
    hash: str | None = None


class Cause(Public):
    kind: str = Field(description="user, agent_key, scheduler, system, ...")
    actor: str
    request_id: str | None
    correlation_id: str | None
    account_id: int | None = None
    via: str | None = Field(default=None, description="a scan's: scheduled scan or scan on request")


class TimelineStep(Public):
    position: int
    at: str
    step: str = Field(description="scan, signal, approval, order, fill, position, exit, ...")
    type: str
    signal_id: int | None
    position_id: int | None
    caused_by: Cause
    follows: int | None = Field(description="the position of the signal's previous step")
    proposed_by: int | None = Field(description="the position of the scan step that proposed the signal")
    summary: str
    values: OpenObject = Field(description="the event's data")


class TimelinePublic(Public):
    portfolio_id: int
    steps: list[TimelineStep]


class AsOfSignal(Public):
    id: int
    symbol: str
    sector: str | None
    status: str
    quantity: Number
    conviction: Number | None
    reference_price: Number | None
    limit_price: Number | None
    stop_loss: Number | None
    target: Number | None
    day: str | None
    fill_price: Number | None
    failure_reason: str | None
    position_id: int | None


class AsOfPosition(Public):
    id: int
    symbol: str
    sector: str | None
    quantity: Number
    avg_price: Number
    entry_date: str | None
    stop_loss: Number | None
    target: Number | None
    status: str
    last_price: Number | None
    exit_price: Number | None
    exit_date: str | None
    exit_reason: str | None
    realized_pnl: Number | None
    unrealized_pnl: Number | None


class AsOfRule(Public):
    id: int
    rule_type: str
    scope: str
    portfolio_id: int | None
    value: Number | None
    unit: str | None
    symbols: list[str]
    note: str


class AsOfRisk(Public):
    rules: list[AsOfRule]
    kill_switch: bool
    orders_on_last_day: int


class AsOfPublic(Public):
    portfolio_id: int
    as_of: str
    events_applied: int
    last_event_at: str
    name: str
    mode: str
    status: str
    capital: Number
    cash: Number
    equity: Number
    last_day: str | None
    positions: list[AsOfPosition] = Field(description="open at that moment")
    closed_positions: list[AsOfPosition]
    signals: list[AsOfSignal]
    risk: AsOfRisk
