"""The fault test of issue 15: production topology (Postgres, a Kafka-protocol broker, `serve`, `relay`,
`projector` as separate processes), several accounts writing while the relay, the projector and the API
are each killed with SIGKILL and restarted; then the read models are rebuilt from each source (store,
Kafka) with the projector stopped, the projector resumes after each rebuild, every acknowledged write is
readable, and `audit verify` and `replay` from each source pass against the live state."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.processes import METRICS_TOKEN, Proc, Server, health, tt_env
from tests.support.services import KafkaBroker, PostgresServer

USERS = 4
T0 = time.monotonic()


def _stage(what: str) -> None:
    print(f"[{time.monotonic() - T0:7.1f} s] {what}", flush=True)  # shown when the test fails
REPO = Path(__file__).parents[2]


def _otp(mail_dir: Path, address: str) -> str:
    for _ in range(400):
        for f in sorted(mail_dir.glob("*.eml"), reverse=True):
            text = f.read_text()
            if f"To: {address}" in text and (m := re.search(r"code: (\d{6})", text)):
                return m.group(1)
        time.sleep(0.05)
    raise AssertionError(f"no sign-in email for {address}")


def _cli(env: dict[str, str], *args: str, timeout: float = 600) -> str:
    out = subprocess.run([sys.executable, "-m", "api.cli", *args], env=env, cwd=REPO, capture_output=True,
                         text=True, timeout=timeout)
    assert out.returncode == 0, f"tradertape {' '.join(args)} exited {out.returncode}:\n{out.stdout}\n{out.stderr}"
    return out.stdout


def _caught_up(base: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            h = health(base)
            if h["transport"]["relay_lag"] == 0 and h["projection_lag"] == 0:
                return h
        except (requests.RequestException, KeyError):
            h = {}
        assert time.monotonic() < deadline, f"the pipeline did not catch up: {h}"
        time.sleep(0.2)


class Writer:
    """One account creating strategies; a request lost to a killed API is retried with its
    Idempotency-Key. `acked`: (id, name) of every create answered 201. A key whose first request died
    with the API answers 409 (still running) for now: that write stays unacknowledged (`stuck`)."""

    def __init__(self, base: str, session: requests.Session, tag: str) -> None:
        self.base, self.s, self.tag = base, session, tag
        self.acked: list[tuple[int, str]] = []
        self.errors: list[str] = []
        self.stuck: list[str] = []
        self.n = 0

    def create(self) -> None:
        self.n += 1
        name, key = f"{self.tag}-{self.n}", uuid.uuid4().hex
        deadline = time.monotonic() + 90
        last = ""
        while time.monotonic() < deadline:
            try:
                r = self.s.post(self.base + "/api/strategies", json={"name": name, "base_model": "sma_crossover"},
                                headers={"Idempotency-Key": key}, timeout=45)
            except requests.RequestException as exc:  # the API is down: same request again
                last = type(exc).__name__
                time.sleep(0.1)
                continue
            last = f"{r.status_code} {r.text[:200]}"
            if r.status_code == 201:
                self.acked.append((int(r.json()["id"]), name))
            elif r.status_code == 409:
                self.stuck.append(name)
            elif r.status_code >= 500:
                time.sleep(0.1)
                continue
            else:
                self.errors.append(f"{r.status_code} {r.text[:200]}")
            return
        self.errors.append(f"{name}: no answer within 90 s (last: {last})")

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.create()

    def check_readable(self) -> None:
        r = self.s.get(self.base + "/api/strategies", params={"is_template": False, "limit": 500}, timeout=30)
        assert r.status_code == 200, r.text
        listed = {int(x["id"]): x["name"] for x in r.json()}
        missing = [(i, n) for i, n in self.acked if listed.get(i) != n]
        assert not missing, f"{self.tag}: acknowledged writes not readable: {missing[:10]}"
        for i, n in self.acked[-3:]:
            one = self.s.get(self.base + f"/api/strategies/{i}", timeout=30)
            assert one.status_code == 200 and one.json()["name"] == n


@pytest.mark.timeout(1200)  # separate processes and several CLI runs on a shared 2-core machine
def test_kill_everything_under_load_then_rebuild_from_each_source(tmp_path: Path, postgres: PostgresServer,
                                                                  kafka: KafkaBroker) -> None:
    url = postgres.create_database()
    env = tt_env(tmp_path, database_url=url, kafka_bootstrap=kafka.bootstrap,
                 kafka_topic=f"tt.fault.{uuid.uuid4().hex[:8]}", kafka_partitions=3)
    server = Server(env, tmp_path / "serve.log")
    relay = Proc(["relay"], env, tmp_path / "relay.log")
    projector = Proc(["projector"], env, tmp_path / "projector.log")
    procs: list[Proc] = [server, relay, projector]
    try:
        server.start()
        relay.start()
        projector.start()
        base = server.url
        writers = []
        for u in range(USERS):  # several accounts: spread over the partitions
            s = requests.Session()
            addr = f"fault{u}-{uuid.uuid4().hex[:6]}@example.com"
            assert s.post(base + "/api/auth/magic-link", json={"email": addr}).status_code == 200
            otp = _otp(tmp_path / "var" / "mail", addr)
            assert s.post(base + "/api/auth/verify-link", json={"email": addr, "otp": otp}).status_code == 200
            writers.append(Writer(base, s, f"u{u}"))
        _stage("signed in")
        _caught_up(base)

        stop = threading.Event()
        threads = [threading.Thread(target=w.run, args=(stop,), daemon=True) for w in writers]
        for t in threads:
            t.start()
        time.sleep(1.0)
        relay.kill9()
        time.sleep(0.7)
        relay.start()
        time.sleep(1.0)
        projector.kill9()
        time.sleep(0.7)
        projector.start()
        time.sleep(1.0)
        server.kill9()
        time.sleep(0.5)
        server.start()  # the same port: the writers' retries reach it again
        time.sleep(1.5)
        _stage("stopping the load")
        stop.set()
        for t in threads:
            t.join(120)
        for w in writers:
            assert not w.errors, w.errors[:5]
            assert w.acked, f"{w.tag} wrote nothing under load"
        assert sum(len(w.acked) for w in writers) >= 10
        _caught_up(base)
        for w in writers:
            w.check_readable()

        for source in ("store", "kafka"):
            _stage(f"rebuild {source}")
            projector.stop()  # rebuilds run with the projector stopped
            h = health(base)
            head = h["store"]["position"]
            out = _cli(env, "projections", "rebuild", "--source", source)
            assert f"up to position {head} (store head {head})" in out, out
            projector.start()  # resumes after the rebuild, whichever source it came from
            for w in writers:
                w.create()
                w.create()
            h = _caught_up(base)
            assert h["dead_letter_count"] == 0 and h["status"] == "ok", h["reasons"]
            for w in writers:
                w.check_readable()
            _stage(f"replay {source}")
            out = _cli(env, "replay", "--source", source)
            assert f"up to position {h['store']['position']}" in out and "DIFFERENT" not in out, out
            _stage("audit verify")
            out = _cli(env, "audit", "verify")
            assert "audit verify passed" in out, out
        metrics = requests.get(base + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10)
        assert re.search(r'^tradertape_commands_total\{command="CreateStrategy",outcome="ok"\} [1-9]', metrics.text,
                         re.M)
    finally:
        for p in procs:
            p.stop()
        postgres.drop_database(url)
