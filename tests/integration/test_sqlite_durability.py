"""SQLite's durability setting reaches every connection the product opens (its tables' and the event store's),
and the write-ahead log is copied back into the database file by the checkpointer thread, not by writers."""

from __future__ import annotations

import gc
import os
import time
from pathlib import Path
from typing import Any, cast

import pytest
import sqlalchemy as sa

from commands.ports import CommandMeta
from domain.accounts import Account
from infra.bootstrap import bootstrap
from infra.store import db as db_module
from tests.conftest import make_settings

LEVELS = {"normal": 1, "full": 2}  # what PRAGMA synchronous answers


@pytest.mark.parametrize("level", ["normal", "full"])
def test_every_connection_commits_at_the_chosen_level(tmp_path: Path, level: str) -> None:
    platform = bootstrap(make_settings(tmp_path, sqlite_synchronous=level))
    try:
        platform.store.save([Account.register(1, "one@example.com", "one", False, "test")], CommandMeta(actor="system"))
        with platform.db.write() as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == LEVELS[level]
        with platform.db.read() as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == LEVELS[level]
        datastore = cast(Any, platform.store).recorder.datastore
        with datastore.transaction(commit=False) as cur:  # the event store's own pool
            cur.execute("PRAGMA synchronous")
            assert cur.fetchone()[0] == LEVELS[level]
    finally:
        platform.close()


def test_the_log_is_checkpointed_by_its_thread(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(db_module, "CHECKPOINT_EVERY", 0.05)
    path = tmp_path / "t.db"
    db = db_module.Database.from_url(f"sqlite:///{path}")
    try:
        with db.write() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x TEXT)")
        for _ in range(30):  # ~1,200 pages of log: past SQLite's own auto-checkpoint, which the writers no longer do
            with db.write() as conn:
                conn.execute(sa.text("INSERT INTO t VALUES (:x)"), [{"x": "y" * 4000}] * 40)
        with db.read() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and os.path.getsize(path) < 4_000_000:
            time.sleep(0.05)
        assert os.path.getsize(path) >= 4_000_000  # the rows reached the database file itself
        with db.read() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 1200
    finally:
        db.dispose()
    assert db.checkpointer is not None and not db.checkpointer.running


def test_a_database_dropped_without_dispose_stops_its_checkpointer(tmp_path: Path) -> None:
    db = db_module.Database.from_url(f"sqlite:///{tmp_path / 'd.db'}")
    with db.write() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    checkpointer = db.checkpointer
    assert checkpointer is not None and checkpointer.running
    del db, conn
    gc.collect()
    deadline = time.monotonic() + 5
    while checkpointer.running and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not checkpointer.running
