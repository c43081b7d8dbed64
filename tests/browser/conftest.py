"""Browser tests: Debian's Chromium (/usr/bin/chromium) driven by Playwright for Python against a real
`tradertape serve` process and one browser for the whole session (each module signs in its own users).

A missing Chromium is a failure naming the package, never a skip (`make test` installs it when it can)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.processes import Server, otp_from_mail_dir, run_cli, tt_env

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).parents[2]


cli = run_cli


# Playwright's sync API keeps an asyncio loop running in this thread while it is open: the browser lives for
# the package only (other packages' tests call asyncio.run in this thread), the server and the bars for the
# worker's session (xdist's loadfile interleaves packages: at package scope they were rebuilt ~10 times a run).
@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium package is not installed (/usr/bin/chromium missing): "
                    "run `apt-get install -y chromium` (make test does it when it can)", pytrace=False)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the playwright Python package is missing: pip install -e '.[dev]'", pytrace=False)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield b
        b.close()


@pytest.fixture(scope="session")
def bars(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic nifty_100 history generated once per session; each server copies it (sim advance appends)."""
    root = tmp_path_factory.mktemp("bars")
    env = tt_env(root)
    cli(env, "data", "generate", "--universe", "nifty_100", "--from", "2023-01-01", "--to", "2026-07-31")
    return root / "var" / "data"


@dataclass
class App:
    url: str
    env: dict[str, str]
    var: Path

    def mail_code(self, address: str, after: int = 0) -> str:
        """The 6-digit code of the newest sign-in email to `address` sent after the first `after` emails."""
        return otp_from_mail_dir(self.var / "mail", address, timeout=15, skip=after)

    def mail_count(self) -> int:
        return len(list((self.var / "mail").glob("*.eml"))) if (self.var / "mail").exists() else 0

    def session(self, address: str) -> requests.Session:
        """A signed-in API session (email code), for setting up what a test does not click through."""
        s = requests.Session()
        s.headers["X-Requested-With"] = "tradertape"
        n = self.mail_count()
        assert s.post(self.url + "/api/auth/magic-link", json={"email": address}).status_code == 200
        r = s.post(self.url + "/api/auth/verify-link", json={"email": address, "otp": self.mail_code(address, n)})
        assert r.status_code == 200, r.text
        return s

    def context(self, browser: Any, address: str, **kw: Any) -> Any:
        """A browser context signed in as `address` (its session cookie from the API)."""
        return self.context_of(browser, self.session(address), **kw)

    def context_of(self, browser: Any, session: requests.Session, **kw: Any) -> Any:
        """A browser context carrying an API session's cookie (no new sign-in: they are rate-limited)."""
        ctx = browser.new_context(**kw)
        ctx.add_cookies([{"name": c.name, "value": c.value or "", "url": self.url} for c in session.cookies])
        return ctx

    def page(self, browser: Any, address: str) -> Iterator[Any]:
        """A desktop-sized page signed in as `address`, for a module fixture to `yield from` (closes after)."""
        ctx = self.context(browser, address, viewport={"width": 1280, "height": 900})
        try:
            yield ctx.new_page()
        finally:
            ctx.close()

    def dip_buyer(self, api: requests.Session, name: str) -> dict[str, Any]:
        """`api`'s fork of the V3 Dip Buyer template entering at the next open (fills whatever the day's low)."""
        template = next(t for t in api.get(self.url + "/api/strategies", params={"is_template": True}).json()
                        if t["base_model"] == "v3_dip_buyer")
        fork = api.post(self.url + f"/api/strategies/{template['id']}/fork", json={"name": name}).json()
        fields = ("name", "description", "base_model", "entry_rules", "exit_rules", "params", "is_active")
        body = {k: fork[k] for k in fields}
        body["params"] = {**body["params"], "entry_order": "next_open"}
        r = api.put(self.url + f"/api/strategies/{fork['id']}", json=body)
        assert r.status_code == 200, r.text
        return dict(r.json())

    def paper_portfolio(self, api: requests.Session, name: str, positions: int = 2) -> dict[str, Any]:
        """A paper portfolio of the dip buyer holding at least `positions` open positions: scans, approves
        and places through the API, letting simulated trading days pass until the entries fill."""
        fork = self.dip_buyer(api, f"{name} strategy")
        pf = api.post(self.url + "/api/model/portfolios/deploy", json={
            "strategy_id": fork["id"], "name": name, "mode": "paper", "capital": 1_000_000,
            "universe": "nifty_100", "position_size_pct": 10, "max_positions": 5}).json()
        for _ in range(12):
            api.post(self.url + "/api/model/scan", json={"portfolio_id": pf["id"]}).raise_for_status()
            for sig in api.get(self.url + "/api/model/signals",
                               params={"portfolio_id": pf["id"], "status": "pending_approval"}).json():
                api.post(self.url + f"/api/model/signals/{sig['id']}/approve")
            api.post(self.url + "/api/model/cart/place", json={"portfolio_id": pf["id"]})
            cli(self.env, "sim", "advance", "--days", "1")
            self.caught_up()
            held = api.get(self.url + "/api/model/positions", params={"portfolio_id": pf["id"], "status": "open"})
            if len(held.json()) >= positions:
                return dict(pf)
        raise AssertionError(f"{name}: fewer than {positions} positions opened in 12 simulated days")

    def caught_up(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if not requests.get(self.url + "/api/health", timeout=5).json().get("projection_lag"):
                return
            time.sleep(0.1)


@pytest.fixture(scope="session")
def app(tmp_path_factory: pytest.TempPathFactory, bars: Path) -> Iterator[App]:
    root = tmp_path_factory.mktemp("web")
    env = tt_env(root, expiry_sweep_seconds=3600, paper_tick_fills="false", tick_always_open="true",
                 tick_interval="0.2", sign_in_emails_per_ip="1000")  # every module signs in from 127.0.0.1
    shutil.copytree(bars, root / "var" / "data")
    server = Server(env, root / "serve.log").start()
    try:
        yield App(server.url, server.env, root / "var")
    finally:
        server.stop()
