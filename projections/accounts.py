"""The accounts read model: profile fields the API shows, and admin's user list."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from projections.base import Projection, page
from projections.envelope import Envelope

metadata = sa.MetaData()
accounts = sa.Table(
    "rm_accounts", metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("email", sa.String(320), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("is_admin", sa.Boolean, nullable=False),
    sa.Column("has_password", sa.Boolean, nullable=False),
    sa.Column("agent_key_prefix", sa.String(16)),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("last_login_at", sa.String(40)),
)
# The Market page's watchlist (domain.watchlist): the symbols as a JSON array, in the trader's order.
watchlists = sa.Table(
    "rm_watchlists", metadata,
    sa.Column("account_id", sa.BigInteger, primary_key=True),
    sa.Column("symbols", sa.Text, nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
)


class AccountsProjection(Projection):
    name = "accounts"
    metadata = metadata

    def on_AccountRegistered(self, conn: Connection, env: Envelope) -> None:
        d = env.data
        conn.execute(sa.insert(accounts), dict(
            id=d["account_id"], email=d["email"], name=d["name"], is_admin=d["is_admin"],
            has_password=False, created_at=env.occurred_at,
        ))

    def _update(self, conn: Connection, env: Envelope, **values: Any) -> None:
        conn.execute(sa.update(accounts).where(accounts.c.id == env.account_id).values(**values))

    def on_LoggedIn(self, conn: Connection, env: Envelope) -> None:
        self._update(conn, env, last_login_at=env.occurred_at)

    def on_PasswordChanged(self, conn: Connection, env: Envelope) -> None:
        self._update(conn, env, has_password=True)

    def on_WatchlistSet(self, conn: Connection, env: Envelope) -> None:
        account_id = int(env.account_id or 0)
        conn.execute(sa.delete(watchlists).where(watchlists.c.account_id == account_id))
        conn.execute(sa.insert(watchlists), dict(account_id=account_id, symbols=json.dumps(env.data["symbols"]),
                                                 updated_at=env.data["at"]))

    def on_AgentKeyIssued(self, conn: Connection, env: Envelope) -> None:
        self._update(conn, env, agent_key_prefix=env.data["prefix"])

    def on_AgentKeyRevoked(self, conn: Connection, env: Envelope) -> None:
        self._update(conn, env, agent_key_prefix=None)

    def on_AdminGranted(self, conn: Connection, env: Envelope) -> None:
        self._update(conn, env, is_admin=True)


def get_account(conn: Connection, account_id: int) -> dict[str, Any] | None:
    row = conn.execute(sa.select(accounts).where(accounts.c.id == account_id)).first()
    return None if row is None else dict(row._mapping)


def list_accounts(conn: Connection, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    rows, total = page(sa.select(accounts).order_by(accounts.c.id), conn, limit, offset)
    return [dict(r._mapping) for r in rows], total


def watchlist_of(conn: Connection, account_id: int) -> tuple[list[str], str] | None:
    """The account's saved watchlist and when it was saved; None if it never changed the starter list."""
    row = conn.execute(sa.select(watchlists.c.symbols, watchlists.c.updated_at)
                       .where(watchlists.c.account_id == account_id)).first()
    return None if row is None else ([str(s) for s in json.loads(row.symbols)], str(row.updated_at))
