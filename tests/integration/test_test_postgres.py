"""`make test` needs no Postgres of its own: when none answers, the tests start a throwaway cluster (initdb
into a temporary directory with the machine's binaries, trust auth, a free loopback port) and stop it
afterwards -- never a silent skip."""

from __future__ import annotations

import os

import psycopg
import pytest

from tests.support.services import PostgresServer, free_port, port_open


def test_a_throwaway_cluster_serves_the_tests_when_no_postgres_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    dead = free_port()  # nothing listens here
    monkeypatch.setenv("TRADERTAPE_TEST_PG_PORT", str(dead))
    server = PostgresServer().start()
    try:
        assert server.port != dead and port_open(server.port)
        url = server.create_database()
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        server.drop_database(url)
        data = server._data
        assert os.path.isdir(data)
    finally:
        server.stop()
    assert not port_open(server.port) and not os.path.exists(data)  # stopped and removed afterwards
