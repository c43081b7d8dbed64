"""The Agent API (Bearer `zt_...` only, scoped to the key's account): pending signals, results, broker
snapshots, the Kite login hand-over (pending request token -> access token)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Body, Depends, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

from api.deps import PlatformDep, Principal, answer_rows, current_principal, dispatch, resource_router
from api.errors import schema_error
from api.guards import MAX_ID
from api.public.agent import (
    AgentSessionPublic,
    AgentSignalPublic,
    HoldingsSynced,
    OrdersSynced,
    PendingTokenPublic,
    PositionsSynced,
    SignalResultPublic,
)
from api.public.base import answers
from api.schemas import BrokerStatus
from commands import agent_messages as am
from commands.bus import CommandResult
from commands.handlers.agent import ACCESS_TOKEN, PendingToken
from domain.broker import BrokerConnection
from domain.errors import NotFound
from domain.portfolio.aggregate import Portfolio
from infra.bootstrap import Platform
from projections.broker import BrokerProjection, broker_status, get_connection
from projections.joined import agent_queue
from projections.portfolios.projector import PortfoliosProjection
from projections.portfolios.queries import get_signal

router = resource_router("/api/agent", ["agent"])


async def agent_principal(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    if principal.via != "agent_key":
        raise HTTPException(403, "Agent endpoints take the agent key only: 'Authorization: Bearer zt_...'")
    return principal


Agent = Annotated[Principal, Depends(agent_principal)]


class SignalResultBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    signal_id: int = Field(ge=1, le=MAX_ID)
    status: Literal["placed", "executed", "failed", "expired"]
    order_id: str | None = Field(default=None, max_length=64)
    gtt_id: str | None = Field(default=None, max_length=64)
    fill_price: float | None = Field(default=None, gt=0, le=1e9)
    filled_quantity: int | None = Field(default=None, ge=1, le=10**9)
    error: str | None = Field(default=None, max_length=1000)
    idempotency_key: str | None = Field(default=None, max_length=128)

    @model_validator(mode="after")
    def _fields_for_the_status(self) -> SignalResultBody:
        """Fields a status needs are part of the schema (a 422, api/errors.py)."""
        if self.status == "executed" and self.fill_price is None:
            raise ValueError("an executed result needs fill_price")
        if self.status == "placed" and not (self.order_id or self.gtt_id):
            raise ValueError("a placed result needs an order_id or a gtt_id")
        return self


class AccessTokenBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    access_token: str = Field(min_length=1, max_length=256)
    user_id: str | None = Field(default=None, max_length=64)
    expires_at: str | None = Field(default=None, max_length=40)


@router.get("/pending-signals", **answers(list[AgentSignalPublic]),
            summary="Placed signals of live portfolios waiting for the agent (entries and exits)")
def pending_signals(agent: Agent, platform: PlatformDep, response: Response,
                    state: Literal["pending", "working"] = "pending") -> list[dict[str, Any]]:
    """`state=pending` (default): not yet at the broker. `state=working`: at the broker (gtt_id or order_id
    reported), waiting for a fill."""
    with platform.db.read() as conn:
        rows = agent_queue(conn, agent.account_id, state)
    response.headers["X-Total-Count"] = str(len(rows))
    return rows


@router.post("/signal-result", **answers(SignalResultPublic),
             summary="Report a placement, fill or failure (idempotent)")
def signal_result(body: SignalResultBody, request: Request, agent: Agent, platform: PlatformDep) -> dict[str, Any]:
    """`placed` (with order_id or gtt_id), `executed` (with fill_price; `filled_quantity` for a partial exit),
    `failed` or `expired` (with `error`). The same report again answers `recorded: false`; an executed exit for
    a position already closed is a 409."""
    with platform.db.read() as conn:
        sig = get_signal(conn, body.signal_id)
    if sig is None or sig["account_id"] != agent.account_id:
        raise NotFound(f"Signal {body.signal_id} not found")
    cmd = am.ReportSignalResult(
        agent.account_id, int(sig["portfolio_id"]), body.signal_id, body.status, body.order_id, body.gtt_id,
        body.fill_price, body.filled_quantity, body.error, body.idempotency_key, sig["reason"] or "")
    result = dispatch(request, platform, cmd, agent)
    outcome: dict[str, Any] = result.value
    with answer_rows(platform, result, PortfoliosProjection, [Portfolio.uuid_for(int(sig["portfolio_id"]))]) as conn:
        outcome["signal"] = get_signal(conn, body.signal_id)
    return outcome


# Kite's holding and position objects, typed: the fields the platform keeps (domain.broker's HOLDING_FIELDS,
# POSITION_FIELDS) are validated -- printable symbols, bounded integers, finite prices -- and any other
# field Kite sends is dropped, so a snapshot event holds only what was checked.
Text = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[\x21-\x7e]+$")]
Quantity = Annotated[int, Field(strict=True, ge=-(10**12), le=10**12)]  # a position's net may be short
Held = Annotated[int, Field(strict=True, ge=0, le=10**12)]  # a holding is never negative (Kite's CNC holdings)
Price = Annotated[float, Field(ge=-1e12, le=1e12, allow_inf_nan=False)]


class KiteRow(BaseModel):
    model_config = ConfigDict(extra="ignore")

    tradingsymbol: Text
    exchange: Text | None = None
    instrument_token: Annotated[int, Field(ge=0, le=2**63 - 1)] | None = None
    product: Text | None = None
    quantity: Quantity | None = None
    average_price: Price | None = None
    last_price: Price | None = None
    pnl: Price | None = None


class KiteHolding(KiteRow):
    quantity: Held | None = None
    isin: Annotated[str, Field(max_length=16, pattern=r"^[A-Za-z0-9]*$")] | None = None
    t1_quantity: Held | None = None
    used_quantity: Held | None = None
    close_price: Price | None = None


class KitePosition(KiteRow):
    overnight_quantity: Quantity | None = None
    buy_quantity: Quantity | None = None
    sell_quantity: Quantity | None = None


class KitePositions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    net: list[KitePosition] = Field(default_factory=list, max_length=5000)
    day: list[KitePosition] = Field(default_factory=list, max_length=5000)


_HOLDINGS = TypeAdapter(list[KiteHolding])


def _unwrap(payload: Any) -> Any:
    if isinstance(payload, dict) and "data" in payload:  # Kite's {"status": "success", "data": ...} envelope
        payload = payload["data"]
    return payload


def _invalid(what: str, exc: ValidationError) -> Exception:
    """A 422 naming the first bad field (its location, never its value): a snapshot not in Kite's shape
    is a schema violation (api/errors.py)."""
    err = exc.errors()[0]
    where = ".".join(str(x) for x in err["loc"])
    return schema_error(("body", what, *err["loc"]), f"{what}: {where or 'body'}: {err['msg']}")


@router.post("/sync-holdings", **answers(HoldingsSynced),
             summary="Holdings snapshot (Kite holdings shape: a list, or Kite's envelope)")
def sync_holdings(request: Request, agent: Agent, platform: PlatformDep,
                  payload: Any = Body(...)) -> dict[str, Any]:
    """Kite's holding objects; the fields the platform keeps are validated (a bad row is a 422 naming it) and
    others dropped. Recorded when it differs from the last snapshot (`recorded`)."""
    data = _unwrap(payload)
    if not isinstance(data, list):
        raise schema_error(("body",), "holdings must be a list of Kite holding objects (or {\"data\": [...]})")
    if len(data) > 5000:
        raise schema_error(("body",), "at most 5000 holdings per snapshot")
    try:
        rows = [h.model_dump() for h in _HOLDINGS.validate_python(data)]
    except ValidationError as exc:
        raise _invalid("holdings", exc) from None
    recorded = dispatch(request, platform, am.SyncBrokerHoldings(agent.account_id, tuple(rows)), agent).value
    return {"recorded": recorded, "holdings": len(rows)}


@router.post("/sync-positions", **answers(PositionsSynced),
             summary="Positions snapshot (Kite positions shape {net, day}, or Kite's envelope)")
def sync_positions(request: Request, agent: Agent, platform: PlatformDep,
                   payload: Any = Body(...)) -> dict[str, Any]:
    """Kite's `{net, day}` positions, validated as the holdings are; recorded when it differs from the last."""
    data = _unwrap(payload)
    if not isinstance(data, dict):
        raise schema_error(("body",), "positions must be an object {\"net\": [...], \"day\": [...]}")
    if not data or set(data) - {"net", "day"}:
        raise schema_error(("body",), "positions has the fields net and day only (Kite's positions shape)")
    try:
        positions = KitePositions.model_validate(data)
    except ValidationError as exc:
        raise _invalid("positions", exc) from None
    if len(positions.net) + len(positions.day) > 5000:
        raise schema_error(("body",), "at most 5000 positions per snapshot")
    net = tuple(p.model_dump() for p in positions.net)
    day = tuple(p.model_dump() for p in positions.day)
    recorded = dispatch(request, platform, am.SyncBrokerPositions(agent.account_id, net, day), agent).value
    return {"recorded": recorded, "net": len(net), "day": len(day)}


class KiteGttCondition(BaseModel):
    model_config = ConfigDict(extra="ignore")

    exchange: Text | None = None
    tradingsymbol: Text
    last_price: Price | None = None
    trigger_values: list[Price] = Field(default_factory=list, max_length=2)


class KiteGttOrder(BaseModel):
    model_config = ConfigDict(extra="ignore")

    transaction_type: Text | None = None
    quantity: Quantity | None = None
    price: Price | None = None


class KiteGtt(BaseModel):
    """A Kite GTT object (`GET /gtt/triggers`): the fields reconciliation reads; the rest is dropped."""

    model_config = ConfigDict(extra="ignore")

    id: Annotated[int, Field(ge=0, le=2**63 - 1)]
    status: Text | None = None
    condition: KiteGttCondition
    orders: list[KiteGttOrder] = Field(default_factory=list, max_length=2)


class UnresolvedFill(BaseModel):
    """A working signal whose broker order the agent found nowhere at Kite (its GTT triggered)."""

    model_config = ConfigDict(extra="forbid")

    signal_id: int = Field(ge=1, le=MAX_ID)
    order_id: str | None = Field(default=None, max_length=64)
    gtt_id: str | None = Field(default=None, max_length=64)
    detail: str = Field(default="", max_length=1000)
    since: str | None = Field(default=None, max_length=40, description="when it began: an ISO 8601 timestamp")

    @field_validator("since")
    @classmethod
    def _since(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                datetime.fromisoformat(v.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError("since must be an ISO 8601 timestamp (2026-12-01T09:15:00+05:30)") from None
        return v


class BrokerOrdersBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gtts: list[KiteGtt] = Field(default_factory=list, max_length=5000)
    unresolved: list[UnresolvedFill] = Field(default_factory=list, max_length=1000)


@router.post("/sync-gtts", **answers(OrdersSynced),
             summary="The broker's GTTs (Kite's GTT objects) and the fills the agent cannot resolve")
def sync_gtts(body: BrokerOrdersBody, request: Request, agent: Agent, platform: PlatformDep) -> dict[str, Any]:
    """Recorded when it differs from the last push; the reconciliation compares each open live position's
    stop, target and quantity with its protective GTT and lists the unresolved fills."""
    gtts = tuple(g.model_dump() for g in body.gtts)
    unresolved = tuple(u.model_dump() for u in body.unresolved)
    recorded = dispatch(request, platform, am.SyncBrokerOrders(agent.account_id, gtts, unresolved), agent).value
    return {"recorded": recorded, "gtts": len(gtts), "unresolved": len(unresolved)}


@router.get("/pending-token", **answers(PendingTokenPublic),
            summary="A pending Kite request_token to exchange (204 when none)",
            responses={204: {"description": "nothing pending"}})
def pending_token(request: Request, agent: Agent, platform: PlatformDep) -> Any:
    """Single use: the token is handed out once. `checksum` = sha256(api_key + request_token + api_secret),
    computed by the server so the api_secret need not be on the agent's machine."""
    pending: PendingToken | None = dispatch(request, platform, am.TakePendingToken(agent.account_id), agent).value
    if pending is None:
        return Response(status_code=204)
    return {"request_token": pending.request_token, "api_key": pending.api_key, "checksum": pending.checksum}


@router.post("/access-token", **answers(BrokerStatus),
             summary="The freshly exchanged Kite access token (stored encrypted)")
def access_token(body: AccessTokenBody, request: Request, agent: Agent, platform: PlatformDep) -> dict[str, Any]:
    """Connects the account's broker session (the tick feed switches to Kite); answers the broker status."""
    result = dispatch(request, platform, am.ConnectBrokerSession(agent.account_id, body.access_token, body.user_id,
                                                                 body.expires_at), agent)
    proxy = getattr(request.app.state, "broker_proxy", None)
    if proxy is not None:
        proxy.forget(agent.account_id)
    hub = getattr(request.app.state, "tick_hub", None)
    if hub is not None:
        hub.broker_changed()
    return _status_answer(platform, result, agent.account_id)


def _status_answer(platform: Platform, result: CommandResult, account_id: int) -> dict[str, Any]:
    with answer_rows(platform, result, BrokerProjection, [BrokerConnection.uuid_for(account_id)]) as conn:
        return broker_status(conn, account_id)


@router.get("/session", **answers(AgentSessionPublic),
            summary="The account's live Kite session for the agent: api_key and access token (204 when "
                                "none)", responses={204: {"description": "no live broker session"}})
def session(agent: Agent, platform: PlatformDep) -> Any:
    """Lets a restarted agent resume without a new login. Not part of the public contract (an extension)."""
    from datetime import UTC, datetime

    with platform.db.read() as conn:
        row = get_connection(conn, agent.account_id)
    token = platform.bus.deps.secrets.get(agent.account_id, ACCESS_TOKEN, datetime.now(UTC))
    if row is None or token is None or not row["api_key"]:
        return Response(status_code=204)
    return {"api_key": row["api_key"], "access_token": token, "user_id": row["user_id"],
            "expires_at": row["expires_at"]}


class SessionInvalidBody(BaseModel):
    model_config = ConfigDict(extra="forbid")  # the agent sends {"reason"} only; anything else is a 422

    reason: str | None = Field(default=None, max_length=5000)


@router.post("/session-invalid", **answers(BrokerStatus),
             summary="Kite rejected the access token (TokenException): disconnect")
def session_invalid(request: Request, agent: Agent, platform: PlatformDep,
                    body: SessionInvalidBody | None = None) -> dict[str, Any]:
    """Optional body `{"reason"}`; the user is told to log in to Kite again. Answers the broker status."""
    reason = ((body.reason if body else None) or "Kite rejected the access token")[:500]
    result = dispatch(request, platform, am.DisconnectBrokerSession(agent.account_id, reason), agent)
    return _status_answer(platform, result, agent.account_id)
