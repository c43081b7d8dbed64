"""One contract for the event store, run against SQLite and against Postgres."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from commands.messages import CreateStrategy, StrategyBody, UpdateStrategy
from commands.ports import CommandMeta, ConcurrencyConflict
from domain.errors import Conflict
from domain.strategies import Strategy, normalize_spec
from infra.bootstrap import bootstrap
from infra.store.db import SqlIdAllocator
from tests.conftest import make_settings

META = CommandMeta(actor="test", request_id="req-1")


@pytest.fixture
def platform(tmp_path: Path, database_url: str):  # type: ignore[no-untyped-def]
    p = bootstrap(make_settings(tmp_path, database_url))
    yield p
    p.close()



def must(found: Strategy | None) -> Strategy:
    assert found is not None, "the aggregate is not in the store"
    return found

def _strategy(sid: int, owner: int = 1) -> Strategy:
    return Strategy.create(sid, owner, f"s{sid}", "", normalize_spec("sma_crossover", None, None, None))


def test_saved_aggregate_loads_back_with_its_version(platform) -> None:  # type: ignore[no-untyped-def]
    s = _strategy(1)
    pos = platform.store.save([s], META)
    assert pos is not None and pos > 0
    loaded = platform.store.load(Strategy, Strategy.uuid_for(1))
    assert loaded is not None and loaded.version == 1 and loaded.name == "s1" and loaded.owner_id == 1
    loaded.toggle_share(1)
    platform.store.save([loaded], META)
    again = platform.store.load(Strategy, Strategy.uuid_for(1))
    assert again.version == 2 and again.is_public is True
    assert platform.store.load(Strategy, Strategy.uuid_for(99)) is None


def test_concurrent_save_of_same_version_conflicts(platform) -> None:  # type: ignore[no-untyped-def]
    platform.store.save([_strategy(1)], META)
    a = platform.store.load(Strategy, Strategy.uuid_for(1))
    b = platform.store.load(Strategy, Strategy.uuid_for(1))
    a.toggle_share(1)
    b.toggle_share(1)
    platform.store.save([a], META)
    with pytest.raises(ConcurrencyConflict):
        platform.store.save([b], META)


def test_multi_aggregate_save_is_all_or_nothing(platform) -> None:  # type: ignore[no-untyped-def]
    platform.store.save([_strategy(1)], META)
    stale = platform.store.load(Strategy, Strategy.uuid_for(1))
    fresh = platform.store.load(Strategy, Strategy.uuid_for(1))
    fresh.toggle_share(1)
    platform.store.save([fresh], META)
    stale.toggle_share(1)
    head = platform.store.max_position()
    with pytest.raises(ConcurrencyConflict):
        platform.store.save([_strategy(2), stale], META)
    assert platform.store.load(Strategy, Strategy.uuid_for(2)) is None
    assert platform.store.max_position() == head


def test_read_returns_envelopes_in_store_order_with_metadata(platform) -> None:  # type: ignore[no-untyped-def]
    for i in range(1, 6):
        platform.store.save([_strategy(i, owner=i)], META)
    envs = platform.store.read(0, 100)
    assert [e.data["strategy_id"] for e in envs] == [1, 2, 3, 4, 5]
    positions = [e.position for e in envs]
    assert positions == sorted(positions) and len(set(positions)) == 5
    e = envs[2]
    assert e.type == "StrategyCreated" and e.aggregate_type == "Strategy" and e.account_id == 3
    assert e.aggregate_version == 1 and e.schema_version == 1
    assert e.meta == {"actor": "test", "request_id": "req-1"}
    assert e.occurred_at.endswith("+00:00")
    assert [x.position for x in platform.store.read(positions[1], 2)] == positions[2:4]


def test_ids_are_unique_under_concurrency(platform) -> None:  # type: ignore[no-untyped-def]
    ids = SqlIdAllocator(platform.db)
    got: list[int] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(25):
            v = ids.next_id("thing")
            with lock:
                got.append(v)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(1, 101))
    assert ids.next_id("other") == 1


def test_concurrent_updates_through_the_bus_never_lose_one(platform) -> None:  # type: ignore[no-untyped-def]
    body = StrategyBody("s", "", "sma_crossover", None, None, None, True)
    sid = platform.bus.handle(CreateStrategy(1, body), META).value
    errors: list[Exception] = []

    def update(i: int) -> None:
        try:
            platform.bus.handle(UpdateStrategy(1, sid, StrategyBody(f"n{i}", "", "sma_crossover", None, None, None,
                                                                    True)), META)
        except Exception as exc:  # a 409 after the retry is allowed; a lost update is not
            errors.append(exc)

    threads = [threading.Thread(target=update, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    s = platform.store.load(Strategy, Strategy.uuid_for(sid))
    assert s.version == 1 + 6 - len(errors)
    assert all(isinstance(e, Conflict) for e in errors), errors  # ConcurrentChange: a 409


def test_an_insert_waits_for_other_open_inserts_so_positions_follow_commit_order(tmp_path: Path,
                                                                                 pg_url: str) -> None:
    """A reader tailing the log must never pass a position that a slower transaction fills in later: on
    Postgres each insert locks the table against other inserts until it has committed (SQLite's writers
    are serialised by BEGIN IMMEDIATE)."""
    import psycopg

    platform = bootstrap(make_settings(tmp_path, pg_url))
    dsn = "postgresql://" + platform.db.url.split("://", 1)[1]
    with psycopg.connect(dsn) as other:  # an open transaction that has inserted (holds ROW EXCLUSIVE)
        other.execute("LOCK TABLE stored_events IN ROW EXCLUSIVE MODE")
        done = threading.Event()

        def save() -> None:
            platform.store.save([_strategy(1)], META)
            done.set()

        saver = threading.Thread(target=save)
        saver.start()
        with psycopg.connect(dsn, autocommit=True) as watch:
            for _ in range(500):  # until the save is seen waiting for the table lock
                waiting = watch.execute("SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                                        "WHERE c.relname = 'stored_events' AND NOT l.granted").fetchone()
                if waiting and waiting[0]:
                    break
                done.wait(0.01)
            assert not done.is_set() and waiting and waiting[0] == 1
        other.rollback()
    saver.join(10)
    try:
        assert done.is_set() and platform.store.load(Strategy, Strategy.uuid_for(1)) is not None
    finally:
        platform.close()


def test_a_checked_in_aggregate_goes_to_one_later_check_out_and_catches_up_with_other_writers(
        platform, tmp_path: Path, database_url: str) -> None:  # type: ignore[no-untyped-def]
    store, sid = platform.store, Strategy.uuid_for(1)
    store.save([_strategy(1)], META)
    first = must(store.check_out(Strategy, sid))
    store.check_in([first])
    assert store.load(Strategy, sid) is not first  # `load` never hands out a kept object
    assert store.load_with_times(Strategy, sid)[0] is not first  # type: ignore[index]
    kept = store.check_out(Strategy, sid)
    assert kept is first  # no replay
    other = must(store.check_out(Strategy, sid))
    assert other is not kept and other.version == kept.version == 1  # held by one caller at a time
    kept.toggle_share(1)
    store.save([kept], META)
    store.check_in([other, kept])  # the stale one does not replace the newer one
    again = store.check_out(Strategy, sid)
    assert again is kept and again.version == 2 and again.is_public
    spare = store.check_out(Strategy, sid)  # overlapping commands: the other one was kept too, and caught up
    assert spare is other and spare.version == 2 and spare.is_public
    store.check_in([spare])
    store.check_in([again])
    elsewhere = bootstrap(make_settings(tmp_path, database_url))  # another process on the same store
    try:
        theirs = must(elsewhere.store.load(Strategy, sid))
        theirs.toggle_share(1)
        elsewhere.store.save([theirs], META)
        caught_up = store.check_out(Strategy, sid)
        assert caught_up is kept and caught_up.version == 3 and not caught_up.is_public
        caught_up.toggle_share(1)  # recorded, never saved: it must not come back
        store.check_in([caught_up])
        fresh = must(store.check_out(Strategy, sid))
        assert fresh is not caught_up and fresh.version == 3 and not fresh.is_public
        store.check_in([fresh])
        mine = must(store.check_out(Strategy, sid))
        theirs = must(elsewhere.store.load(Strategy, sid))
        theirs.toggle_share(1)
        elsewhere.store.save([theirs], META)
        mine.toggle_share(1)
        with pytest.raises(ConcurrencyConflict):
            store.save([mine], META)
        store.check_in([mine])  # lost the race: its change is not the stored one
        after = must(store.check_out(Strategy, sid))
        assert after is not mine and after.version == 4 and after.is_public
        store.check_in([after])
        with store.reading(Strategy, sid) as read:  # a reader checks it out for the block
            assert read is after
            assert store.check_out(Strategy, sid) is not after
        assert store.check_out(Strategy, sid) is after  # and hands it back when done
        store.check_in([after])
        with store.reading(Strategy, sid) as read:
            assert read is after
            read.toggle_share(1)  # a reader that changed it: not handed back
        assert store.check_out(Strategy, sid) is not after
        with store.reading(Strategy, Strategy.uuid_for(99)) as none:
            assert none is None
    finally:
        elsewhere.close()


def test_a_command_that_fails_after_changing_an_aggregate_leaves_no_trace_for_the_next(
        platform) -> None:  # type: ignore[no-untyped-def]
    from commands.bus import MessageBus
    from domain.errors import DomainError

    class Share:
        fail = True

    def share(cmd: Share, uow) -> bool:  # type: ignore[no-untyped-def]
        s = uow.get(Strategy, Strategy.uuid_for(1), "Strategy 1")
        s.toggle_share(1)  # recorded on the aggregate, not saved yet
        if cmd.fail:
            raise DomainError("refused after the change")
        uow.save(s)
        return bool(s.is_public)

    def peek(cmd: object, uow) -> tuple[bool, int]:  # type: ignore[no-untyped-def]
        s = uow.get(Strategy, Strategy.uuid_for(1), "Strategy 1")
        return bool(s.is_public), s.version

    bus = MessageBus(platform.bus.deps, {Share: share, object: peek})
    platform.store.save([_strategy(1)], META)
    assert bus.handle(object(), META).value == (False, 1)  # loaded once: kept for the next command
    with pytest.raises(DomainError):
        bus.handle(Share(), META)
    assert bus.handle(object(), META).value == (False, 1)  # the refused change is nowhere
    ok = Share()
    ok.fail = False
    assert bus.handle(ok, META).value is True
    assert bus.handle(object(), META).value == (True, 2)


def test_the_unit_of_work_hands_back_on_failure_only_what_it_can_vouch_for(
        platform, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from commands.bus import MessageBus
    from domain.errors import DomainError
    from domain.strategies import StrategyShared

    sid = Strategy.uuid_for(1)
    seen: list[Strategy] = []

    def act(cmd: str, uow) -> bool:  # type: ignore[no-untyped-def]
        s = uow.get(Strategy, sid, "Strategy 1")
        seen.append(s)
        if cmd == "refuse":
            raise DomainError("refused before any change")
        if cmd == "break":
            s.toggle_share(1)  # its mutator fails half-way: the object changed, no event recorded
        return bool(s.is_public)

    def broken(self: Strategy, e: StrategyShared) -> None:
        self.is_public = e.is_public
        raise RuntimeError("a bug in a mutator")

    bus = MessageBus(platform.bus.deps, {str: act})
    platform.store.save([_strategy(1)], META)
    with pytest.raises(DomainError):
        bus.handle("refuse", META)
    assert bus.handle("read", META).value is False
    assert seen[1] is seen[0]  # a refusal that changed nothing hands its aggregates back: no replay
    monkeypatch.setitem(Strategy._mutators, StrategyShared, broken)
    with pytest.raises(RuntimeError):
        bus.handle("break", META)
    assert seen[2] is seen[0] and seen[2].is_public  # the half-changed object...
    monkeypatch.undo()
    assert bus.handle("read", META).value is False  # ...is not the one the next command gets
    assert seen[3] is not seen[2] and seen[3].version == 1


def test_a_commit_whose_reply_was_lost_is_not_run_again(tmp_path: Path, pg_url: str) -> None:
    """The connection dies after Postgres committed the insert but before its answer arrived: the
    recorder's retry then meets its own rows (a unique violation). The store must see that they are its
    own events and report the save done, so the handler (which allocated a new strategy id) is not run a
    second time, which created a duplicate strategy."""
    from urllib.parse import urlparse

    from tests.support.tcp_proxy import LosingProxy

    u = urlparse(pg_url)
    proxy = LosingProxy(u.hostname or "127.0.0.1", u.port or 5432)
    p = bootstrap(make_settings(tmp_path, pg_url.replace(f":{u.port}/", f":{proxy.port}/")))
    try:
        name = "lost-reply-7f3a91"
        proxy.lose_reply_after(name.encode(), name.encode().hex().encode())
        result = p.bus.handle(CreateStrategy(1, StrategyBody(name, "", "sma_crossover", None, None, None, True)),
                              META)
        assert proxy.lost == 1  # the fault happened
        created = [e for e in p.store.read_plain(0, 1000) if e.type == "StrategyCreated"]
        assert [(e.data["name"], e.aggregate_id) for e in created] == [(name, str(Strategy.uuid_for(result.value)))]
        assert result.position == created[0].position
        assert must(p.store.load(Strategy, Strategy.uuid_for(result.value))).name == name
        # a real clash is still a conflict (the stored event at that version is another command's)
        a = must(p.store.load(Strategy, Strategy.uuid_for(result.value)))
        b = must(p.store.load(Strategy, Strategy.uuid_for(result.value)))
        a.toggle_share(1)
        b.toggle_share(1)
        p.store.save([a], META)
        with pytest.raises(ConcurrencyConflict):
            p.store.save([b], META)
    finally:
        p.close()
        proxy.close()
