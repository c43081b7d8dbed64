"""One bad event never stops the pipeline: an event holding a lone surrogate ("\\ud800", which JSON can
carry but UTF-8 cannot), injected straight into the store past the HTTP edge, is chained, relayed and
verified like any other; the projection that cannot apply it sets it aside in the dead-letter table and
every other account and every later event is still projected; `/api/health` turns degraded naming it;
`tradertape projections retry-failed` applies set-aside events again after a fix."""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from api.cli import main
from commands import messages as m
from commands.ports import CommandMeta
from infra.bootstrap import Platform, bootstrap
from infra.config.version import VERSION
from infra.store.chain import canonical
from projections.audit import audit_events
from projections.base import projection_dead_letters, projection_tracking
from projections.envelope import Envelope
from projections.registry import all_projections
from projections.strategies import StrategiesProjection, strategies
from streams.audit import verify_topic
from streams.runner import ProjectionRunner
from streams.sources import Item
from streams.workers import make_projector, make_relay
from tests.conftest import make_settings
from tests.support.services import KafkaBroker

META = CommandMeta(actor="test")
POISON = "bad \ud800 name"


def _create(p: Platform, account: int, name: str) -> int:
    body = m.StrategyBody(name, "", "sma_crossover", None, None, None, True)
    return int(p.bus.handle(m.CreateStrategy(account, body), META).value)


def _names(p: Platform) -> dict[int, set[str]]:
    with p.db.read() as conn:
        rows = conn.execute(sa.select(strategies.c.owner_id, strategies.c.name)
                            .where(strategies.c.is_template.is_(False))).all()
    out: dict[int, set[str]] = {}
    for r in rows:
        out.setdefault(int(r.owner_id), set()).add(r.name)
    return out


def _dead(p: Platform) -> list[Any]:
    with p.db.read() as conn:
        return list(conn.execute(sa.select(projection_dead_letters).order_by(projection_dead_letters.c.position)))


def _applied(p: Platform, names: list[str]) -> dict[str, int]:
    """Per shard, the position every projection has applied."""
    with p.db.read() as conn:
        rows = conn.execute(sa.select(projection_tracking)).all()
    per: dict[str, list[int]] = {}
    for r in rows:
        if r.projection in names:
            per.setdefault(r.shard, []).append(int(r.position))
    return {shard: min(v) if len(v) == len(names) else 0 for shard, v in per.items()}


def _run_until_idle(runner: ProjectionRunner, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    idle = 0
    while idle < 3:
        idle = 0 if runner.step() else idle + 1
        assert time.monotonic() < deadline, "the projector did not settle"


def _poison_and_neighbours(p: Platform) -> int:
    """Account 7: a good strategy, the poisonous one, another good one; account 8 in between."""
    _create(p, 7, "before")
    _create(p, 7, POISON)
    poison_position = p.store.max_position()
    _create(p, 8, "other account")
    _create(p, 7, "after")
    return poison_position


def test_canonical_encoding_is_total_and_unchanged_for_valid_events() -> None:
    base = dict(event_id="e", type="T", schema_version=1, aggregate_type="A", aggregate_id="x",
                aggregate_version=1, account_id=1, occurred_at="2026-01-01T00:00:00+00:00", position=1)
    valid = Envelope(**base, data={"name": "Nifty ₹ 50"})  # type: ignore[arg-type]
    assert canonical(valid) == json.dumps(
        {k: v for k, v in {**base, "data": valid.data, "meta": {}}.items() if k != "position"},
        sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    poisoned = Envelope(**base, data={"name": POISON})  # type: ignore[arg-type]
    assert canonical(poisoned) == canonical(poisoned)  # no exception, deterministic
    assert b"\xed\xa0\x80" in canonical(poisoned)  # U+D800 as its own 3-byte code unit
    assert canonical(poisoned) != canonical(Envelope(**base, data={"name": "bad \ufffd name"}))  # type: ignore[arg-type]


@pytest.fixture
def platform(tmp_path: Path, database_url: str) -> Any:
    p = bootstrap(make_settings(tmp_path, database_url))
    yield p
    p.close()


def test_a_poisonous_event_in_the_store_is_set_aside_and_everything_else_projected(platform: Platform) -> None:
    poison_position = _poison_and_neighbours(platform)
    runner = make_projector(platform, "store")
    _run_until_idle(runner)
    assert _names(platform) == {7: {"before", "after"}, 8: {"other account"}}
    head = platform.store.max_position()
    assert _applied(platform, runner.names) == {"store": head}  # every projection moved past it
    dead = _dead(platform)
    assert [(d.projection, d.position, d.event_type, d.account_id, d.attempts) for d in dead] == [
        ("strategies", poison_position, "StrategyCreated", 7, 1)]
    assert dead[0].error.startswith(("UnicodeEncodeError", "StatementError", "DataError"))
    # the audit log (another projection) recorded the event all the same
    with platform.db.read() as conn:
        logged = conn.execute(sa.select(sa.func.count()).select_from(audit_events)
                              .where(audit_events.c.position == poison_position)).scalar_one()
    assert logged == 1
    # the hash chain holds the event: sealed, and the store verifies
    breaks, figures = platform.store.chain.verify_store()
    assert breaks == [] and figures["events"] == head
    # a retry without a fix fails again and keeps it set aside, counted
    assert runner.retry_failed() == (0, 1)
    assert [d.attempts for d in _dead(platform)] == [2]
    # later events keep flowing after the retry
    _create(platform, 7, "later still")
    _run_until_idle(runner)
    assert _names(platform)[7] == {"before", "after", "later still"}


def test_retry_failed_applies_set_aside_events_after_a_fix(platform: Platform, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    sid = _create(platform, 7, "first name")
    original = StrategiesProjection.on_StrategyUpdated

    def broken(self: Any, conn: Any, env: Envelope) -> None:
        raise ValueError("a bug in this projection")

    monkeypatch.setattr(StrategiesProjection, "on_StrategyUpdated", broken)
    runner = make_projector(platform, "store")
    body = m.StrategyBody("renamed", "", "sma_crossover", None, None, None, True)
    platform.bus.handle(m.UpdateStrategy(7, sid, body), META)
    _create(platform, 8, "unaffected")
    _run_until_idle(runner)
    assert [(d.projection, d.event_type, d.error) for d in _dead(platform)] == [
        ("strategies", "StrategyUpdated", "ValueError: a bug in this projection")]
    assert _names(platform) == {7: {"first name"}, 8: {"unaffected"}}
    monkeypatch.setattr(StrategiesProjection, "on_StrategyUpdated", original)  # the fix is deployed
    s = platform.settings
    for key, value in {"DATABASE_URL": s.database_url, "VAR_DIR": str(s.var_dir), "SECRET_KEYS": s.secret_keys,
                       "DATA_DIR": str(s.data_dir), "DUCKDB_PATH": str(s.duckdb_path)}.items():
        monkeypatch.setenv(f"TRADERTAPE_{key}", value)
    monkeypatch.delenv("TRADERTAPE_KAFKA_BOOTSTRAP", raising=False)
    main(["projections", "retry-failed"])
    assert "re-applied 1 set-aside event(s); 0 still failing" in capsys.readouterr().out
    assert _dead(platform) == []
    assert _names(platform) == {7: {"renamed"}, 8: {"unaffected"}}


def test_health_is_degraded_naming_the_set_aside_event(api_factory: Any, database_url: str) -> None:
    admin_email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    client = api_factory(database_url, admin_emails=admin_email)
    assert client.login(admin_email)["is_admin"]
    p = client.platform
    poison_position = _poison_and_neighbours(p)
    deadline = time.monotonic() + 30
    names = [x.name for x in all_projections()]
    while _applied(p, names).get("store", 0) < p.store.max_position():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    public = client.__class__(client.app).get("/api/health")
    assert public.json() == {"status": "degraded", "version": VERSION}  # no detail for the public
    detail = client.get("/api/health").json()
    assert detail["status"] == "degraded"
    assert [(d["projection"], d["position"], d["event_type"]) for d in detail["dead_letters"]] == [
        ("strategies", poison_position, "StrategyCreated")]


def test_kafka_pipeline_survives_a_poisonous_event(tmp_path: Path, pg_url: str, kafka: KafkaBroker) -> None:
    settings = make_settings(tmp_path, pg_url, kafka_bootstrap=kafka.bootstrap,
                             kafka_topic=f"tt.{uuid.uuid4().hex[:8]}", kafka_partitions=3)
    p = bootstrap(settings)
    try:
        poison_position = _poison_and_neighbours(p)
        relay = make_relay(p)
        while relay.step():  # the relay seals and publishes it like any other
            pass
        assert relay.position() == p.store.max_position()
        runner = make_projector(p, "kafka")
        deadline = time.monotonic() + 30
        while _names(p) != {7: {"before", "after"}, 8: {"other account"}}:
            runner.step()
            assert time.monotonic() < deadline, _names(p)
        assert [(d.projection, d.position, d.shard.startswith("kafka:")) for d in _dead(p)] == [
            ("strategies", poison_position, True)]
        problems, figures = verify_topic(p)  # the topic's chain, recomputed, verifies
        assert problems == [] and figures["events"] == p.store.max_position()
    finally:
        p.close()


class _ListSource:
    """A source handing out given envelopes once (as a topic written by another producer could)."""

    def __init__(self, envs: list[Envelope]) -> None:
        self.envs = envs

    def shards(self) -> list[str]:
        return ["store"]

    def fetch(self, tracking: Any, max_items: int) -> list[Item]:
        after = tracking().get("store", (0, None))[0]
        return [Item("store", None, e) for e in self.envs if e.position > after][:max_items]

    def reset(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_an_event_whose_dead_letter_cannot_be_recorded_in_full_still_never_halts_the_projector(
        platform: Platform) -> None:
    """An event a projection cannot apply and whose fields do not fit the dead-letter row either (an
    account id beyond 64 bits, an event id longer than a UUID): it is set aside with what fits, and the
    projector moves on to the next event (it stopped there: the dead-letter insert failed in turn)."""
    for name in ("template", "unrecordable", "later"):
        _create(platform, 7, name)
    good, stored, later = platform.store.read_plain(0, 1000)[-3:]
    bad = dataclasses.replace(stored, event_id="x" * 40, account_id=2**63)
    runner = ProjectionRunner(platform.db, all_projections(), _ListSource([good, bad, later]))
    runner.create_tables()
    _run_until_idle(runner)
    assert _names(platform) == {7: {"template", "unrecordable", "later"}}  # (owned by the data's account)
    assert _applied(platform, runner.names) == {"store": later.position}
    dead = _dead(platform)
    assert [(d.projection, d.position, d.account_id, d.event_id) for d in dead] == [
        ("audit_log", bad.position, None, "x" * 36)]
    assert dead[0].error.startswith(("OverflowError", "DataError", "StatementError")), dead[0].error
    assert Envelope.from_json(dead[0].envelope) == bad  # the whole event is kept for retry-failed
