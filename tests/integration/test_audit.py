"""Audit: hash chains that catch an edited or deleted event at exactly that event, the audit API (events,
timeline, as-of), exports verified offline, and `audit verify` / `replay` over the embedded default."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from api.cli import main
from infra.bars.store import BarStore
from infra.bars.synthetic import generate
from infra.bars.universes import load_universe
from infra.store.chain import GENESIS, chain_hash
from tests.conftest import unique_email
from tests.integration.test_api_model import UNIVERSE, advance, deploy, scan_with_signals, template_id, wait_projected
from tests.integration.test_uploads_analytics import INFY, TCS, upload
from tests.support.brokerfiles import tradebook_xlsx


@pytest.fixture
def trading(api_factory: Any, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A user with a paper portfolio that scanned, approved, placed, filled and exited."""
    client = api_factory(database_url)
    generate(BarStore(client.platform.settings.data_dir), load_universe(UNIVERSE), date(2019, 1, 1),
             date(2020, 12, 31))
    client.email = unique_email("audit")
    client.login(client.email)
    s = client.platform.settings
    for key, value in {"DATABASE_URL": s.database_url, "VAR_DIR": str(s.var_dir), "SECRET_KEYS": s.secret_keys,
                       "DATA_DIR": str(s.data_dir), "DUCKDB_PATH": str(s.duckdb_path)}.items():
        monkeypatch.setenv(f"TRADERTAPE_{key}", value)
    monkeypatch.delenv("TRADERTAPE_KAFKA_BOOTSTRAP", raising=False)
    pf = deploy(client, template_id(client, "sma_crossover"), max_positions=3)
    sig = scan_with_signals(client, pf["id"], minimum=1)[0]
    approved = client.post(f"/api/model/signals/{sig['id']}/approve")
    assert approved.status_code == 200, approved.text  # the refusal's reason, should it ever be refused
    client.approved_at = datetime.now(UTC).isoformat()
    assert client.post("/api/model/cart/place").json()["placed"]
    advance(client, 12)
    wait_projected(client)
    client.portfolio, client.signal = pf, sig
    return client


def _events(client: Any, **params: Any) -> list[dict[str, Any]]:
    r = client.get("/api/audit/events", params={"limit": 500, **params})
    assert r.status_code == 200, r.text
    return list(r.json())


def _stored_events(client: Any) -> sa.TableClause:
    """eventsourcing's events table; SQLite numbers notifications by rowid."""
    key = "rowid" if client.platform.db.is_sqlite else "notification_id"
    return sa.table("stored_events", sa.column(key), sa.column("state"))


def test_events_api_chain_filters_and_ownership(trading: Any, api_factory: Any) -> None:
    oldest = _events(trading, order="oldest")
    assert oldest and oldest == sorted(oldest, key=lambda e: e["position"])
    assert _events(trading) == list(reversed(oldest))  # newest first by default
    account = oldest[0]["account_id"]
    assert all(e["account_id"] == account for e in oldest)
    # the chain links each event to the account's previous one, from the genesis hash
    assert oldest[0]["prev_hash"] == GENESIS
    for before, after in itertools.pairwise(oldest):
        assert after["prev_hash"] == before["hash"]
    from projections.envelope import Envelope
    keys = set(Envelope.__dataclass_fields__)
    for e in oldest[:5]:
        assert e["hash"] == chain_hash(e["prev_hash"], Envelope(**{k: e[k] for k in keys}))
    # every event names its cause
    approvals = _events(trading, type="SignalApproved")
    assert approvals and approvals[0]["meta"]["actor"] == f"user:{account}" and approvals[0]["meta"]["request_id"]
    assert approvals[0]["meta"]["correlation_id"] == approvals[0]["meta"]["request_id"]
    fills = _events(trading, type="FillRecorded")
    assert fills and fills[0]["meta"]["actor"] == "scheduler"
    run = fills[0]["meta"]["correlation_id"]  # one market-clock run: every event it caused shares the id
    assert run.startswith("clock-")
    same_run = _events(trading, type="DayClosed")
    assert any(e["meta"]["correlation_id"] == run for e in same_run)

    pf_id = trading.portfolio["id"]
    mine = _events(trading, aggregate_type="Portfolio", aggregate_id=str(pf_id))
    assert mine and all(e["aggregate_type"] == "Portfolio" for e in mine)
    assert {e["aggregate_id"] for e in mine} == {mine[0]["aggregate_id"]}
    r = trading.get("/api/audit/events", params={"type": "SignalGenerated", "limit": 2})
    assert len(r.json()) == 2 and int(r.headers["X-Total-Count"]) >= 2
    future = _events(trading, **{"from": "2999-01-01"})
    assert future == []
    # malformed query values are schema violations (422, api/errors.py)
    assert trading.get("/api/audit/events", params={"aggregate_id": "7"}).status_code == 422
    assert trading.get("/api/audit/events", params={"from": "yesterday"}).status_code == 422
    for bad in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"):  # out of range once in UTC
        assert trading.get("/api/audit/events", params={"from": bad}).status_code == 422
        assert trading.get(f"/api/audit/portfolios/{pf_id}/as-of", params={"at": bad}).status_code == 422
    assert trading.get("/api/audit/events", params={"aggregate_type": "Portfolio",
                                                    "aggregate_id": "\u00b2"}).status_code == 422

    other = api_factory()
    other.login(unique_email("other"))
    theirs = _events(other)
    assert theirs and all(e["account_id"] != account for e in theirs)
    assert other.get("/api/audit/events", params={"account_id": account}).status_code == 403
    assert other.get("/api/audit/timeline", params={"portfolio_id": pf_id}).status_code == 404
    assert other.get(f"/api/audit/portfolios/{pf_id}/as-of", params={"at": "2999-01-01"}).status_code == 404


def test_timeline_and_as_of(trading: Any) -> None:
    pf_id, sig = trading.portfolio["id"], trading.signal
    steps = trading.get("/api/audit/timeline", params={"portfolio_id": pf_id}).json()["steps"]
    story = [s for s in steps if s["signal_id"] == sig["id"]]
    kinds = [s["step"] for s in story]
    assert kinds[:5] == ["signal", "approval", "order", "fill", "position"]
    scan = story[0]["caused_by"]  # the scan that proposed it: on request (user) or the market clock
    assert (scan["kind"], scan["via"]) in (("user", "scan on request"), ("scheduler", "scheduled scan"))
    assert story[1]["caused_by"]["kind"] == "user" and story[1]["caused_by"]["request_id"]
    assert story[3]["caused_by"]["kind"] == "scheduler"  # the market clock filled it
    assert all(s["summary"] and s["at"] for s in story)
    # each step names the one it follows, and every step leads back to the scan that proposed the signal
    assert story[0]["follows"] is None and story[0]["proposed_by"] == story[0]["position"]
    for before, after in itertools.pairwise(story):
        assert after["follows"] == before["position"] and after["proposed_by"] == story[0]["position"]
    # after the position opens only stop moves, an exit signal and the exit can follow, the exit last
    assert set(kinds[5:]) <= {"stop", "exit_signal", "exit"}, kinds
    if "exit" in kinds:
        assert kinds.index("exit") > kinds.index("position") and kinds[-1] == "exit"

    # as of just after the approval: in the cart, cash untouched, nothing held
    then = trading.get(f"/api/audit/portfolios/{pf_id}/as-of", params={"at": trading.approved_at}).json()
    signals = {s["id"]: s for s in then["signals"]}
    assert signals[sig["id"]]["status"] == "in_cart"
    assert then["cash"] == 1_000_000 and then["positions"] == [] and then["last_day"] >= sig["day"]
    now = trading.get(f"/api/audit/portfolios/{pf_id}/as-of", params={"at": datetime.now(UTC).isoformat()}).json()
    dash = trading.get("/api/model/dashboard", params={"portfolio_id": pf_id}).json()
    assert now["cash"] == dash["cash"] and now["equity"] == pytest.approx(dash["equity"], abs=0.01)
    assert {p["id"] for p in now["positions"]} == {p["id"] for p in dash["positions"]}
    # the timeline and the as-of view agree: the signal's position is held now exactly when it has no exit
    opened = story[4]["position_id"]
    assert (opened in {p["id"] for p in now["positions"]}) == ("exit" not in kinds)
    r = trading.get(f"/api/audit/portfolios/{pf_id}/as-of", params={"at": "2001-01-01"})
    assert r.status_code == 400 and "did not exist yet" in r.json()["detail"]


def test_verify_catches_an_edited_and_a_deleted_event(trading: Any, capsys: pytest.CaptureFixture[str]) -> None:
    # the flows of the earlier issues: a paper portfolio with fills and exits (the fixture), imports
    r = upload(trading, [("tradebook-AB1234-EQ.xlsx", tradebook_xlsx(INFY + TCS))])
    assert r.status_code == 200 and r.json()["imported"] == len(INFY + TCS), r.text
    wait_projected(trading)
    main(["audit", "verify"])  # passes: returns normally (exit status 0)
    out = capsys.readouterr().out
    assert "audit verify passed" in out and "DIFFERENT" not in out

    db = trading.platform.db
    events = _events(trading, type="SignalApproved")
    target = events[0]["position"]
    with db.write() as conn:  # an insider edits one stored event
        table = _stored_events(trading)
        key = table.c.rowid if trading.platform.db.is_sqlite else table.c.notification_id
        state = conn.execute(sa.select(table.c.state).where(key == target)).scalar_one()
        raw = bytes(state) if not isinstance(state, str) else state.encode()
        doc = json.loads(raw)
        doc["meta"]["actor"] = "user:999"
        new = json.dumps(doc, separators=(",", ":")).encode()
        conn.execute(sa.update(table).where(key == target).values(state=new))
    with pytest.raises(SystemExit) as exc:
        main(["audit", "verify", "--no-projections"])
    assert exc.value.code == 1
    out = capsys.readouterr().out
    assert f"first break: position {target} " in out and "altered" in out

    last = _events(trading)[0]["position"]
    with db.write() as conn:  # and one deletes another (restoring nothing)
        conn.execute(sa.delete(table).where(key == last))
    with pytest.raises(SystemExit) as exc:
        main(["audit", "verify", "--no-projections"])
    assert exc.value.code == 1
    out = capsys.readouterr().out
    assert f"position {last} " in out and "missing from the store" in out


def test_verify_and_replay_catch_a_projection_row_removed(trading: Any, capsys: pytest.CaptureFixture[str]) -> None:
    main(["replay", "--projection", "portfolios,risk"])
    out = capsys.readouterr().out
    assert "rm_signals" in out and "equal" in out and "DIFFERENT" not in out
    with trading.platform.db.write() as conn:
        conn.execute(sa.text("DELETE FROM rm_signals WHERE id = :i"), {"i": trading.signal["id"]})
    with pytest.raises(SystemExit) as exc:
        main(["audit", "verify", "--no-topic"])
    assert exc.value.code == 1
    out = capsys.readouterr().out
    assert "read model rm_signals differs from a rebuild" in out
    # the failure names the projection that writes the table, as `replay` takes it, and that command mends it
    fix = "tradertape replay --projection portfolios --in-place"
    assert fix in out
    main(fix.split()[1:])
    main(["audit", "verify", "--no-topic"])
    assert "audit verify passed" in capsys.readouterr().out


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_export_and_offline_check(trading: Any, tmp_path: Path, fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / f"export.{fmt}"
    main(["audit", "export", "--account", trading.email, "--format", fmt, "--out", str(out)])
    count = len(_events(trading))
    assert f"exported {count} events" in capsys.readouterr().out
    main(["audit", "import-check", str(out)])
    assert "export verified" in capsys.readouterr().out
    if fmt == "jsonl":
        lines = out.read_text().splitlines()
        doc = json.loads(lines[5])
        doc["data"]["quantity"] = 1_000_000  # a forged line
        lines[5] = json.dumps(doc)
        out.write_text("\n".join(lines) + "\n")
        with pytest.raises(SystemExit) as exc:
            main(["audit", "import-check", str(out)])
        assert exc.value.code == 1
        assert f"position {doc['position']}" in capsys.readouterr().out
    window = tmp_path / f"window.{fmt}"
    today = datetime.now(UTC).date().isoformat()
    main(["audit", "export", "--account", trading.email, "--from", today, "--to", today, "--format", fmt,
          "--out", str(window)])
    main(["audit", "import-check", str(window)])
    assert "export verified" in capsys.readouterr().out
    # a window starting mid-history: its first event links to the hash before it, and it verifies
    late = tmp_path / f"late.{fmt}"
    main(["audit", "export", "--account", trading.email, "--from", trading.approved_at, "--format", fmt,
          "--out", str(late)])
    shown = capsys.readouterr().out
    assert f"exported {count} events" not in shown and "exported 0 events" not in shown
    from streams.audit import load_export
    header, _ = load_export(late)
    assert header["first_prev_hash"] != GENESIS
    main(["audit", "import-check", str(late)])
    assert "export verified" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["audit", "export", "--account", "nobody@example.com", "--out", str(tmp_path / "x.jsonl")])


def test_admins_read_any_account(api_factory: Any) -> None:
    admin_addr = unique_email("admin")
    admin = api_factory(admin_emails=admin_addr)
    admin.login(admin_addr)
    user = api_factory()
    user.login(unique_email("user"))
    made = user.post("/api/strategies", json={"name": "mine", "base_model": "sma_crossover"}).json()
    owner = made["owner_id"]
    seen = _events(admin, account_id=owner, aggregate_type="Strategy", aggregate_id=str(made["id"]))
    assert [e["type"] for e in seen] == ["StrategyCreated"] and seen[0]["account_id"] == owner
    assert user.get("/api/audit/events", params={"account_id": owner}).status_code == 200  # oneself is fine
