"""Family groups read model: groups, accepted members and invitations (no token hashes)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from projections.base import Projection
from projections.envelope import Envelope

metadata = sa.MetaData()

groups = sa.Table(
    "rm_family_groups", metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("aggregate_id", sa.String(36), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("owner_id", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
)
members = sa.Table(
    "rm_family_members", metadata,
    sa.Column("group_id", sa.BigInteger, primary_key=True),
    sa.Column("account_id", sa.BigInteger, primary_key=True, index=True),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("role", sa.String(8), nullable=False),
    sa.Column("joined_at", sa.String(40), nullable=False),
)
invitations = sa.Table(
    "rm_family_invitations", metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("group_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("email", sa.String(320), nullable=False, index=True),
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("invited_by", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.String(40), nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
)


class FamilyProjection(Projection):
    name = "family"
    metadata = metadata

    @staticmethod
    def _gid(conn: Connection, env: Envelope) -> int:
        return int(conn.execute(sa.select(groups.c.id).where(groups.c.aggregate_id == env.aggregate_id)).scalar_one())

    def on_FamilyGroupCreated(self, conn: Connection, env: Envelope) -> None:
        d = env.data
        conn.execute(sa.insert(groups), dict(id=d["group_id"], aggregate_id=env.aggregate_id, name=d["name"],
                                              owner_id=d["owner_id"], created_at=d["at"]))
        conn.execute(sa.insert(members), dict(group_id=d["group_id"], account_id=d["owner_id"],
                                               email=d["owner_email"], role="owner", joined_at=d["at"]))

    def on_FamilyMemberInvited(self, conn: Connection, env: Envelope) -> None:
        d = env.data
        gid = self._gid(conn, env)
        conn.execute(sa.update(invitations).where(invitations.c.group_id == gid, invitations.c.email == d["email"],
                                                  invitations.c.status == "pending").values(status="replaced"))
        conn.execute(sa.insert(invitations), dict(id=d["invitation_id"], group_id=gid, email=d["email"],
                                                   status="pending", invited_by=d["invited_by"],
                                                   expires_at=d["expires_at"], created_at=d["at"]))

    def on_FamilyInvitationAccepted(self, conn: Connection, env: Envelope) -> None:
        d = env.data
        gid = self._gid(conn, env)
        conn.execute(sa.update(invitations).where(invitations.c.id == d["invitation_id"]).values(status="accepted"))
        conn.execute(sa.insert(members), dict(group_id=gid, account_id=d["account_id"], email=d["email"],
                                               role="member", joined_at=d["at"]))

    def _drop_member(self, conn: Connection, env: Envelope) -> None:
        gid = self._gid(conn, env)
        conn.execute(sa.delete(members).where(members.c.group_id == gid,
                                              members.c.account_id == env.data["account_id"]))

    def on_FamilyMemberLeft(self, conn: Connection, env: Envelope) -> None:
        self._drop_member(conn, env)

    def on_FamilyMemberRemoved(self, conn: Connection, env: Envelope) -> None:
        self._drop_member(conn, env)


def groups_of(conn: Connection, account_id: int) -> list[dict[str, Any]]:
    m, g = members, groups
    rows = conn.execute(sa.select(g.c.id, g.c.name, g.c.owner_id, g.c.created_at, m.c.role)
                        .join(m, m.c.group_id == g.c.id).where(m.c.account_id == account_id).order_by(g.c.id)).all()
    out = []
    for r in rows:
        mem = conn.execute(sa.select(m.c.account_id, m.c.email, m.c.role, m.c.joined_at)
                           .where(m.c.group_id == r.id).order_by(m.c.joined_at, m.c.account_id)).all()
        pending = conn.execute(sa.select(invitations.c.id, invitations.c.email, invitations.c.expires_at)
                               .where(invitations.c.group_id == r.id, invitations.c.status == "pending")).all()
        out.append({"id": int(r.id), "name": r.name, "owner_id": int(r.owner_id), "role": r.role,
                    "created_at": r.created_at,
                    "members": [{"account_id": int(x.account_id), "email": x.email, "role": x.role,
                                 "joined_at": x.joined_at} for x in mem],
                    "pending_invitations": [{"id": int(x.id), "email": x.email, "expires_at": x.expires_at}
                                            for x in pending]})
    return out


def group_members(conn: Connection, group_id: int) -> list[dict[str, Any]]:
    m = members
    rows = conn.execute(sa.select(m.c.account_id, m.c.email, m.c.role).where(m.c.group_id == group_id)
                        .order_by(m.c.joined_at, m.c.account_id)).all()
    return [{"account_id": int(r.account_id), "email": r.email, "role": r.role} for r in rows]


def group_name(conn: Connection, group_id: int) -> str | None:
    return conn.execute(sa.select(groups.c.name).where(groups.c.id == group_id)).scalar()


def invitations_for(conn: Connection, email: str) -> list[dict[str, Any]]:
    i, g = invitations, groups
    rows = conn.execute(sa.select(i.c.id, i.c.group_id, g.c.name, i.c.status, i.c.expires_at, i.c.created_at)
                        .join(g, g.c.id == i.c.group_id).where(i.c.email == email, i.c.status == "pending")
                        .order_by(i.c.id)).all()
    return [{"id": int(r.id), "group_id": int(r.group_id), "group_name": r.name, "status": r.status,
             "expires_at": r.expires_at, "created_at": r.created_at} for r in rows]
