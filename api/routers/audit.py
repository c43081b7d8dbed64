"""Audit: the caller's events with their hash chain, a portfolio's causal timeline, and a portfolio as it
stood at any moment (rebuilt from its events up to then, never from today's read models)."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from fastapi import HTTPException, Query, Response

from api.deps import PageDep, PlatformDep, Reader, resource_router
from api.errors import schema_error
from api.guards import MAX_ID
from api.ownership import owned_portfolio
from api.public.audit import AsOfPublic, AuditEventPublic, TimelinePublic
from api.public.base import answers, as_built
from domain.aggregate import aggregate_uuid
from domain.errors import DomainError, NotFound
from domain.portfolio.aggregate import Portfolio
from domain.risk import RiskBook
from domain.status import PositionStatus
from infra.bootstrap import Platform
from projections.audit import AuditFilters, list_audit_events, portfolio_events, utc_moment
from projections.portfolios.queries import activity_summaries

router = resource_router("/api/audit", ["audit"])

# integer ids on the wire -> aggregate ids, per aggregate type (uuid5 over "kind:id")
KINDS = {"Portfolio": "portfolio", "Strategy": "strategy", "BacktestRun": "backtest_run", "RiskBook": "riskbook",
         "Account": "account", "FamilyGroup": "family_group", "BrokerConnection": "broker",
         "ImportBatch": "import_batch"}
STEPS = {
    "PortfolioDeployed": "deploy", "SignalGenerated": "signal", "SignalApproved": "approval",
    "SignalRejected": "rejection", "SignalExpired": "expiry", "OrderPlaced": "order", "OrderFailed": "order_failed",
    "EntryExpired": "order_expired", "FillRecorded": "fill", "PositionOpened": "position", "StopUpdated": "stop",
    "ExitSignalled": "exit_signal", "PositionClosed": "exit", "PortfolioPaused": "lifecycle",
    "PortfolioResumed": "lifecycle", "PortfolioRetired": "lifecycle", "PortfolioReset": "lifecycle",
    "RiskBreached": "risk", "PositionReduced": "exit",
    "ExitOrderFailed": "exit_failed", "ExitOrderCancelled": "exit_cancelled",
}


def _moment(text: str, end_of_day: bool = False, field: str = "from") -> str:
    try:
        return utc_moment(text, end_of_day)
    except ValueError as exc:
        raise schema_error(("query", field), str(exc)) from None


def _aggregate_id(aggregate_type: str | None, value: str) -> str:
    if value.isascii() and value.isdigit():  # not "²": str.isdigit accepts it, int() does not
        if aggregate_type not in KINDS:
            raise schema_error(("query", "aggregate_type"),
                               "an integer aggregate_id needs aggregate_type, one of: " + ", ".join(KINDS))
        return str(aggregate_uuid(KINDS[aggregate_type], int(value)))
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise schema_error(("query", "aggregate_id"), "aggregate_id is neither an integer id nor an aggregate UUID") \
            from None


def _with_hashes(platform: Platform, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    chain = platform.store.chain
    if chain is None or not rows:
        return rows
    chain.seal(max(r["position"] for r in rows))
    hashes = chain.hashes(r["position"] for r in rows)
    for r in rows:
        r["prev_hash"], r["hash"] = hashes.get(r["position"], ("", ""))
    return rows


@router.get("/events", **answers(list[AuditEventPublic]),
            summary="Your events, full envelopes with their hash chain (admins: any account)",
            responses={200: {"headers": {"X-Total-Count": {"description": "events matching the filters"}}}})
def events(
    user: Reader, page: PageDep, platform: PlatformDep,
    aggregate_type: str | None = Query(default=None, max_length=80),
    aggregate_id: str | None = Query(default=None, max_length=40,
                                     description="a UUID, or an integer id with aggregate_type"),
    type: str | None = Query(default=None, max_length=80, description="event type, e.g. SignalApproved"),
    from_: str | None = Query(default=None, alias="from", max_length=40, description="date or ISO timestamp"),
    to: str | None = Query(default=None, max_length=40),
    order: Literal["newest", "oldest", "desc", "asc"] = "newest",
    account_id: int | None = Query(default=None, ge=0, le=MAX_ID, description="admins only: another account"),
) -> Response:
    """Envelopes (type, aggregate, version, time, actor and request, data) with `prev_hash` and `hash`, the
    account's SHA-256 chain, filtered by aggregate, type and time; admins may name `account_id`."""
    if account_id is not None and account_id != user.account_id and not user.is_admin:
        raise HTTPException(403, "Only admins may read another account's events")
    since = _moment(from_) if from_ else None
    until = _moment(to, end_of_day=True, field="to") if to else None
    if since is not None and until is not None and until < since:
        raise HTTPException(400, "'to' is before 'from'")
    filters = AuditFilters(
        account_id=user.account_id if account_id is None else account_id,
        aggregate_type=aggregate_type,
        aggregate_id=_aggregate_id(aggregate_type, aggregate_id) if aggregate_id else None,
        type=type, since=since, until=until,
        newest_first=order in ("newest", "desc"),
    )
    with platform.db.read() as conn:
        rows, total = list_audit_events(conn, filters, page.limit, page.offset)
    # as built: an event stored before the edge refused lone surrogates still lists (api/public/base.py)
    return as_built(_with_hashes(platform, rows), headers={"X-Total-Count": str(total)})


def _cause(meta: dict[str, Any]) -> dict[str, Any]:
    actor = str(meta.get("actor", ""))
    kind, _, who = actor.partition(":")
    out: dict[str, Any] = {"kind": {"user": "user", "agent": "agent_key"}.get(kind, kind or "system"),
                           "actor": actor, "request_id": meta.get("request_id"),
                           "correlation_id": meta.get("correlation_id")}
    if who.isdigit():
        out["account_id"] = int(who)
    return out


@router.get("/timeline", **answers(TimelinePublic),
            summary="One portfolio's story: scan, signal, approval, order, fill, position, exit")
def timeline(user: Reader, platform: PlatformDep, portfolio_id: int = Query(ge=1, le=MAX_ID)) -> dict[str, Any]:
    """Each step with what caused it (user, agent key, scheduler; request and correlation ids) and the steps it
    follows, so a signal can be traced from the scan that proposed it to its exit."""
    pf = owned_portfolio(platform, portfolio_id, user.account_id) if not user.is_admin else None
    agg_id = str(aggregate_uuid("portfolio", portfolio_id))
    with platform.db.read() as conn:
        rows = portfolio_events(conn, agg_id, portfolio_id)
        summaries = activity_summaries(conn, [r["position"] for r in rows])
    if not rows and pf is None:
        raise NotFound(f"Portfolio {portfolio_id} not found")
    signal_of_position: dict[int, int] = {}
    last_of_signal: dict[int, int] = {}  # signal id -> position of its latest step (the causal chain)
    origin_of_signal: dict[int, int] = {}  # signal id -> position of the scan step that proposed it
    steps = []
    for r in rows:
        step = STEPS.get(r["type"])
        if step is None:
            continue  # the daily marks (DayClosed) are the equity curve, not steps
        d = r["data"]
        if r["type"] == "PositionOpened" and d.get("signal_id") is not None:
            signal_of_position[int(d["position_id"])] = int(d["signal_id"])
        position_id = d.get("position_id")
        signal_id = d.get("signal_id")
        if signal_id is None and position_id is not None:
            signal_id = signal_of_position.get(int(position_id))
        if r["type"] == "SignalGenerated":
            cause = _cause(r["meta"])
            cause["via"] = "scheduled scan" if cause["kind"] == "scheduler" else "scan on request"
        else:
            cause = _cause(r["meta"])
        follows = origin = None
        if signal_id is not None:
            follows = last_of_signal.get(int(signal_id))
            origin = origin_of_signal.setdefault(int(signal_id), r["position"])
            last_of_signal[int(signal_id)] = r["position"]
        steps.append({"position": r["position"], "at": r["occurred_at"], "step": step, "type": r["type"],
                      "signal_id": signal_id, "position_id": position_id, "caused_by": cause,
                      "follows": follows, "proposed_by": origin,
                      "summary": summaries.get(r["position"], r["type"]), "values": d})
    return {"portfolio_id": portfolio_id, "steps": steps}


def _signal_json(s: Any) -> dict[str, Any]:
    return {"id": s.signal_id, "symbol": s.symbol, "sector": s.sector, "status": s.status, "quantity": s.quantity,
            "conviction": s.conviction, "reference_price": s.reference_price, "limit_price": s.limit_price,
            "stop_loss": s.stop_loss, "target": s.target, "day": s.day, "fill_price": s.fill_price,
            "failure_reason": s.failure_reason, "position_id": s.position_id}


def _position_json(p: Any) -> dict[str, Any]:
    return {"id": p.position_id, "symbol": p.symbol, "sector": p.sector, "quantity": p.quantity,
            "avg_price": p.entry_price, "entry_date": p.entry_day, "stop_loss": p.stop_loss, "target": p.target,
            "status": p.status, "last_price": p.last_price, "exit_price": p.exit_price, "exit_date": p.exit_day,
            "exit_reason": p.exit_reason, "realized_pnl": p.realized_pnl,
            "unrealized_pnl": p.unrealized_pnl if p.status == PositionStatus.OPEN else None}


@router.get("/portfolios/{portfolio_id}/as-of", **answers(AsOfPublic),
            summary="The portfolio rebuilt from its events up to `at`")
def as_of(portfolio_id: int, user: Reader, platform: PlatformDep,
          at: str = Query(max_length=40, description="ISO 8601 timestamp (or a date: its end, UTC)")) -> dict[str, Any]:
    """Money, positions, signals and the risk rules in force then; before the portfolio existed is a 400."""
    if not 1 <= portfolio_id <= MAX_ID:
        raise NotFound(f"Portfolio {portfolio_id} not found")
    moment = _moment(at, end_of_day=True, field="at")
    agg_id = aggregate_uuid("portfolio", portfolio_id)
    history = platform.store.history(agg_id, until=moment)
    full = history or platform.store.history(agg_id)
    if not full:
        raise NotFound(f"Portfolio {portfolio_id} not found")
    owner = Portfolio.rehydrate(agg_id, [full[0][0]]).account_id
    if owner != user.account_id and not user.is_admin:
        raise NotFound(f"Portfolio {portfolio_id} not found")
    if not history:
        raise DomainError(f"Portfolio {portfolio_id} did not exist yet at {moment}; it was deployed at {full[0][1]}")
    pf = Portfolio.rehydrate(agg_id, [e for e, _ in history])
    book_events = platform.store.history(RiskBook.uuid_for(owner or 0), until=moment)
    book = RiskBook.rehydrate(RiskBook.uuid_for(owner or 0), [e for e, _ in book_events])
    rules = [r.to_json() for r in book.rules.values() if r.portfolio_id in (None, portfolio_id)]
    return {
        "portfolio_id": portfolio_id, "as_of": moment, "events_applied": len(history),
        "last_event_at": history[-1][1], "name": pf.name, "mode": pf.mode, "status": pf.status,
        "capital": pf.capital, "cash": pf.cash, "equity": pf.equity, "last_day": pf.last_day,
        "positions": [_position_json(p) for p in pf.open_positions.values()],
        "closed_positions": [_position_json(p) for p in pf.closed_positions],
        "signals": [_signal_json(s) for s in pf.signals.values()],
        "risk": {"rules": rules, "kill_switch": bool([r for r in rules if r["rule_type"] == "kill_switch"]),
                 "orders_on_last_day": book.orders_on(pf.last_day or "", portfolio_id) if pf.last_day else 0},
    }
