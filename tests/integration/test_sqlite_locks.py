"""The SQLite file is made private without ever dropping the locks this process holds on it.

Closing any descriptor of a file releases every POSIX lock the process holds on that file, SQLite's
included. Opening the database file to set its mode while a connection of the same process had it open
dropped that connection's shared lock: another process (`tradertape sim advance` beside `serve`) then
believed it was the last connection when it closed, checkpointed and deleted the WAL and its shared-memory
index under the server ("disk I/O error", "database disk image is malformed").
"""

import os
import sqlite3
import subprocess
import sys

from infra.store.db import Database, private_sqlite_file


def _other_process_writes_and_closes(path: str) -> None:
    code = (
        "import sqlite3, sys\n"
        "c = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)\n"
        "c.execute('INSERT INTO t VALUES (2)')\n"
        "c.close()\n"
    )
    subprocess.run([sys.executable, "-c", code, path], check=True, timeout=60)


def test_making_the_file_private_keeps_this_process_connections_locks(tmp_path):
    path = str(tmp_path / "tradertape.db")
    url = f"sqlite:///{path}"
    Database.from_url(url)  # creates the file, private
    serve = sqlite3.connect(path, isolation_level=None)  # a connection the server keeps open
    serve.execute("PRAGMA journal_mode=WAL")
    serve.execute("CREATE TABLE t (x INTEGER)")
    serve.execute("INSERT INTO t VALUES (1)")
    assert os.path.exists(path + "-wal")

    # What serve does once its engines are up: the event store's recorder and other engines on the same
    # file make it private again.
    private_sqlite_file(path)
    Database.from_url(url)

    _other_process_writes_and_closes(path)
    assert os.path.exists(path + "-wal") and os.path.exists(path + "-shm"), (
        "another process took the last-connection path and removed the WAL of a connection still open")
    assert [r[0] for r in serve.execute("SELECT x FROM t ORDER BY x")] == [1, 2]
    serve.close()
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o600)
