"""`projections.base.page`: one page of rows and the total, at every offset."""

from __future__ import annotations

import sqlalchemy as sa

from projections.base import page


def test_totals_are_right_for_full_partial_empty_and_past_the_end_pages() -> None:
    meta = sa.MetaData()
    t = sa.Table("t", meta, sa.Column("id", sa.Integer, primary_key=True))
    engine = sa.create_engine("sqlite://")
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(sa.insert(t), [{"id": i} for i in range(1, 8)])  # 7 rows
        q = sa.select(t).order_by(t.c.id)
        for limit in (1, 3, 7, 10):
            for offset in range(0, 12):
                rows, total = page(q, conn, limit, offset)
                assert total == 7, (limit, offset)
                assert [r.id for r in rows] == list(range(offset + 1, min(offset + limit, 7) + 1))
        assert page(q.where(t.c.id > 100), conn, 5, 0) == ([], 0)
        assert page(q.where(t.c.id > 100), conn, 5, 3) == ([], 0)
