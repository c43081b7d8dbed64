"""Run `tradertape` subcommands as real processes for end-to-end tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from tests.support.services import free_port, wait_port

METRICS_TOKEN = "e2e-metrics-token-0123456789"  # the operator's scrape token: /api/health detail, /metrics


def health(base: str) -> dict[str, Any]:
    """`/api/health` with its detail (asked with the operator's scrape token)."""
    r = requests.get(base + "/api/health", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=5)
    return dict(r.json())


def tt_env(tmp_path: Path, **settings: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADERTAPE_")}
    var = tmp_path / "var"
    env.update({
        "TRADERTAPE_ENV": "test",
        "TRADERTAPE_VAR_DIR": str(var),
        "TRADERTAPE_DATABASE_URL": f"sqlite:///{var}/tradertape.db",
        "TRADERTAPE_DUCKDB_PATH": str(var / "analytics.duckdb"),
        "TRADERTAPE_DATA_DIR": str(var / "data"),
        "TRADERTAPE_SECRET_KEYS": "e2e-secret-key-0123456789-abcdefghijklmnopq",
        "TRADERTAPE_LOG_LEVEL": "WARNING",
        "TRADERTAPE_METRICS_TOKEN": METRICS_TOKEN,
        # a few Postgres connections per process: a fault test runs four processes beside the other worker's
        # tests, and the machine's Postgres allows 100 in all
        "TRADERTAPE_DB_POOL_SIZE": "3",
    })
    env.update({f"TRADERTAPE_{k.upper()}": str(v) for k, v in settings.items()})
    return env


class Proc:
    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args = args
        self.env = env
        self.log = log
        self.p: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        fh = open(self.log, "ab")
        self.p = subprocess.Popen([sys.executable, "-m", "api.cli", *self.args], env=self.env,
                                  stdout=fh, stderr=subprocess.STDOUT, cwd=Path(__file__).parents[2])
        return self

    def kill9(self) -> None:
        assert self.p is not None
        self.p.send_signal(signal.SIGKILL)
        self.p.wait(10)

    def stop(self) -> None:
        if self.p is not None and self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)

    def alive(self) -> bool:
        return self.p is not None and self.p.poll() is None


class Server(Proc):
    def __init__(self, env: dict[str, str], log: Path, extra: list[str] | None = None) -> None:
        self.port = free_port()
        env = dict(env, TRADERTAPE_BASE_URL=f"http://127.0.0.1:{self.port}")
        super().__init__(["serve", "--port", str(self.port), *(extra or [])], env, log)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        super().start()
        try:
            wait_port(self.port, timeout=180)  # a cold start (imports, projections, notifier) on a loaded box
            deadline = time.monotonic() + 90  # a loaded machine (restarted under load: requests queue)
            while time.monotonic() < deadline:
                try:
                    if requests.get(self.url + "/api/health", timeout=10).status_code == 200:
                        return self
                except requests.RequestException:
                    pass
                time.sleep(0.1)
        except TimeoutError:
            pass
        raise RuntimeError(f"server did not start; log:\n{self.log.read_text()[-3000:]}")


def run_cli(env: dict[str, str], *args: str, timeout: float = 600) -> str:
    """Run `tradertape ARGS` to completion; its stdout (a non-zero exit fails the test with its output)."""
    out = subprocess.run([sys.executable, "-m", "api.cli", *args], env=env, capture_output=True, text=True,
                         timeout=timeout, cwd=Path(__file__).parents[2])
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def otp_from_mail_dir(mail_dir: Path, address: str, timeout: float = 10, skip: int = 0) -> str:
    """The 6-digit sign-in code of the newest email to `address` in the mail folder (waits for it);
    `skip`: ignore the `skip` oldest emails (those sent before the request being answered)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        mails = sorted(mail_dir.glob("*.eml"), key=lambda p: (p.stat().st_mtime, p.name))[skip:]
        for f in reversed(mails):
            text = f.read_text()
            if f"To: {address}" in text:
                m = re.search(r"code: (\d{6})", text)
                if m:
                    return m.group(1)
        time.sleep(0.1)
    raise AssertionError(f"no email to {address} under {mail_dir}")
