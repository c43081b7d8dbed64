"""The live-trading world of the Kite tests: `tradertape serve` and the `tradertape agent` as real processes,
the Kite stub (`tests.support.kite_stub`) on loopback, a signed-in user whose Kite login the agent
completes, and helpers to run the agent and read what the server recorded."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from tests.support.kite_stub import KiteState, kite_stub
from tests.support.live import Http, live_portfolio_with_placed_signals, make_bars, wait_until
from tests.support.processes import Proc, Server, otp_from_mail_dir, tt_env


@dataclass
class KiteWorld:
    tmp: Path
    base: str
    s: requests.Session  # the user's session
    key: str  # the agent key
    kite: KiteState
    root: str  # the stub's URL
    env: dict[str, str]
    agents: list[Proc] = field(default_factory=list)

    @property
    def agent_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    @property
    def log(self) -> str:
        path = self.tmp / "agent.log"
        return path.read_text() if path.exists() else ""

    def agent_args(self, *extra: str) -> list[str]:
        return ["agent", "--server", self.base, "--kite-root", self.root, "--poll", "0.1", "--sync-every", "0.3",
                "--state-dir", str(self.tmp / "agent"), *extra]

    def agent_env(self, **env: str) -> dict[str, str]:
        return dict(self.env, TRADERTAPE_AGENT_KEY=self.key, TRADERTAPE_LOG_LEVEL="INFO", **env)

    def once(self, *extra: str, **env: str) -> subprocess.CompletedProcess[str]:
        """One agent cycle as a process (`tradertape agent --once`)."""
        import sys

        out = subprocess.run([sys.executable, "-m", "api.cli", *self.agent_args("--once", *extra)],
                             env=self.agent_env(**env), capture_output=True, text=True, timeout=120,
                             cwd=Path(__file__).parents[2])
        with open(self.tmp / "agent.log", "a") as fh:
            fh.write(out.stdout + out.stderr)
        return out

    def start_agent(self, *extra: str, **env: str) -> Proc:
        proc = Proc(self.agent_args(*extra), self.agent_env(**env), self.tmp / "agent.log").start()
        self.agents.append(proc)
        return proc

    def portfolio(self, slots: int = 1, entry_order: str = "limit", **kw: Any) -> tuple[dict[str, Any],
                                                                                       list[dict[str, Any]]]:
        pf, placed = live_portfolio_with_placed_signals(Http(self.s, self.base), slots=slots,
                                                        entry_order=entry_order, **kw)
        for sig in placed:  # Kite's last price: the close the signals were computed on
            self.kite.last_prices[sig["symbol"]] = float(sig["reference_price"])
        return pf, placed

    def fill_kite_forgot(self) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], str]:
        """A live portfolio whose entry GTT (placed by one agent cycle) fired three days ago while the agent
        was offline, and Kite no longer answers for its order: (portfolio, entry signal, GTT, order id)."""
        pf, (entry,) = self.portfolio(slots=1)
        assert self.once().returncode == 0, self.log
        (gtt,) = self.kite.gtts.values()
        self.kite.trigger(gtt["id"], days_ago=3)
        self.kite.forget_history()
        return pf, entry, gtt, gtt["orders"][0]["result"]["order_result"]["order_id"]

    def signals(self, pf_id: int) -> dict[int, dict[str, Any]]:
        rows = self.s.get(self.base + "/api/model/signals", params={"portfolio_id": pf_id}).json()
        return {int(r["id"]): r for r in rows}

    def positions(self, pf_id: int, status: str) -> list[dict[str, Any]]:
        return list(self.s.get(self.base + "/api/model/positions",
                               params={"portfolio_id": str(pf_id), "status": status}).json())

    def reconciliation(self, pf_id: int | None = None) -> dict[str, Any]:
        """The account's reconciliation (`GET /api/portfolio/reconciliation`), or one live portfolio's as
        its dashboard shows it."""
        if pf_id is None:
            return dict(self.s.get(self.base + "/api/portfolio/reconciliation").json())
        return dict(self.s.get(self.base + "/api/model/dashboard", params={"portfolio_id": pf_id})
                    .json()["reconciliation"])

    def drift(self, *kinds: str, pf_id: int | None = None) -> list[dict[str, Any]]:
        """The reconciliation's drift rows of these kinds."""
        return [d for d in self.reconciliation(pf_id)["drift"] if d["kind"] in kinds]

    def working(self) -> list[dict[str, Any]]:
        return list(requests.get(self.base + "/api/agent/pending-signals", headers=self.agent_headers,
                                 params={"state": "working"}).json())

    def until(self, what: str, check: Callable[[], Any], timeout: float = 60.0) -> Any:
        return wait_until(what, check, timeout, interval=0.1)


@contextmanager
def kite_world(tmp_path: Path) -> Iterator[KiteWorld]:
    """A running server and Kite stub, a signed-in user with Kite credentials and an agent key, and a Kite
    login waiting for the agent to exchange (its first cycle does)."""
    make_bars(tmp_path / "var" / "data")
    with kite_stub(KiteState()) as (root, kite):
        env = tt_env(tmp_path, scheduler="false", kite_api_root=root)
        server = Server(env, tmp_path / "serve.log").start()
        world: KiteWorld | None = None
        try:
            base = server.url
            s = requests.Session()
            s.post(base + "/api/auth/magic-link", json={"email": "trader@example.com"}).raise_for_status()
            otp = otp_from_mail_dir(tmp_path / "var" / "mail", "trader@example.com", timeout=20)
            s.post(base + "/api/auth/verify-link", json={"email": "trader@example.com", "otp": otp}).raise_for_status()
            s.headers["X-Requested-With"] = "tradertape"
            s.post(base + "/api/auth/kite-credentials",
                   json={"api_key": kite.api_key, "api_secret": kite.api_secret}).raise_for_status()
            key = s.post(base + "/api/auth/agent-key").json()["key"]
            # the login starts at login-url: its one-time state comes back to the callback (Kite's redirect_params)
            login = s.get(base + "/api/auth/kite/login-url").json()["login_url"]
            state = parse_qs(parse_qs(urlsplit(login).query)["redirect_params"][0])["state"][0]
            r = s.get(base + "/api/auth/kite/callback",
                      params={"request_token": kite.issue_request_token(), "status": "success", "state": state})
            assert r.status_code == 200, r.text
            world = KiteWorld(tmp_path, base, s, key, kite, root, env)
            yield world
        finally:
            for proc in world.agents if world else []:
                proc.stop()
            server.stop()
