"""The backup and restore procedures printed in docs/OPERATIONS.md, run as printed (bash), on Postgres and on
the embedded SQLite file: what a user had is back, their session still signs them in, and new commands work."""

from __future__ import annotations

import email
import email.message
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from infra.bars.store import BarStore
from infra.bars.synthetic import generate
from infra.bars.universes import load_universe
from infra.config.settings import Settings
from tests.conftest import make_settings
from tests.docs.guides import blocks

BIN = Path(sys.executable).parent


def _procedure(tag: str) -> str:
    found = blocks("docs/OPERATIONS.md", tag)
    assert len(found) == 1, f"docs/OPERATIONS.md needs exactly one ```sh {tag} block"
    return found[0].text


def _run(tag: str, settings: Settings, backup: Path, cwd: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADERTAPE_")}
    env.update({
        "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        "TRADERTAPE_ENV": "test", "TRADERTAPE_DATABASE_URL": settings.database_url,
        "TRADERTAPE_VAR_DIR": str(settings.var_dir), "TRADERTAPE_DATA_DIR": str(settings.data_dir),
        "TRADERTAPE_DUCKDB_PATH": str(settings.duckdb_path), "TRADERTAPE_SECRET_KEYS": settings.secret_keys,
        "TRADERTAPE_KAFKA_BOOTSTRAP": "", "BACKUP": str(backup), "APP_VAR": str(settings.duckdb_path.parent),
        "DB_FILE": settings.database_url.removeprefix("sqlite:///"),
    })
    script = "set -euo pipefail\n" + _procedure(tag)
    done = subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, f"```sh {tag} failed:\n{done.stdout}\n{done.stderr}"


def _sign_in(client: TestClient, settings: Settings, address: str) -> None:
    assert client.post("/api/auth/magic-link", json={"email": address}).status_code == 200
    newest = max((settings.var_dir / "mail").glob("*.eml"), key=lambda p: p.stat().st_mtime)
    msg = email.message_from_bytes(newest.read_bytes())
    part = msg.get_payload(0) if msg.is_multipart() else msg
    assert isinstance(part, email.message.Message)
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    otp = re.search(r"code: (\d{6})", payload.decode())
    assert otp, "no sign-in code in the email"
    r = client.post("/api/auth/verify-link", json={"email": address, "otp": otp.group(1)})
    assert r.status_code == 200, r.text


def _state(client: TestClient, strategy_id: int, run_id: int, portfolio_id: int) -> dict[str, Any]:
    return {
        "me": client.get("/api/auth/me").json(),
        "strategy": client.get(f"/api/strategies/{strategy_id}").json(),
        "run": client.get(f"/api/backtest/runs/{run_id}").json(),
        "positions": client.get("/api/model/positions", params={"portfolio_id": portfolio_id}).json(),
        "signals": client.get("/api/model/signals", params={"portfolio_id": portfolio_id}).json(),
    }


@pytest.mark.parametrize("kind", ["postgres", "sqlite"])
def test_backup_and_restore_as_documented(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    server = request.getfixturevalue("postgres") if kind == "postgres" else None
    url = server.create_database() if server else None
    settings = make_settings(tmp_path, url)
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    generate(BarStore(settings.data_dir), load_universe("nifty_50"), date(2019, 1, 1), date(2020, 6, 30))
    backup = tmp_path / "backup"
    backup.mkdir()
    try:
        with TestClient(create_app(settings)) as before:
            _sign_in(before, settings, "restore@example.com")
            strategy = before.post("/api/strategies", json={"name": "Kept", "base_model": "sma_crossover"}).json()
            run = before.post("/api/backtest/run", json={
                "strategy_id": strategy["id"], "symbols": ["INFY", "TCS", "RELIANCE", "SBIN", "ITC"],
                "start_date": "2020-01-01", "end_date": "2020-06-30", "starting_capital": 1000000}).json()
            assert run["trades"], "the backtest should trade"
            portfolio = before.post("/api/model/portfolios/deploy", json={
                "strategy_id": strategy["id"], "name": "Kept paper", "mode": "paper", "capital": 1000000,
                "universe": "nifty_50", "position_size_pct": 10, "max_positions": 10,
                "auto_approve": True}).json()
            assert before.post("/api/model/scan", json={"portfolio_id": portfolio["id"]}).status_code == 200
            kept = _state(before, strategy["id"], run["id"], portfolio["id"])
            cookies = dict(before.cookies)
        _run(f"backup-{kind}", settings, backup, tmp_path)

        # the disaster: the database and the files are gone
        if server:
            server.drop_database(settings.database_url)
            settings = make_settings(tmp_path, server.create_database())
        else:
            for f in settings.var_dir.glob("tradertape.db*"):
                f.unlink()
        shutil.rmtree(settings.duckdb_path.parent / "analytics")
        shutil.rmtree(settings.data_dir)

        _run(f"restore-{kind}", settings, backup, tmp_path)
        with TestClient(create_app(settings), cookies=cookies) as after:
            assert _state(after, strategy["id"], run["id"], portfolio["id"]) == kept
            again = after.post("/api/strategies", json={"name": "After", "base_model": "v3_dip_buyer"})
            assert again.status_code == 201 and again.json()["id"] > strategy["id"]
            rerun = after.post("/api/backtest/run", json={
                "strategy_id": strategy["id"], "symbols": ["INFY", "TCS", "RELIANCE", "SBIN", "ITC"],
                "start_date": "2020-01-01", "end_date": "2020-06-30", "starting_capital": 1000000})
            assert rerun.json()["trades"] == run["trades"]  # the bar store is back too
    finally:
        if server:
            server.drop_database(settings.database_url)


def test_kafka_restore_as_documented(tmp_path: Path, postgres: Any, kafka: Any,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import uuid

    import sqlalchemy as sa

    from commands import messages as m
    from commands.ports import CommandMeta
    from infra.bootstrap import bootstrap, seed
    from projections.base import projection_dead_letters
    from projections.registry import all_projections
    from projections.strategies import strategies
    from streams.audit import replay_and_compare
    from streams.workers import make_projector, make_relay

    def platform_on(url: str, topic: str) -> Any:
        s = make_settings(tmp_path, url, kafka_bootstrap=kafka.bootstrap, kafka_topic=topic, kafka_partitions=3)
        return bootstrap(s)

    def write(p: Any, tag: str) -> None:
        for acct in (101, 102, 103, 104):
            body = m.StrategyBody(f"{tag}-{acct}", "", "sma_crossover", None, None, None, True)
            p.bus.handle(m.CreateStrategy(acct, body), CommandMeta(actor="test"))

    def publish_and_project(p: Any) -> None:
        relay = make_relay(p)
        while relay.step():
            pass
        runner = make_projector(p, "kafka")
        deadline, idle = time.monotonic() + 60, 0
        while runner.applied_position < p.store.max_position() or idle < 3:
            idle = 0 if runner.step() else idle + 1
            assert time.monotonic() < deadline, "the projector did not catch up"

    def names(p: Any) -> set[str]:
        with p.db.read() as conn:
            return {r.name for r in conn.execute(sa.select(strategies.c.name))}

    url = postgres.create_database()
    p = platform_on(url, f"tt.{uuid.uuid4().hex[:8]}")
    seed(p)
    write(p, "kept")
    publish_and_project(p)
    backup = tmp_path / "backup"
    backup.mkdir()
    for folder in (p.settings.duckdb_path.parent / "analytics", p.settings.data_dir):
        folder.mkdir(parents=True, exist_ok=True)
    _run("backup-postgres", p.settings, backup, tmp_path)
    write(p, "lost")  # after the backup: published and projected, then the database is lost
    publish_and_project(p)
    p.close()
    postgres.drop_database(url)

    url = postgres.create_database()
    try:
        settings = make_settings(tmp_path, url)
        _run("restore-postgres", settings, backup, tmp_path)
        p = platform_on(url, f"tt.{uuid.uuid4().hex[:8]}")  # the new topic
        _run("restore-kafka", p.settings, backup, tmp_path)
        publish_and_project(p)
        write(p, "after")
        publish_and_project(p)
        got = names(p)
        accounts = (101, 102, 103, 104)
        assert {f"kept-{a}" for a in accounts} <= got and {f"after-{a}" for a in accounts} <= got
        assert not any(n.startswith("lost-") for n in got)
        with p.db.read() as conn:
            assert conn.execute(sa.select(projection_dead_letters)).all() == []
        live, replayed, _ = replay_and_compare(p, all_projections(), "store")
        assert live == replayed
        p.close()
    finally:
        postgres.drop_database(url)
