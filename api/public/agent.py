"""The agent's API: its queue, what its reports answer, the Kite session hand-over."""

from __future__ import annotations

from pydantic import Field

from api.public.base import Number, Public
from api.public.portfolios import SignalPublic


class PositionToProtect(Public):
    quantity: int
    stop_loss: Number | None
    target: Number | None
    avg_price: Number


class ReplacedExit(Public):
    signal_id: int
    gtt_id: str | None
    order_id: str | None


class AgentSignalPublic(SignalPublic):
    """A signal as the agent works it: an entry says whether it must come off the broker (`withdraw`); an exit
    carries its position and the protective exits it replaces."""

    withdraw: str | None = Field(default=None, description="entries: why it must come off the broker (else null)")
    position: PositionToProtect | None = Field(default=None, description="exits: the position it sells")
    replaced: bool | None = Field(default=None, description="exits: a protective exit a manual close replaced")
    replaces: list[ReplacedExit] | None = Field(default=None,
                                                description="exits: cancel these at the broker once this is accepted")


class SignalResultPublic(Public):
    recorded: bool = Field(description="false: the same report was recorded before (idempotent)")
    signal_id: int
    status: str
    kind: str
    position_id: int | None
    closed_position_id: int | None = Field(default=None, description="exits: the position or lot the fill closed")
    exit_signal_id: int | None = Field(default=None, description="while the position stays open: its exit")
    signal: SignalPublic | None = Field(description="the signal as the report left it")


class HoldingsSynced(Public):
    recorded: bool
    holdings: int


class PositionsSynced(Public):
    recorded: bool
    net: int
    day: int


class OrdersSynced(Public):
    recorded: bool
    gtts: int
    unresolved: int


class PendingTokenPublic(Public):
    request_token: str
    api_key: str
    checksum: str = Field(description="sha256(api_key + request_token + api_secret)")


class AgentSessionPublic(Public):
    api_key: str
    access_token: str
    user_id: str | None
    expires_at: str | None
