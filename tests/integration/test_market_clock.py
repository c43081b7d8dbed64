"""The market clock outside HTTP: `tradertape sim advance` as a user runs it, the after-close schedule,
the expiry sweep, and the scheduler thread doing a real run."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from api.cli import main
from commands.market_clock import MarketClock
from domain.market_hours import IST
from infra.bars.store import BarStore
from infra.runtime.scheduler import Scheduler, next_run
from tests.integration.test_api_model import deploy, scan_with_signals, template_id, wait_projected


def test_next_run_is_the_next_trading_days_scan_time() -> None:
    def ist(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
        return datetime(year, month, day, hour, minute, tzinfo=IST)
    # Friday before the scan time -> the same day; after it -> Monday (weekend skipped)
    assert next_run(ist(2026, 11, 20, 10, 0), "15:45") == ist(2026, 11, 20, 15, 45)
    assert next_run(ist(2026, 11, 20, 16, 0), "15:45") == ist(2026, 11, 23, 15, 45)
    # a Saturday, given in UTC
    assert next_run(datetime(2026, 11, 21, 4, 0, tzinfo=UTC), "16:30") == ist(2026, 11, 23, 16, 30)


def test_sim_advance_cli_moves_paper_portfolios(market: Any, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    pf = deploy(market, template_id(market, "sma_crossover"), auto_approve=True, max_positions=5)
    settings = market.platform.settings
    monkeypatch.setenv("TRADERTAPE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("TRADERTAPE_VAR_DIR", str(settings.var_dir))
    monkeypatch.setenv("TRADERTAPE_SECRET_KEYS", settings.secret_keys)
    monkeypatch.setenv("TRADERTAPE_DATA_DIR", str(settings.data_dir))
    main(["sim", "advance", "--days", "25"])
    out = capsys.readouterr().out
    assert "Advanced 25 trading day(s)" in out
    last = BarStore(Path(settings.data_dir)).last_date()
    assert last is not None and last > date(2020, 12, 31)
    wait_projected(market)
    dash = market.get("/api/model/dashboard", params={"portfolio_id": pf["id"]}).json()
    assert dash["portfolio"]["last_day"] == last.isoformat()
    assert len(dash["equity_curve"]) == 26  # the deployment day and the 25 new ones
    fills = [a for a in dash["activity"] if a["type"] == "FillRecorded"]
    assert fills, "auto-approved crossovers were filled by the paper broker"

    with pytest.raises(SystemExit) as exc:
        main(["sim", "advance", "--days", "0"])
    assert exc.value.code == 2 and "--days" in capsys.readouterr().out


def test_expiry_sweep_expires_signals_past_expires_at(market: Any) -> None:
    pf = deploy(market, template_id(market, "sma_crossover"), max_positions=5)
    pending = scan_with_signals(market, pf["id"], minimum=1)
    approved = market.post(f"/api/model/signals/{pending[0]['id']}/approve").json()
    assert approved["status"] == "in_cart"
    clock: MarketClock = market.app.state.market_clock
    before = datetime.fromisoformat(pending[0]["expires_at"].replace("Z", "+00:00"))
    assert clock.expire_overdue(before.replace(year=before.year - 1)) == 0  # not yet due
    expired = clock.expire_overdue(datetime.now(UTC))  # the synthetic 2021 days are long past
    assert expired >= 1
    wait_projected(market)
    states = {s["id"]: s for s in market.get("/api/model/signals", params={"portfolio_id": pf["id"]}).json()}
    assert states[pending[0]["id"]]["status"] == "expired"
    assert "expires_at" in states[pending[0]["id"]]["failure_reason"]
    assert market.get("/api/model/signals", params={"status": "pending_approval"}).json() == []


def test_scheduler_thread_runs_the_clock_when_due(market: Any) -> None:
    pf = deploy(market, template_id(market, "sma_crossover"), auto_approve=True)
    clock: MarketClock = market.app.state.market_clock
    scheduler = Scheduler(clock, "15:45", sweep_seconds=0.05)
    scheduler.due = datetime.now(UTC)  # as if 15:45 IST just passed
    scheduler.start()
    try:
        deadline = time.monotonic() + 20
        while scheduler.last_run is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        scheduler.stop()
    assert scheduler.last_run is not None and scheduler.last_error is None
    assert scheduler.due > datetime.now(UTC)  # the next run is scheduled after this one
    wait_projected(market)
    row = market.get("/api/model/dashboard", params={"portfolio_id": pf["id"]}).json()["portfolio"]
    assert row["last_day"] == "2020-12-31"  # the deployment day's close was processed and scanned
