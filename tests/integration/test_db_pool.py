"""Pooled Postgres connections the server dropped (a restart, a failover, an idle timeout) are found
and replaced before a request uses them, without a ping on every checkout."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from infra.store import db as db_module
from infra.store.db import Database


def _drop_other_connections(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        return len(conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE datname = current_database() AND pid <> pg_backend_pid()").fetchall())


def test_a_connection_dropped_while_idle_is_replaced_before_use(pg_url: str, monkeypatch: Any) -> None:
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE", 0.0)  # every idle connection counts as idle long enough
    db = Database.from_url(pg_url)
    try:
        with db.read() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar() == 1
        assert _drop_other_connections(pg_url) >= 1  # the pooled connection is now dead
        with db.read() as conn:
            assert conn.execute(sa.text("SELECT 2")).scalar() == 2
        with db.write() as conn:
            assert conn.execute(sa.text("SELECT 3")).scalar() == 3
    finally:
        db.dispose()


def test_a_connection_in_steady_use_is_not_pinged(pg_url: str, monkeypatch: Any) -> None:
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE", 3600.0)  # however slow the machine, it counts as in use
    db = Database.from_url(pg_url)
    try:
        with db.read() as conn:
            conn.execute(sa.text("SELECT 1"))
        _drop_other_connections(pg_url)
        # used again at once: no ping, so the dead connection fails this one request ...
        with pytest.raises(sa.exc.OperationalError), db.read() as conn:
            conn.execute(sa.text("SELECT 1"))
        # ... and the pool then renews its connections
        with db.read() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar() == 1
    finally:
        db.dispose()


def test_only_non_durable_writes_skip_the_wal_flush(pg_url: str) -> None:
    db = Database.from_url(pg_url)
    try:
        with db.write() as conn:
            assert conn.execute(sa.text("SHOW synchronous_commit")).scalar() == "on"
        with db.write(durable=False) as conn:
            assert conn.execute(sa.text("SHOW synchronous_commit")).scalar() == "off"
        with db.self_committing() as conn:
            assert conn.execute(sa.text("SHOW synchronous_commit")).scalar() == "on"
    finally:
        db.dispose()


def test_the_pool_size_setting_bounds_a_process_connections(pg_url: str, tmp_path: Any) -> None:
    """TRADERTAPE_DB_POOL_SIZE: however many threads read and write at once, one process holds at most its
    pools' bounds (the event store's 2x, the reads' and writes' 4x, the non-durable writers' 3x of the
    smallest share) -- the tests' fault runs put four such processes beside the other workers' tests."""
    import threading

    from infra.bootstrap import bootstrap
    from tests.conftest import make_settings

    platform = bootstrap(make_settings(tmp_path, pg_url, db_pool_size=2))
    try:
        assert platform.db.writer.pool.size() == 4  # type: ignore[attr-defined]
        default = Database.from_url(pg_url)
        assert default.writer.pool.size() == 20  # type: ignore[attr-defined]  # the default
        default.dispose()

        def busy() -> None:
            for _ in range(5):
                with platform.db.read() as conn:
                    conn.execute(sa.text("SELECT pg_sleep(0.02)"))
                platform.store.max_position()

        threads = [threading.Thread(target=busy) for _ in range(30)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with psycopg.connect(pg_url, autocommit=True) as conn:
            held = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                "AND pid <> pg_backend_pid()").fetchone()
        assert held is not None and held[0] <= 2 * 2 + 2 * 4 + 3, held
    finally:
        platform.close()
