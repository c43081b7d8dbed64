"""The strategies read model and its queries."""

from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from projections.base import Projection, update_by
from projections.envelope import Envelope

metadata = sa.MetaData()
strategies = sa.Table(
    "rm_strategies", metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("aggregate_id", sa.String(36), nullable=False, unique=True),
    sa.Column("owner_id", sa.BigInteger, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("base_model", sa.String(64), nullable=False),
    sa.Column("entry_rules", sa.JSON, nullable=False),
    sa.Column("exit_rules", sa.JSON, nullable=False),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("is_active", sa.Boolean, nullable=False),
    sa.Column("is_template", sa.Boolean, nullable=False),
    sa.Column("is_public", sa.Boolean, nullable=False),
    sa.Column("forked_from", sa.BigInteger),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
    # The public JSON document, built when the row changes so reads serve it without re-encoding.
    sa.Column("doc", sa.Text, nullable=False, default=""),
)

_PUBLIC = ("id", "owner_id", "name", "description", "base_model", "entry_rules", "exit_rules", "params",
           "is_active", "is_template", "is_public", "forked_from", "created_at", "updated_at")

_BODY = ("name", "description", "base_model", "entry_rules", "exit_rules", "params", "is_active")


class StrategiesProjection(Projection):
    name = "strategies"
    metadata = metadata

    def on_StrategyCreated(self, conn: Connection, env: Envelope) -> None:
        d = env.data
        row = dict(id=d["strategy_id"], owner_id=d["owner_id"], is_template=d["is_template"],
                   is_public=d["is_public"], forked_from=d["forked_from"], created_at=env.occurred_at,
                   updated_at=env.occurred_at, **{k: d[k] for k in _BODY})
        conn.execute(_INSERT, dict(row, aggregate_id=env.aggregate_id, doc=_doc(row)))

    def _changed(self, conn: Connection, env: Envelope, **values: Any) -> None:
        """Update the row, then its document (from what the update returned)."""
        row = update_by(conn, strategies, "aggregate_id", env.aggregate_id, returning=_PUBLIC,
                        updated_at=env.occurred_at, **values).first()
        if row is not None:
            conn.execute(_SET_DOC, {"agg": env.aggregate_id, "doc": _doc(row._mapping)})

    def on_StrategyUpdated(self, conn: Connection, env: Envelope) -> None:
        self._changed(conn, env, **{k: env.data[k] for k in _BODY})

    def on_StrategyShared(self, conn: Connection, env: Envelope) -> None:
        self._changed(conn, env, is_public=env.data["is_public"])

    def on_StrategyDeleted(self, conn: Connection, env: Envelope) -> None:
        conn.execute(sa.delete(strategies).where(strategies.c.aggregate_id == env.aggregate_id))


@dataclass(frozen=True)
class StrategyFilters:
    is_active: bool | None = None
    is_template: bool | None = None
    is_public: bool | None = None
    base_model: str | None = None
    q: str | None = None


_INSERT = sa.insert(strategies)
_SET_DOC = sa.update(strategies).where(strategies.c.aggregate_id == sa.bindparam("agg")).values(
    doc=sa.bindparam("doc"))


def _doc(row: Any) -> str:
    """The public document of a row (a mapping of the _PUBLIC columns)."""
    d = {k: row[k] for k in _PUBLIC}
    d["created_at"] = _iso(d["created_at"])
    d["updated_at"] = _iso(d["updated_at"])
    return json.dumps(d, separators=(",", ":"), sort_keys=True)  # canonical whatever the source


def _iso(ts: str) -> str:
    # Stored as Python isoformat; served as the API's other UTC timestamps are ("...Z").
    return ts[:-6] + "Z" if ts.endswith("+00:00") else ts


def strategy_public(row: Any) -> dict[str, Any]:
    d = dict(row._mapping)
    d.pop("aggregate_id", None)
    d.pop("doc", None)
    return d


def _visible_query(account_id: Any, f: StrategyFilters, *columns: Any) -> sa.Select[Any]:
    """`account_id` and `f.base_model` may be bound parameters (a statement built once, see `_page`)."""
    s = strategies.c
    visible = [s.owner_id == account_id]
    if f.is_template is None or f.is_template:
        visible.append(s.is_template.is_(True))
    if f.is_public:
        visible.append(s.is_public.is_(True))
    conds: list[Any] = [sa.or_(*visible)]
    if f.is_template is not None:
        conds.append(s.is_template.is_(f.is_template))
    if f.is_active is not None:
        conds.append(s.is_active.is_(f.is_active))
    if f.is_public is not None:
        conds.append(s.is_public.is_(f.is_public))
    if f.base_model is not None:
        conds.append(s.base_model == f.base_model)
    if f.q:
        conds.append(sa.func.lower(s.name).contains(f.q.lower(), autoescape=True))
    return sa.select(*(columns or (strategies,))).where(*conds).order_by(s.is_template.desc(), s.id)


def list_strategy_docs(conn: Connection, account_id: int, f: StrategyFilters, limit: int,
                       offset: int) -> tuple[bytes, int]:
    """Own strategies plus templates (templates only when is_template=true or no is_template filter);
    with is_public=true, also other users' public strategies. One page as a ready JSON array: the rows
    hold their documents, so nothing is decoded or re-encoded per request."""
    # the page and the count in one statement (a window count over the filtered rows); only a page past
    # the end, which has no row to carry the count, asks again
    f = dataclasses.replace(f, base_model=f.base_model or None, q=f.q or None)
    if f.q is None:  # the usual lists: a statement built once per filter shape, with bound values
        rows = conn.execute(_page(f.is_template, f.is_active, f.is_public, f.base_model is not None), {
            "account": account_id, "base_model": f.base_model, "limit": limit, "offset": offset}).all()
    else:
        query = _visible_query(account_id, f, strategies.c.doc, sa.func.count().over().label("total"))
        rows = conn.execute(query.limit(limit).offset(offset)).all()
    if rows:
        total = int(rows[0].total)
    else:
        matching = _visible_query(account_id, f, strategies.c.id).order_by(None).subquery()
        total = int(conn.execute(sa.select(sa.func.count()).select_from(matching)).scalar_one()) if offset else 0
    return ("[" + ",".join(r.doc for r in rows) + "]").encode(), total


@functools.lru_cache(maxsize=64)
def _page(is_template: bool | None, is_active: bool | None, is_public: bool | None, by_model: bool) -> sa.Select[Any]:
    """One page of documents with the total, for one filter shape: building and cache-keying the
    statement per request cost more than running it."""
    model: Any = sa.bindparam("base_model") if by_model else None
    f = StrategyFilters(is_active, is_template, is_public, model, None)
    query = _visible_query(sa.bindparam("account"), f, strategies.c.doc, sa.func.count().over().label("total"))
    return query.limit(sa.bindparam("limit")).offset(sa.bindparam("offset"))


def get_strategy_doc(conn: Connection, strategy_id: int) -> Any:
    """(doc, owner_id, is_template, is_public) of one strategy, or None: its ready JSON document."""
    return conn.execute(_GET_DOC, {"id": strategy_id}).first()


_GET_DOC = sa.select(strategies.c.doc, strategies.c.owner_id, strategies.c.is_template, strategies.c.is_public
                     ).where(strategies.c.id == sa.bindparam("id"))


def get_strategy(conn: Connection, strategy_id: int) -> dict[str, Any] | None:
    row = conn.execute(sa.select(strategies).where(strategies.c.id == strategy_id)).first()
    return None if row is None else strategy_public(row)


def strategy_names(conn: Connection, ids: set[int]) -> dict[int, str]:
    """Strategy id -> name for these ids (one query; none for an empty set)."""
    if not ids:
        return {}
    rows = conn.execute(sa.select(strategies.c.id, strategies.c.name).where(strategies.c.id.in_(ids))).all()
    return {int(r.id): str(r.name) for r in rows}
