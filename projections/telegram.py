"""Telegram links read model: which chat each account linked (never codes or nonces)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from projections.base import Projection
from projections.envelope import Envelope

metadata = sa.MetaData()

links = sa.Table(
    "rm_telegram_links", metadata,
    sa.Column("account_id", sa.BigInteger, primary_key=True),
    sa.Column("chat_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("username", sa.String(64), nullable=False),
    sa.Column("linked_at", sa.String(40), nullable=False),
)


class TelegramLinksProjection(Projection):
    name = "telegram_links"
    metadata = metadata

    def on_TelegramLinked(self, conn: Connection, env: Envelope) -> None:
        account_id = int(env.account_id or 0)
        conn.execute(sa.delete(links).where(links.c.account_id == account_id))
        conn.execute(sa.insert(links), dict(account_id=account_id, chat_id=env.data["chat_id"],
                                            username=env.data["username"], linked_at=env.data["at"]))

    def on_TelegramUnlinked(self, conn: Connection, env: Envelope) -> None:
        conn.execute(sa.delete(links).where(links.c.account_id == int(env.account_id or 0)))


def link_of(conn: Connection, account_id: int) -> dict[str, Any] | None:
    row = conn.execute(sa.select(links).where(links.c.account_id == account_id)).first()
    return dict(row._mapping) if row is not None else None


def accounts_of_chat(conn: Connection, chat_id: int) -> list[int]:
    """The accounts `chat_id` is linked to (a chat may link several accounts; each acts for its own)."""
    return [int(a) for a in conn.execute(sa.select(links.c.account_id).where(links.c.chat_id == chat_id)
                                         .order_by(links.c.account_id)).scalars()]
