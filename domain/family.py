"""The FamilyGroup aggregate: a group of accounts that share consolidated totals (never trades).

Invitations go to an email with a one-time token; only the token's hash is kept in the event. The invitee
accepts with that token (the emailed link), or, signed in with the invited email, from their account.
Only accepted members count, and only members may see the group.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from domain.aggregate import Aggregate, aggregate_uuid
from domain.errors import Conflict, DomainError, Forbidden, NotFound
from domain.events import DomainEvent


@dataclass(frozen=True)
class FamilyGroupCreated(DomainEvent):
    group_id: int
    name: str
    owner_id: int
    owner_email: str
    at: str


@dataclass(frozen=True)
class FamilyMemberInvited(DomainEvent):
    invitation_id: int
    email: str
    token_hash: str
    invited_by: int
    expires_at: str
    at: str


@dataclass(frozen=True)
class FamilyInvitationAccepted(DomainEvent):
    invitation_id: int
    account_id: int
    email: str
    at: str


@dataclass(frozen=True)
class FamilyMemberLeft(DomainEvent):
    account_id: int
    at: str


@dataclass(frozen=True)
class FamilyMemberRemoved(DomainEvent):
    account_id: int
    removed_by: int
    at: str


@dataclass
class Invitation:
    invitation_id: int
    email: str
    token_hash: str
    expires_at: str
    status: str  # pending | accepted


class FamilyGroup(Aggregate):
    aggregate_type = "FamilyGroup"

    group_id: int
    name: str
    owner_id: int
    members: dict[int, str]  # account id -> email (accepted members, the owner included)
    invitations: dict[int, Invitation]

    @staticmethod
    def uuid_for(group_id: int) -> uuid.UUID:
        return aggregate_uuid("family_group", group_id)

    @classmethod
    def create(cls, group_id: int, name: str, owner_id: int, owner_email: str, at: str) -> FamilyGroup:
        name = name.strip()
        if not name:
            raise DomainError("A family group needs a name")
        g = cls(cls.uuid_for(group_id))
        g._record(FamilyGroupCreated(group_id, name, owner_id, owner_email, at))
        return g

    def when_FamilyGroupCreated(self, e: FamilyGroupCreated) -> None:
        self.group_id = e.group_id
        self.name = e.name
        self.owner_id = e.owner_id
        self.account_id = e.owner_id
        self.members = {e.owner_id: e.owner_email}
        self.invitations = {}

    def require_member(self, account_id: int) -> None:
        """NotFound for a non-member: a group's existence does not leak."""
        if account_id not in self.members:
            raise NotFound(f"Family group {self.group_id} not found")

    def invite(self, invitation_id: int, email: str, token_hash: str, invited_by: int, expires_at: str,
               at: str) -> None:
        self.require_member(invited_by)
        if invited_by != self.owner_id:
            raise Forbidden("Only the group's owner can invite")
        if email in self.members.values():
            raise Conflict("That address is already a member of this group")  # never the address sent back
        self._record(FamilyMemberInvited(invitation_id, email, token_hash, invited_by, expires_at, at))

    def when_FamilyMemberInvited(self, e: FamilyMemberInvited) -> None:
        # A new invitation to the same email replaces the pending one (its link stops working).
        for inv in self.invitations.values():
            if inv.email == e.email and inv.status == "pending":
                inv.status = "replaced"
        self.invitations[e.invitation_id] = Invitation(e.invitation_id, e.email, e.token_hash, e.expires_at, "pending")

    def pending_for(self, email: str, token_hash: str | None, now: str) -> Invitation:
        """The live invitation this caller may accept: by the emailed token, or by the invited email."""
        for inv in self.invitations.values():
            if inv.status != "pending" or inv.expires_at < now:
                continue
            if token_hash is not None and inv.token_hash == token_hash:
                return inv
            if token_hash is None and inv.email == email:
                return inv
        if not any(inv.email == email or (token_hash is not None and inv.token_hash == token_hash)
                   for inv in self.invitations.values()):
            raise NotFound(f"Family group {self.group_id} not found")  # never invited: existence does not leak
        raise DomainError("No valid invitation to this group for you (it may have expired, been used or "
                          "been replaced); ask the owner to invite you again")

    def accept(self, account_id: int, email: str, token_hash: str | None, at: str) -> None:
        if account_id in self.members:
            raise Conflict("You are already a member of this group")
        inv = self.pending_for(email, token_hash, at)
        if token_hash is not None and inv.email != email:
            raise Forbidden("This invitation was sent to another email address; sign in with that one")
        self._record(FamilyInvitationAccepted(inv.invitation_id, account_id, email, at))

    def when_FamilyInvitationAccepted(self, e: FamilyInvitationAccepted) -> None:
        self.invitations[e.invitation_id].status = "accepted"
        self.members[e.account_id] = e.email

    def leave(self, account_id: int, at: str) -> None:
        self.require_member(account_id)
        if account_id == self.owner_id:
            raise DomainError("The owner cannot leave the group; remove the other members first, or keep it")
        self._record(FamilyMemberLeft(account_id, at))

    def when_FamilyMemberLeft(self, e: FamilyMemberLeft) -> None:
        self.members.pop(e.account_id, None)

    def remove(self, account_id: int, by: int, at: str) -> None:
        self.require_member(by)
        if by != self.owner_id:
            raise Forbidden("Only the group's owner can remove members")
        if account_id == self.owner_id:
            raise DomainError("The owner cannot remove themselves")
        if account_id not in self.members:
            raise NotFound(f"Account {account_id} is not a member of this group")
        self._record(FamilyMemberRemoved(account_id, by, at))

    def when_FamilyMemberRemoved(self, e: FamilyMemberRemoved) -> None:
        self.members.pop(e.account_id, None)
