"""Model portfolios, scans, signals, the cart and positions (API "Model portfolios", "Signals",
"Positions"). Another user's portfolio, signal or position is 404; every change is a command."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from api.dashboard import portfolio_dashboard
from api.deps import (
    IdPath,
    PageDep,
    PlatformDep,
    Principal,
    Reader,
    SessionUser,
    SignalPageDep,
    answer_rows,
    dispatch,
    note_projection_lag,
    request_meta,
    resource_router,
)
from api.errors import schema_error
from api.guards import MAX_ID
from api.ownership import Homes, OwnedPortfolio, PositionHome, SignalHomes, signal_home, stored_portfolios
from api.public.base import answers
from api.public.portfolios import (
    ActivityPublic,
    CartPlacedPublic,
    ClosedPositionPublic,
    DashboardPublic,
    PortfolioPublic,
    PositionPublic,
    ScanPublic,
    SignalPublic,
)
from backtest.requests import MAX_CAPITAL, MIN_CAPITAL
from commands import messages as m
from commands.bus import CommandResult
from commands.market_clock import MarketClock
from domain.errors import NotFound
from domain.portfolio.aggregate import Portfolio
from infra.bootstrap import Platform
from projections.audit import utc_moment
from projections.joined import signals_with_fills
from projections.portfolios.projector import PortfoliosProjection
from projections.portfolios.queries import (
    account_activity,
    get_portfolio,
    get_position,
    get_signal,
    get_signals,
    list_portfolios,
    list_positions,
)

router = resource_router("/api/model", ["model portfolios"])

PortfolioStatus = Literal["active", "paused", "retired"]
SignalStatus = Literal["pending_approval", "in_cart", "placed", "executed", "failed", "rejected", "expired"]


class DeployBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    strategy_id: int = Field(ge=1, le=MAX_ID)
    name: str = Field(min_length=1, max_length=120)
    mode: Literal["paper", "live"] = "paper"
    capital: float = Field(ge=MIN_CAPITAL, le=MAX_CAPITAL, description="₹, from 1,000 to 10^12")
    universe: str = Field(default="nifty_100", max_length=64)
    position_size_pct: float = Field(default=10.0, gt=0, le=100)
    max_positions: int = Field(default=10, ge=1, le=500)
    max_per_sector: int | None = Field(default=None, ge=1, le=500)
    auto_approve: bool = False
    slippage_bps: float = Field(default=0.0, ge=0, le=1000)
    charges: Literal["zerodha_delivery", "none"] = "zerodha_delivery"


class ScanBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    portfolio_id: int | None = Field(default=None, ge=1, le=MAX_ID)


class CartBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    portfolio_id: int | None = Field(default=None, ge=1, le=MAX_ID)


class DecisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=500)


class CloseBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quantity: int | None = Field(default=None, ge=1, le=10**9,
                                 description="sell only this many shares (a partial close); omitted: all")


# ------------------------------------------------------------------ lookups (ownership on every object)


def _portfolio_answer(platform: Platform, result: CommandResult, portfolio_id: int,
                      account_id: int) -> dict[str, Any]:
    """A command's answer about one portfolio: the read model once it applied the command, else the
    portfolio's own events replayed (never a read model that lags)."""
    with answer_rows(platform, result, PortfoliosProjection, [Portfolio.uuid_for(portfolio_id)]) as conn:
        row = get_portfolio(conn, portfolio_id)
    if row is None or row["account_id"] != account_id:
        raise NotFound(f"Portfolio {portfolio_id} not found")
    return row


# ------------------------------------------------------------------ portfolios


@router.get("/portfolios", **answers(list[PortfolioPublic]),
            summary="Your active and paused portfolios (or those with `status`)",
            responses={200: {"headers": {"X-Total-Count": {"description": "rows matching the filter"}}}})
def portfolios(user: Reader, page: PageDep, response: Response, platform: PlatformDep,
               status: PortfolioStatus | None = None) -> list[dict[str, Any]]:
    """Newest first, each with its money (capital, cash, invested, equity, P&L) and counts of open positions,
    pending and in-cart signals."""
    with platform.db.read() as conn:
        rows, total = list_portfolios(conn, user.account_id, status, page.limit, page.offset)
    response.headers["X-Total-Count"] = str(total)
    return rows


@router.post("/portfolios/deploy", status_code=201, **answers(PortfolioPublic),
             summary="Deploy a strategy as a paper or live portfolio")
def deploy(body: DeployBody, request: Request, user: SessionUser, platform: PlatformDep) -> dict[str, Any]:
    """The strategy (yours, a template or a shared one) is copied into the portfolio as it is now; the
    portfolio answers as the command left it."""
    cmd = m.DeployPortfolio(user.account_id, body.strategy_id, body.name, body.mode, body.capital, body.universe,
                            body.position_size_pct, body.max_positions, body.max_per_sector, body.auto_approve,
                            body.slippage_bps, body.charges)
    result = dispatch(request, platform, cmd, user)
    return _portfolio_answer(platform, result, int(result.value), user.account_id)


def _status_change(action: str, portfolio_id: int, request: Request, user: Principal,
                   platform: Platform) -> dict[str, Any]:
    # (the command finds the portfolio as the caller's, or it is a 404)
    result = dispatch(request, platform, m.ChangePortfolioStatus(user.account_id, portfolio_id, action), user)
    return _portfolio_answer(platform, result, portfolio_id, user.account_id)


@router.post("/portfolios/{portfolio_id}/pause", **answers(PortfolioPublic),
             summary="Stop new entries (exits are still managed)")
def pause(portfolio_id: IdPath, request: Request, user: SessionUser, platform: PlatformDep) -> dict[str, Any]:
    """active -> paused; pausing a paused portfolio is a 400."""
    return _status_change("pause", portfolio_id, request, user, platform)


@router.post("/portfolios/{portfolio_id}/resume", **answers(PortfolioPublic), summary="Take new entries again")
def resume(portfolio_id: IdPath, request: Request, user: SessionUser, platform: PlatformDep) -> dict[str, Any]:
    """paused -> active; the next scan steps it through the days it missed."""
    return _status_change("resume", portfolio_id, request, user, platform)


@router.post("/portfolios/{portfolio_id}/retire", **answers(PortfolioPublic),
             summary="Retire (409 while positions are open)")
def retire(portfolio_id: IdPath, request: Request, user: SessionUser, platform: PlatformDep) -> dict[str, Any]:
    """For good: a retired portfolio is listed only with `status=retired`."""
    return _status_change("retire", portfolio_id, request, user, platform)


@router.post("/portfolios/{portfolio_id}/reset", **answers(PortfolioPublic),
             summary="Paper only: back to the initial capital")
def reset(portfolio_id: IdPath, request: Request, user: SessionUser, platform: PlatformDep) -> dict[str, Any]:
    """Open positions and waiting signals are set aside, the equity curve starts again; a live portfolio is a
    400."""
    return _status_change("reset", portfolio_id, request, user, platform)


@router.get("/dashboard", **answers(DashboardPublic),
            summary="One portfolio's dashboard: money, positions, signals, curve, activity, risk")
def dashboard(user: Reader, platform: PlatformDep, pf: OwnedPortfolio) -> dict[str, Any]:
    """Everything the portfolio page shows in one answer: the money, open positions with their last price,
    waiting signals, the daily equity curve, the latest 50 activity entries, today's risk state and, for a
    live portfolio, its drift against the broker."""
    return portfolio_dashboard(platform, user.account_id, pf)


@router.get("/activity", **answers(list[ActivityPublic]),
            summary="What happened in all your portfolios, newest first (optionally since a moment)")
def account_activity_feed(user: Reader, page: PageDep, platform: PlatformDep,
                          since: str | None = Query(default=None, max_length=40,
                                                    description="ISO 8601 timestamp (no offset: UTC) or a date")
                          ) -> list[dict[str, Any]]:
    """The activity of every portfolio of yours merged (each entry names its `portfolio_id`): Home's "today"."""
    moment = None
    if since is not None:
        try:
            moment = utc_moment(since)
        except ValueError:
            raise schema_error(("query", "since"), "since must be a date (YYYY-MM-DD) or an ISO 8601 timestamp") \
                from None
    with platform.db.read() as conn:
        return account_activity(conn, user.account_id, moment, page.limit)


@router.post("/scan", **answers(ScanPublic), summary="Scan now on the latest bars; returns the new signals")
def scan(request: Request, user: SessionUser, platform: PlatformDep, homes: Homes,
         body: ScanBody | None = None) -> dict[str, Any]:
    """Every active portfolio (or `portfolio_id`) is first stepped through the stored days it missed (fills,
    exits, expiries), then scanned on the latest day."""
    clock: MarketClock = request.app.state.market_clock
    stored = stored_portfolios(platform, user.account_id)  # (the read model may not show a new one yet)
    if body is not None and body.portfolio_id is not None:
        if body.portfolio_id not in {pid for pid, *_ in stored}:
            raise NotFound(f"Portfolio {body.portfolio_id} not found")
        targets = [body.portfolio_id]
    else:
        targets = [pid for pid, status, *_ in stored if status == "active"]
    meta = request_meta(request, user)
    new_ids: list[int] = []
    days: set[str] = set()
    position: int | None = None
    for pid in targets:
        report = clock.advance_portfolio(pid, meta)
        new_ids.extend(report.signals)
        days.update(report.days)
        position = report.position or position
    result = CommandResult(None, position, user.account_id, frozenset({user.account_id}))
    if not request.app.state.read_your_writes.wait(result.touched_accounts, position):
        note_projection_lag(request, position)
        result = CommandResult(None, position, user.account_id, result.touched_accounts, caught_up=False)
    with answer_rows(platform, result, PortfoliosProjection, [Portfolio.uuid_for(pid) for pid in targets]) as conn:
        found = get_signals(conn, sorted(new_ids))
    signals = [found[sid] for sid in sorted(new_ids) if sid in found]
    homes.learn(signals)
    return {"portfolios": targets, "days": sorted(days), "signals": signals}


# ------------------------------------------------------------------ signals and the cart


@router.get("/signals", **answers(list[SignalPublic]), summary="Your signals, newest first (entries and exits)",
            responses={200: {"headers": {"X-Total-Count": {"description": "rows matching"}}}})
def signals(homes: Homes, user: Reader, page: SignalPageDep, response: Response, platform: PlatformDep,
            portfolio_id: int | None = Query(default=None, ge=1, le=MAX_ID), status: SignalStatus | None = None,
            symbol: str | None = Query(default=None, max_length=32)) -> list[dict[str, Any]]:
    """Filtered by portfolio, status and symbol; a live signal whose triggered order the agent cannot find at
    Kite carries `fill_unresolved`."""
    with platform.db.read() as conn:
        rows, total = signals_with_fills(conn, user.account_id, portfolio_id=portfolio_id, status=status,
                                         symbol=symbol.strip().upper() if symbol else None, limit=page.limit,
                                         offset=page.offset)
    response.headers["X-Total-Count"] = str(total)
    homes.learn(rows)
    return rows


def _decide(action: str, signal_id: int, request: Request, user: Principal, platform: Platform, homes: SignalHomes,
            reason: str = "") -> dict[str, Any]:
    portfolio_id, result = homes.send(
        signal_id, user.account_id, lambda: signal_home(platform, signal_id, user.account_id),
        lambda pid: dispatch(request, platform, m.DecideSignal(user.account_id, pid, signal_id, action, reason), user))
    with answer_rows(platform, result, PortfoliosProjection, [Portfolio.uuid_for(portfolio_id)]) as conn:
        row = get_signal(conn, signal_id)
    if row is None or row["account_id"] != user.account_id:
        raise NotFound(f"Signal {signal_id} not found")
    homes.learn([row])
    return row


@router.post("/signals/{signal_id}/approve", **answers(SignalPublic),
             summary="pending_approval -> in_cart (risk rules checked)")
def approve(signal_id: IdPath, request: Request, user: SessionUser, platform: PlatformDep,
            homes: Homes) -> dict[str, Any]:
    """A risk rule that refuses it is a 400 naming the rule; the signal answers as the command left it."""
    return _decide("approve", signal_id, request, user, platform, homes)


@router.post("/signals/{signal_id}/reject", **answers(SignalPublic),
             summary="pending_approval or in_cart -> rejected")
def reject(signal_id: IdPath, request: Request, user: SessionUser, platform: PlatformDep, homes: Homes,
           body: DecisionBody | None = None) -> dict[str, Any]:
    """Optional body `{"reason"}`; the signal answers as the command left it."""
    return _decide("reject", signal_id, request, user, platform, homes, body.reason if body else "")


@router.post("/signals/{signal_id}/expire", **answers(SignalPublic),
             summary="pending_approval or in_cart -> expired")
def expire(signal_id: IdPath, request: Request, user: SessionUser, platform: PlatformDep, homes: Homes,
           body: DecisionBody | None = None) -> dict[str, Any]:
    """Optional body `{"reason"}`; the signal answers as the command left it."""
    return _decide("expire", signal_id, request, user, platform, homes, body.reason if body else "")


@router.post("/cart/place", **answers(CartPlacedPublic),
             summary="Place every in-cart signal (paper: simulated GTT; live: queued for the agent)")
def place(request: Request, user: SessionUser, platform: PlatformDep, body: CartBody | None = None) -> dict[str, Any]:
    """Of every portfolio, or of `portfolio_id`; risk rules are checked again and a refused signal stays
    in_cart (`refused`, with the reason)."""
    portfolio_id = body.portfolio_id if body else None
    # the command finds the in-cart signals in the portfolios themselves (never in a read model that may
    # not show the latest approvals); another user's portfolio is a 404
    result = dispatch(request, platform, m.PlaceCart(user.account_id, (), portfolio_id), user,
                      serial=("riskbook", user.account_id))
    outcome: dict[str, list[dict[str, Any]]] = result.value
    placed_in = sorted({int(p["portfolio_id"]) for p in outcome["placed"]})
    with answer_rows(platform, result, PortfoliosProjection, [Portfolio.uuid_for(pid) for pid in placed_in]) as conn:
        rows = get_signals(conn, [int(p["signal_id"]) for p in outcome["placed"]])
    return {"placed": [rows.get(int(p["signal_id"]), p) for p in outcome["placed"]], "refused": outcome["refused"]}


# ------------------------------------------------------------------ positions


@router.get("/positions", **answers(list[PositionPublic]), summary="Your positions, newest first",
            responses={200: {"headers": {"X-Total-Count": {"description": "rows matching"}}}})
def positions(user: Reader, page: PageDep, response: Response, platform: PlatformDep,
              portfolio_id: int | None = Query(default=None, ge=1, le=MAX_ID),
              status: Literal["open", "closed"] | None = None) -> list[dict[str, Any]]:
    """Open ones with their last price and unrealized P&L, closed ones with exit price, reason and realized
    P&L net of charges; filtered by portfolio and status."""
    with platform.db.read() as conn:
        rows, total = list_positions(conn, user.account_id, portfolio_id, status, page.limit, page.offset)
    response.headers["X-Total-Count"] = str(total)
    return rows


@router.post("/positions/{position_id}/close", **answers(ClosedPositionPublic),
             summary="Paper: close at the latest price now; live: queue an exit for the agent")
def close(position_id: IdPath, request: Request, user: SessionUser, platform: PlatformDep,
          portfolio_id: PositionHome, body: CloseBody | None = None) -> dict[str, Any]:
    """Optional body `{"quantity": N}` closes N shares only (paper: the sold shares become a closed position
    of their own; live: the agent sells N and re-arms the stop/target for the rest). A live position's
    working stop/target GTT is cancelled at Kite before the close order is placed (`outcome`:
    `closed`, `reduced` or `exit_queued`)."""
    if portfolio_id is None:  # (after the body's validation: a malformed body is a 422 either way)
        raise NotFound(f"Position {position_id} not found")
    quantity = None if body is None else body.quantity
    result = dispatch(request, platform,
                      m.ClosePosition(user.account_id, portfolio_id, position_id, quantity), user)
    with answer_rows(platform, result, PortfoliosProjection, [Portfolio.uuid_for(portfolio_id)]) as conn:
        row = get_position(conn, position_id)
    if row is None or row["account_id"] != user.account_id:
        raise NotFound(f"Position {position_id} not found")
    return {**row, "outcome": result.value}
