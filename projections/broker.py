"""The broker read models: each account's Kite connection (credentials saved, session status), the latest
holdings/positions snapshots and GTTs/unresolved fills the agent pushed; the queries over them below.

What joins these with the portfolios read model -- the reconciliation of live portfolios against the
snapshot, the signals with their unresolved fills, the agent's queue -- lives in `projections.joined`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from projections.base import Projection
from projections.envelope import Envelope

metadata = sa.MetaData()

connections = sa.Table(
    "rm_broker_connections", metadata,
    sa.Column("account_id", sa.BigInteger, primary_key=True),
    sa.Column("broker", sa.String(16), nullable=False),
    sa.Column("api_key", sa.String(64)),
    sa.Column("api_secret_masked", sa.String(32)),
    sa.Column("credentials_saved_at", sa.String(40)),
    sa.Column("connected", sa.Boolean, nullable=False),
    sa.Column("user_id", sa.String(64)),
    sa.Column("expires_at", sa.String(40)),
    sa.Column("source", sa.String(16)),
    sa.Column("disconnected_reason", sa.Text),
    sa.Column("last_login_at", sa.String(40)),
    sa.Column("holdings_synced_at", sa.String(40)),
    sa.Column("positions_synced_at", sa.String(40)),
    sa.Column("updated_at", sa.String(40), nullable=False),
)

broker_holdings = sa.Table(
    "rm_broker_holdings", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("account_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("exchange", sa.String(16), nullable=False),
    sa.Column("symbol", sa.String(64), nullable=False),
    sa.Column("product", sa.String(16)),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("t1_quantity", sa.Integer),
    sa.Column("average_price", sa.Float),
    sa.Column("last_price", sa.Float),
    sa.Column("isin", sa.String(16)),
)

broker_net_positions = sa.Table(
    "rm_broker_positions", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("account_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("exchange", sa.String(16), nullable=False),
    sa.Column("symbol", sa.String(64), nullable=False),
    sa.Column("product", sa.String(16)),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("average_price", sa.Float),
)


broker_orders = sa.Table(
    "rm_broker_orders", metadata,
    sa.Column("account_id", sa.BigInteger, primary_key=True),
    sa.Column("gtts", sa.Text, nullable=False),  # JSON: domain.broker.reduce_gtts
    sa.Column("unresolved", sa.Text, nullable=False),  # JSON: [{signal_id, order_id, gtt_id, detail, since}]
    sa.Column("synced_at", sa.String(40), nullable=False),
)


def _int(v: Any) -> int:
    try:
        return int(v or 0)
    except (TypeError, ValueError):
        return 0


def _float(v: Any) -> float | None:
    try:
        return None if v is None else float(v)
    except (TypeError, ValueError):
        return None


class BrokerProjection(Projection):
    name = "broker"
    metadata = metadata

    def create(self, conn: Connection) -> None:
        super().create(conn)
        # a database from before the `isin` column: add it (the next holdings snapshot fills it)
        columns = {c["name"] for c in sa.inspect(conn).get_columns(broker_holdings.name)}
        if "isin" not in columns:
            conn.execute(sa.text(f"ALTER TABLE {broker_holdings.name} ADD COLUMN isin VARCHAR(16)"))

    def _upsert(self, conn: Connection, env: Envelope, **values: Any) -> None:
        account_id = env.account_id
        c = connections.c
        done = conn.execute(sa.update(connections).where(c.account_id == account_id)
                            .values(updated_at=env.occurred_at, **values)).rowcount
        if not done:
            row: dict[str, Any] = {"account_id": account_id, "broker": "kite", "connected": False,
                                   "updated_at": env.occurred_at}
            row.update(values)
            conn.execute(sa.insert(connections), dict(**row))

    def on_KiteCredentialsSaved(self, conn: Connection, env: Envelope) -> None:
        d = env.data
        self._upsert(conn, env, api_key=d["api_key"], api_secret_masked=d["api_secret_masked"],
                     credentials_saved_at=d["at"])

    def on_KiteLoginCompleted(self, conn: Connection, env: Envelope) -> None:
        self._upsert(conn, env, last_login_at=env.data["at"])

    def on_BrokerSessionConnected(self, conn: Connection, env: Envelope) -> None:
        d = env.data
        self._upsert(conn, env, connected=True, user_id=d["user_id"], expires_at=d["expires_at"],
                     source=d["source"], disconnected_reason=None)

    def on_BrokerSessionDisconnected(self, conn: Connection, env: Envelope) -> None:
        self._upsert(conn, env, connected=False, disconnected_reason=env.data["reason"])

    def on_HoldingsSynced(self, conn: Connection, env: Envelope) -> None:
        conn.execute(sa.delete(broker_holdings).where(broker_holdings.c.account_id == env.account_id))
        rows = [{"account_id": env.account_id, "exchange": h.get("exchange") or "NSE",
                 "symbol": h.get("tradingsymbol") or "", "product": h.get("product"),
                 "quantity": _int(h.get("quantity")), "t1_quantity": _int(h.get("t1_quantity")),
                 "average_price": _float(h.get("average_price")), "last_price": _float(h.get("last_price")),
                 "isin": str(h.get("isin") or "")[:16] or None}
                for h in env.data["holdings"]]
        if rows:
            conn.execute(sa.insert(broker_holdings), rows)
        self._upsert(conn, env, holdings_synced_at=env.data["at"])

    def on_PositionsSynced(self, conn: Connection, env: Envelope) -> None:
        conn.execute(sa.delete(broker_net_positions).where(broker_net_positions.c.account_id == env.account_id))
        rows = [{"account_id": env.account_id, "exchange": p.get("exchange") or "NSE",
                 "symbol": p.get("tradingsymbol") or "", "product": p.get("product"),
                 "quantity": _int(p.get("quantity")), "average_price": _float(p.get("average_price"))}
                for p in env.data["net"]]
        if rows:
            conn.execute(sa.insert(broker_net_positions), rows)
        self._upsert(conn, env, positions_synced_at=env.data["at"])


    def on_BrokerOrdersSynced(self, conn: Connection, env: Envelope) -> None:
        d = env.data
        values = {"gtts": json.dumps(d["gtts"]), "unresolved": json.dumps(d["unresolved"]), "synced_at": d["at"]}
        c = broker_orders.c
        if not conn.execute(sa.update(broker_orders).where(c.account_id == env.account_id).values(**values)).rowcount:
            conn.execute(sa.insert(broker_orders), {"account_id": env.account_id, **values})


# ---------------------------------------------------------------------------------------------- queries


def get_connection(conn: Connection, account_id: int) -> dict[str, Any] | None:
    row = conn.execute(sa.select(connections).where(connections.c.account_id == account_id)).first()
    return None if row is None else dict(row._mapping)


def broker_status(conn: Connection, account_id: int, now: datetime | None = None) -> dict[str, Any]:
    """{"connected", "broker", "user_id", "expires_at", "source"} -- an expired session reads as disconnected."""
    row = get_connection(conn, account_id)
    if row is None or not row["connected"]:
        return {"connected": False, "broker": "kite", "user_id": row["user_id"] if row else None,
                "expires_at": None, "source": None}
    expires = datetime.fromisoformat(row["expires_at"]) if row["expires_at"] else None
    live = expires is None or expires > (now or datetime.now(UTC))
    return {"connected": live, "broker": "kite", "user_id": row["user_id"], "expires_at": expires,
            "source": row["source"]}


def live_accounts(conn: Connection) -> list[int]:
    """Accounts whose broker session is marked connected (expiry not checked)."""
    c = connections.c
    return [int(r[0]) for r in conn.execute(sa.select(c.account_id).where(c.connected.is_(True))).all()]


def broker_orders_pushed(conn: Connection, account_id: int) -> tuple[str | None, list[dict[str, Any]],
                                                                     list[dict[str, Any]]]:
    """(synced_at, gtts, unresolved) the agent last pushed (None, [], []: never)."""
    c = broker_orders.c
    row = conn.execute(sa.select(c.synced_at, c.gtts, c.unresolved).where(c.account_id == account_id)).first()
    if row is None:
        return None, [], []
    return str(row.synced_at), list(json.loads(row.gtts)), list(json.loads(row.unresolved))


def broker_snapshot(conn: Connection, account_id: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(holdings, net positions) of the agent's last push, in the Kite shape `domain.broker.reconcile` reads."""
    h, n = broker_holdings.c, broker_net_positions.c
    hold_rows = [{"exchange": r.exchange, "tradingsymbol": r.symbol, "quantity": r.quantity,
                  "t1_quantity": r.t1_quantity, "isin": r.isin}
                 for r in conn.execute(sa.select(h.exchange, h.symbol, h.quantity, h.t1_quantity, h.isin)
                                       .where(h.account_id == account_id))]
    net_rows = [{"exchange": r.exchange, "tradingsymbol": r.symbol, "quantity": r.quantity,
                 "product": r.product}
                for r in conn.execute(sa.select(n.exchange, n.symbol, n.quantity, n.product)
                                      .where(n.account_id == account_id))]
    return hold_rows, net_rows
