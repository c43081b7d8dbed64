"""Family groups: create, invite by email, accept, leave, remove; consolidated totals for members.

A group a caller is not a member of is 404 (its existence does not leak). Consolidated figures count
accepted members only and show each member's totals, never their trades or lots.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from fastapi import Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.analytics_access import analytics_store, market_marks
from api.deps import IdPath, PlatformDep, Reader, SessionUser, answer_rows, dispatch, resource_router
from api.public.analytics import (
    ConsolidatedPublic,
    FamilyGroupPublic,
    InvitationPublic,
    InvitedPublic,
)
from api.public.base import answers
from commands import imports_messages as im
from commands.bus import CommandResult
from domain.errors import DomainError, NotFound
from domain.family import FamilyGroup
from domain.xirr import xirr
from infra.analytics.queries import cash_flows, holdings, summary
from infra.bootstrap import Platform
from projections.family import FamilyProjection, group_members, group_name, groups_of, invitations_for

router = resource_router("/api/family", ["family groups"])

TOP_HOLDINGS = 10


class GroupCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=120)


class InviteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=3, max_length=320)


class AcceptBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str | None = Field(default=None, max_length=200)


def _group_doc(platform: Platform, result: CommandResult, group_id: int, account_id: int) -> dict[str, Any]:
    """The group as the command left it (the group's own events replayed while the read model lags)."""
    with answer_rows(platform, result, FamilyProjection, [FamilyGroup.uuid_for(group_id)]) as conn:
        for g in groups_of(conn, account_id):
            if g["id"] == group_id:
                return g
    raise NotFound(f"Family group {group_id} not found")


@router.get("/groups", **answers(list[FamilyGroupPublic]),
            summary="The groups you belong to, with members and pending invitations")
def list_groups(user: Reader, platform: PlatformDep) -> list[dict[str, Any]]:
    """Each group with your role, its members and (for the owner) its pending invitations."""
    with platform.db.read() as conn:
        return groups_of(conn, user.account_id)


@router.post("/groups", status_code=201, **answers(FamilyGroupPublic), summary="Create a group (you are its owner)")
async def create_group(body: GroupCreate, request: Request, user: SessionUser, platform: PlatformDep) -> dict[str, Any]:
    """The group answers as the command left it."""
    cmd = im.CreateFamilyGroup(user.account_id, user.email, body.name)
    result = await run_in_threadpool(dispatch, request, platform, cmd, user)
    return _group_doc(platform, result, int(result.value), user.account_id)


@router.post("/groups/{group_id}/invite", status_code=201, **answers(InvitedPublic),
             summary="Invite by email (owner only)")
async def invite(group_id: IdPath, body: InviteBody, request: Request, user: SessionUser,
                 platform: PlatformDep) -> dict[str, Any]:
    """Emails a link with a one-time token (`email_sent` says whether it went out); rate-limited."""
    result = await run_in_threadpool(dispatch, request, platform, im.InviteFamilyMember(user.account_id, group_id,
                                                                                         body.email), user)
    return dict(result.value)


@router.post("/groups/{group_id}/accept", **answers(FamilyGroupPublic),
             summary="Accept your invitation (the emailed token, or as the invited email)")
async def accept(group_id: IdPath, request: Request, user: SessionUser, platform: PlatformDep,
                 token: str | None = Query(default=None, max_length=200), body: AcceptBody | None = None,
                 ) -> dict[str, Any]:
    """The token in the body or the query; without one, signed in as the invited email. Answers the group."""
    tok = (body.token if body and body.token else None) or token
    cmd = im.AcceptFamilyInvitation(user.account_id, user.email, group_id, tok)
    result = await run_in_threadpool(dispatch, request, platform, cmd, user)
    return _group_doc(platform, result, group_id, user.account_id)


@router.post("/groups/{group_id}/leave", status_code=204, summary="Leave a group (members other than the owner)")
async def leave(group_id: IdPath, request: Request, user: SessionUser, platform: PlatformDep) -> Response:
    """The owner cannot leave (a 400): remove the others, or keep the group."""
    await run_in_threadpool(dispatch, request, platform, im.LeaveFamilyGroup(user.account_id, group_id), user)
    return Response(status_code=204)


@router.delete("/groups/{group_id}/members/{account_id}", status_code=204, summary="Remove a member (owner only)")
async def remove(group_id: IdPath, account_id: IdPath, request: Request, user: SessionUser,
                 platform: PlatformDep) -> Response:
    """The member no longer sees the group or is counted in its totals."""
    cmd = im.RemoveFamilyMember(user.account_id, group_id, account_id)
    await run_in_threadpool(dispatch, request, platform, cmd, user)
    return Response(status_code=204)


@router.get("/invitations", **answers(list[InvitationPublic]), summary="Pending invitations to your email")
def my_invitations(user: Reader, platform: PlatformDep) -> list[dict[str, Any]]:
    """Accept one with POST /api/family/groups/{group_id}/accept."""
    with platform.db.read() as conn:
        return invitations_for(conn, user.email.lower())


_TOTALS = ("invested", "current_value", "realized_pnl", "unrealized_pnl")


@router.get("/consolidated", **answers(ConsolidatedPublic),
            summary="Family-wide totals: per member and total, top holdings across members")
def consolidated(request: Request, user: Reader, platform: PlatformDep,
                 group_id: int | None = Query(default=None, ge=1, le=2**63 - 1)) -> dict[str, Any]:
    """Each member's invested, current value, P&L and XIRR (imported trades and CAS holdings), the family's
    totals and XIRR over every member's cash flows, and the largest holdings across members. In several groups,
    name `group_id` (else a 400)."""
    with platform.db.read() as conn:
        mine = groups_of(conn, user.account_id)
        if group_id is None:
            if not mine:
                raise NotFound("You are not in a family group")
            if len(mine) > 1:
                raise DomainError("You are in several family groups: give group_id")
            group_id = int(mine[0]["id"])
        if all(g["id"] != group_id for g in mine):
            raise NotFound(f"Family group {group_id} not found")
        members = group_members(conn, group_id)
        name = group_name(conn, group_id)
    store = analytics_store(request)
    marks = market_marks(platform)
    per_member: list[dict[str, Any]] = []
    all_flows: list[tuple[str, float]] = []
    combined: dict[tuple[str, str], dict[str, Any]] = {}
    holders: dict[tuple[str, str], set[int]] = defaultdict(set)
    for m in members:
        snap = store.snapshot(m["account_id"])
        with store.connect([snap]) as con:
            s = summary(con, marks)
            held = holdings(con, marks)
            flows, _ = cash_flows(con, held)
        all_flows.extend(flows)
        per_member.append({**m, **{k: s[k] for k in _TOTALS}, "xirr": s["xirr"],
                           "equity": s["equity"], "mutual_funds": s["mutual_funds"]})
        for h in held:
            key = (h["asset_class"], h["isin"] or h["symbol"])
            c = combined.setdefault(key, {"asset_class": h["asset_class"], "symbol": h["symbol"], "isin": h["isin"],
                                          "quantity": 0.0, "invested": 0.0, "current_value": 0.0})
            c["quantity"] += h["quantity"] or 0
            c["invested"] = round(c["invested"] + (h["invested"] or 0), 2)
            c["current_value"] = round(c["current_value"] + (h["current_value"] or 0), 2)
            holders[key].add(m["account_id"])
    total: dict[str, Any] = {k: round(sum(p[k] for p in per_member), 2) for k in _TOTALS}
    for part in ("equity", "mutual_funds"):
        total[part] = {k: round(sum(p[part][k] for p in per_member), 2)
                       for k in ("invested", "current_value", "unrealized_pnl")}
    rate = xirr(all_flows) if all_flows else None
    total["xirr"] = round(rate * 100, 2) if rate is not None else None
    top = sorted(combined.values(), key=lambda c: -c["current_value"])[:TOP_HOLDINGS]
    for c in top:
        c["members"] = len(holders[(c["asset_class"], c["isin"] or c["symbol"])])
    return {"group_id": group_id, "name": name, "members": per_member, "total": total, "top_holdings": top}
