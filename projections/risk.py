"""The risk read models (from each account's RiskBook): rules, breaches and orders per day, and their queries.

`rm_risk_rules` holds the rules in force: RiskRuleDeleted deletes the row; a KillSwitchEngaged adds the
kill_switch rule it created (`auto` true, scope of its trigger rule), as the aggregate does; updating
a rule replaces it entirely (an updated automatic kill switch is no longer `auto`, as the aggregate
forgets its trigger). Breaches are kept for good (keyed by the store position); orders are counted per
(account, portfolio, day) and, unlike the aggregate, old days are kept.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from domain.money import format_inr
from projections.base import Projection
from projections.envelope import Envelope

metadata = sa.MetaData()

risk_rules = sa.Table(
    "rm_risk_rules", metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("account_id", sa.BigInteger, index=True),
    sa.Column("rule_type", sa.String(32), nullable=False),
    sa.Column("scope", sa.String(16), nullable=False),
    sa.Column("portfolio_id", sa.BigInteger),
    sa.Column("value", sa.Float),
    sa.Column("unit", sa.String(8)),
    sa.Column("symbols", sa.JSON, nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("auto", sa.Boolean, nullable=False),
    sa.Column("trigger_rule_id", sa.BigInteger),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
)

breach_rows = sa.Table(
    "rm_risk_breaches", metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),  # the envelope's position
    sa.Column("account_id", sa.BigInteger),
    sa.Column("rule_id", sa.BigInteger, nullable=False),
    sa.Column("rule_type", sa.String(32), nullable=False),
    sa.Column("portfolio_id", sa.BigInteger),
    sa.Column("signal_id", sa.BigInteger),
    sa.Column("symbol", sa.String(32)),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("limit_value", sa.Float),
    sa.Column("actual", sa.Float),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("day", sa.String(10), nullable=False),
    sa.Column("at", sa.String(40), nullable=False),
    sa.Index("ix_rm_risk_breaches_account_day", "account_id", "day"),
)

risk_orders = sa.Table(
    "rm_risk_orders", metadata,
    sa.Column("account_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("portfolio_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("day", sa.String(10), primary_key=True),
    sa.Column("orders", sa.Integer, nullable=False),
)


def _scope(portfolio_id: int | None) -> str:
    return "account" if portfolio_id is None else "portfolio"


class RiskProjection(Projection):
    name = "risk"
    metadata = metadata

    def on_RiskRuleCreated(self, conn: Connection, env: Envelope) -> None:
        d = env.data
        conn.execute(sa.insert(risk_rules), dict(
            id=d["rule_id"], account_id=env.account_id, rule_type=d["rule_type"], scope=_scope(d["portfolio_id"]),
            portfolio_id=d["portfolio_id"], value=d["value"], unit=d["unit"], symbols=list(d["symbols"]),
            note=d["note"], auto=False, trigger_rule_id=None, created_at=env.occurred_at,
            updated_at=env.occurred_at,
        ))

    def on_RiskRuleUpdated(self, conn: Connection, env: Envelope) -> None:
        d = env.data
        conn.execute(sa.update(risk_rules).where(risk_rules.c.id == d["rule_id"]).values(
            rule_type=d["rule_type"], scope=_scope(d["portfolio_id"]), portfolio_id=d["portfolio_id"],
            value=d["value"], unit=d["unit"], symbols=list(d["symbols"]), note=d["note"], auto=False,
            trigger_rule_id=None, updated_at=env.occurred_at,
        ))

    def on_RiskRuleDeleted(self, conn: Connection, env: Envelope) -> None:
        conn.execute(sa.delete(risk_rules).where(risk_rules.c.id == env.data["rule_id"]))

    def on_KillSwitchEngaged(self, conn: Connection, env: Envelope) -> None:
        d = env.data
        trigger_pf = conn.execute(sa.select(risk_rules.c.portfolio_id)
                                  .where(risk_rules.c.id == d["trigger_rule_id"])).first()
        portfolio_id = None if trigger_pf is None else trigger_pf.portfolio_id
        note = (f"engaged automatically by max_daily_loss rule {d['trigger_rule_id']} on {d['day']} "
                f"(loss {format_inr(float(d['loss']))}, limit {format_inr(float(d['limit']))})")
        conn.execute(sa.insert(risk_rules), dict(
            id=d["rule_id"], account_id=env.account_id, rule_type="kill_switch", scope=_scope(portfolio_id),
            portfolio_id=portfolio_id, value=None, unit=None, symbols=[], note=note, auto=True,
            trigger_rule_id=d["trigger_rule_id"], created_at=env.occurred_at, updated_at=env.occurred_at,
        ))

    def on_RiskBreached(self, conn: Connection, env: Envelope) -> None:
        d = env.data
        conn.execute(sa.insert(breach_rows), dict(
            id=env.position, account_id=env.account_id, rule_id=d["rule_id"], rule_type=d["rule_type"],
            portfolio_id=d["portfolio_id"], signal_id=d["signal_id"], symbol=d["symbol"], action=d["action"],
            limit_value=d["limit"], actual=d["actual"], message=d["message"], day=d["day"], at=env.occurred_at,
        ))

    def on_OrderCounted(self, conn: Connection, env: Envelope) -> None:
        d = env.data
        o = risk_orders.c
        key = (o.account_id == env.account_id, o.portfolio_id == d["portfolio_id"], o.day == d["day"])
        if conn.execute(sa.update(risk_orders).where(*key).values(orders=o.orders + 1)).rowcount == 0:
            conn.execute(sa.insert(risk_orders), dict(account_id=env.account_id, portfolio_id=d["portfolio_id"],
                                                       day=d["day"], orders=1))


# ---------------------------------------------------------------------------------------------- queries


def _iso(ts: str) -> str:
    return ts[:-6] + "Z" if ts.endswith("+00:00") else ts


def rule_public(row: Any) -> dict[str, Any]:
    return {"id": int(row.id), "account_id": row.account_id, "rule_type": row.rule_type, "scope": row.scope,
            "portfolio_id": row.portfolio_id, "value": row.value, "unit": row.unit, "symbols": list(row.symbols),
            "note": row.note, "auto": bool(row.auto), "created_at": _iso(row.created_at),
            "updated_at": _iso(row.updated_at)}


def list_risk_rules(conn: Connection, account_id: int) -> list[dict[str, Any]]:
    """The account's rules in force, by id."""
    rows = conn.execute(sa.select(risk_rules).where(risk_rules.c.account_id == account_id)
                        .order_by(risk_rules.c.id)).all()
    return [rule_public(r) for r in rows]


def get_risk_rule(conn: Connection, rule_id: int) -> dict[str, Any] | None:
    """One rule (any account: the caller checks `account_id`)."""
    row = conn.execute(sa.select(risk_rules).where(risk_rules.c.id == rule_id)).first()
    return None if row is None else rule_public(row)


def risk_breaches(conn: Connection, account_id: int, day: str | None, limit: int = 50) -> list[dict[str, Any]]:
    """The account's breaches (of `day`, when given), newest first."""
    b = breach_rows.c
    conds: list[Any] = [b.account_id == account_id]
    if day is not None:
        conds.append(b.day == day)
    rows = conn.execute(sa.select(breach_rows).where(*conds).order_by(b.id.desc()).limit(limit)).all()
    return [{"id": int(r.id), "rule_id": int(r.rule_id), "rule_type": r.rule_type, "portfolio_id": r.portfolio_id,
             "signal_id": r.signal_id, "symbol": r.symbol, "action": r.action,
             "limit": None if r.limit_value is None else round(float(r.limit_value), 2),
             "actual": None if r.actual is None else round(float(r.actual), 2), "message": r.message, "day": r.day,
             "at": _iso(r.at)} for r in rows]


def orders_on(conn: Connection, account_id: int, day: str, portfolio_id: int | None = None) -> int:
    """Orders the account (or one of its portfolios) placed on `day`."""
    o = risk_orders.c
    conds: list[Any] = [o.account_id == account_id, o.day == day]
    if portfolio_id is not None:
        conds.append(o.portfolio_id == portfolio_id)
    return int(conn.execute(sa.select(sa.func.coalesce(sa.func.sum(o.orders), 0)).where(*conds)).scalar_one())



def kill_switches(conn: Connection, account_id: int) -> list[tuple[int, int | None]]:
    """(rule id, portfolio id or None: account-wide) of the account's engaged kill switches, by id."""
    rr = risk_rules.c
    return [(int(r.id), None if r.portfolio_id is None else int(r.portfolio_id))
            for r in conn.execute(sa.select(rr.id, rr.portfolio_id).where(
                rr.account_id == account_id, rr.rule_type == "kill_switch").order_by(rr.id))]
