"""Family groups: create, invite by email (a one-time token, only its hash kept), accept, leave, remove."""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from email_validator import EmailNotValidError, validate_email

from commands import imports_messages as im
from commands.uow import UnitOfWork
from domain.errors import DomainError, TooManyRequests
from domain.family import FamilyGroup

INVITATION_DAYS = 7
log = logging.getLogger(__name__)


def _email(raw: str) -> str:
    """One plain address (no display name, no list, no line breaks), lower-cased."""
    try:
        valid = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError:
        raise DomainError("Give one valid email address, e.g. name@example.com") from None
    return str(valid.normalized).lower()


def _group(uow: UnitOfWork, group_id: int) -> FamilyGroup:
    return uow.get(FamilyGroup, FamilyGroup.uuid_for(group_id), f"Family group {group_id}")


def create_family_group(cmd: im.CreateFamilyGroup, uow: UnitOfWork) -> int:
    group_id = uow.deps.ids.next_id("family_group")
    now = uow.deps.clock.now().isoformat()
    uow.save(FamilyGroup.create(group_id, cmd.name, cmd.account_id, _email(cmd.email), now))
    return group_id


def invite_family_member(cmd: im.InviteFamilyMember, uow: UnitOfWork) -> dict[str, Any]:
    d = uow.deps
    email = _email(cmd.email)
    group = _group(uow, cmd.group_id)
    now = d.clock.now()
    if not d.security.rate_hit(f"family-invite:{cmd.account_id}", 86400, d.auth.invitations_per_day, now):
        raise TooManyRequests(f"At most {d.auth.invitations_per_day} invitations a day; try again tomorrow")
    token = secrets.token_urlsafe(32)
    invitation_id = d.ids.next_id("family_invitation")
    expires = now + timedelta(days=INVITATION_DAYS)
    group.invite(invitation_id, email, d.token_hash(f"family:{token}"), cmd.account_id, expires.isoformat(),
                 now.isoformat())
    uow.save(group)
    link = f"{d.auth.base_url.rstrip('/')}/link/family-invite?{urlencode({'group': cmd.group_id, 'token': token})}"
    inviter = group.members.get(cmd.account_id, "a TraderTape user")
    # sent after the invitation is saved; the subject holds no user text (a group name is not a header)
    mail = (email, "You are invited to a family group on TraderTape", (
        f"{inviter} invited you to join the family group {group.name!r} on TraderTape.\n\n"
        "Members see each other's consolidated totals (invested, current value, P&L, XIRR, top holdings), "
        "never individual trades.\n\n"
        f"To accept, open this link (it asks you to sign in with this email address first):\n{link}\n\n"
        f"The invitation expires in {INVITATION_DAYS} days.\n"))
    try:
        d.mailer.send(*mail)
        sent = True
    except Exception:  # the invitation stands: the invitee sees it under GET /api/family/invitations
        log.warning("family invitation %s saved but its email could not be sent", invitation_id, exc_info=True)
        sent = False
    return {"invitation_id": invitation_id, "group_id": cmd.group_id, "email": email, "status": "pending",
            "expires_at": expires.isoformat(), "email_sent": sent}


def accept_family_invitation(cmd: im.AcceptFamilyInvitation, uow: UnitOfWork) -> int:
    d = uow.deps
    group = _group(uow, cmd.group_id)
    token_hash = d.token_hash(f"family:{cmd.token}") if cmd.token else None
    group.accept(cmd.account_id, _email(cmd.email), token_hash, d.clock.now().isoformat())
    uow.save(group)
    return cmd.group_id


def leave_family_group(cmd: im.LeaveFamilyGroup, uow: UnitOfWork) -> int:
    group = _group(uow, cmd.group_id)
    group.leave(cmd.account_id, uow.deps.clock.now().isoformat())
    uow.save(group)
    return cmd.group_id


def remove_family_member(cmd: im.RemoveFamilyMember, uow: UnitOfWork) -> int:
    group = _group(uow, cmd.group_id)
    group.remove(cmd.member_id, cmd.account_id, uow.deps.clock.now().isoformat())
    uow.save(group)
    return cmd.group_id
