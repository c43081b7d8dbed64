"""`Database.commit_then`: the step outside the database (a notification's final SMTP ".") is taken once, right
after the commit, on SQLite and on Postgres; a refused COMMIT says so after the step; the connection stays usable."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from infra.store.db import CommitFailed, Database

ROWS = sa.table("commit_then_rows", sa.column("id"))


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database.from_url(database_url, pool_size=2)
    with database.write() as conn:
        conn.execute(sa.text("CREATE TABLE commit_then_rows (id INTEGER NOT NULL)"))
    yield database
    database.dispose()


def _ids(db: Database) -> list[int]:
    with db.read() as conn:
        return sorted(conn.execute(sa.select(ROWS.c.id)).scalars())


def test_the_step_runs_once_after_the_commit_and_the_connection_goes_on(db: Database) -> None:
    seen: list[list[int]] = []

    def then() -> None:
        if db.is_sqlite:  # in-process: the commit is done before the step
            seen.append(_ids(db))
        else:  # the COMMIT is on its way: the step runs while the server writes it
            seen.append([])

    with db.write() as conn:
        conn.execute(sa.insert(ROWS).values(id=1))
        db.commit_then(conn, then)
    assert len(seen) == 1
    if db.is_sqlite:
        assert seen[0] == [1]
    assert _ids(db) == [1]
    for n in range(2, 6):  # the pooled connections carry on with ordinary transactions
        with db.write() as conn:
            conn.execute(sa.insert(ROWS).values(id=n))
    assert _ids(db) == [1, 2, 3, 4, 5]


def test_a_failing_step_leaves_the_commit_standing(db: Database) -> None:
    def then() -> None:
        raise OSError("connection reset by the mail server")

    with pytest.raises(OSError), db.write() as conn:
        conn.execute(sa.insert(ROWS).values(id=7))
        db.commit_then(conn, then)
    assert _ids(db) == [7]  # recorded: the caller treats the message as in doubt (sent again, marked a possible repeat)
    with db.write() as conn:
        conn.execute(sa.insert(ROWS).values(id=8))
    assert _ids(db) == [7, 8]


def test_a_refused_commit_is_said_after_the_step(pg_url: str) -> None:
    """(Postgres: a deferred constraint refuses only the COMMIT; SQLite checks at each statement.)"""
    db = Database.from_url(pg_url, pool_size=2)
    try:
        with db.write() as conn:
            conn.execute(sa.text("CREATE TABLE deferred_rows (id INTEGER UNIQUE DEFERRABLE INITIALLY DEFERRED)"))
        steps: list[str] = []
        with pytest.raises(CommitFailed, match="duplicate key"), db.write() as conn:
            conn.execute(sa.text("INSERT INTO deferred_rows VALUES (1), (1)"))  # refused only at COMMIT
            db.commit_then(conn, lambda: steps.append("sent"))
        assert steps == ["sent"]
        with db.write() as conn:
            conn.execute(sa.text("INSERT INTO deferred_rows VALUES (2)"))
        with db.read() as conn:
            assert list(conn.execute(sa.text("SELECT id FROM deferred_rows")).scalars()) == [2]
    finally:
        db.dispose()
