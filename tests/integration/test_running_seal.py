"""The relay's running seal: hashes computed in memory and written every so often are the ones any other
sealer computes, whoever seals first, and a relay that dies before writing leaves nothing inconsistent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from commands.ports import CommandMeta
from domain.strategies import Strategy, normalize_spec
from infra.bootstrap import bootstrap
from infra.store.chain import GENESIS, HashChain, RunningSeal, chain_hash
from tests.conftest import make_settings

META = CommandMeta(actor="test")


@pytest.fixture
def platform(tmp_path: Path, database_url: str):  # type: ignore[no-untyped-def]
    p = bootstrap(make_settings(tmp_path, database_url))
    yield p
    p.close()


def _record(platform: Any, first: int, n: int) -> None:
    for sid in range(first, first + n):  # three accounts, interleaved
        platform.store.save([Strategy.create(sid, 1 + sid % 3, f"s{sid}", "",
                                             normalize_spec("sma_crossover", None, None, None))], META)


def _expected(platform: Any) -> dict[int, tuple[str, str]]:
    """Every event's (prev_hash, hash), recomputed from the store alone."""
    heads: dict[int, str] = {}
    out = {}
    for env in platform.store.read_plain(0, 10_000):
        acct = int(env.account_id or 0)
        prev = heads.get(acct, GENESIS)
        heads[acct] = chain_hash(prev, env)
        out[env.position] = (prev, heads[acct])
    return out


def _relay(seal: RunningSeal, platform: Any, after: int, batch: int = 4) -> tuple[int, dict[int, tuple[str, str]]]:
    """Read and hash like the relay, `batch` events at a time, up to the store's head."""
    got: dict[int, tuple[str, str]] = {}
    while envs := platform.store.read_plain(after, batch):
        got.update(seal.hashes(after, envs))
        after = envs[-1].position
    return after, got


def test_hashes_in_memory_equal_the_chain_and_are_written_in_one_go(platform: Any) -> None:
    _record(platform, 1, 10)
    seal = RunningSeal(platform.store.chain)
    at, got = _relay(seal, platform, 0)
    assert got == _expected(platform)
    with platform.db.read() as conn:
        sealed_before = platform.store.chain._sealed_position(conn)
    assert sealed_before < at  # only the first batch went through a seal transaction; the rest waits
    seal.flush()
    breaks, counts = platform.store.chain.verify_store()
    assert breaks == [] and counts["events"] == 10
    assert platform.store.chain.hashes(got) == got


def test_another_sealer_in_between_changes_nothing(platform: Any) -> None:
    _record(platform, 1, 6)
    seal = RunningSeal(platform.store.chain)
    at, got = _relay(seal, platform, 0, batch=2)
    _record(platform, 7, 6)
    other = HashChain(platform.db, platform.store.read_plain)
    other.seal()  # the audit API seals everything first, including what the relay holds unwritten
    _record(platform, 13, 3)
    at, more = _relay(seal, platform, at, batch=2)  # the relay notices and continues from the store
    seal.flush()
    got.update(more)
    assert got == _expected(platform)
    assert platform.store.chain.verify_store()[0] == []


def test_a_relay_that_dies_before_writing_is_replaced_by_one_computing_the_same(platform: Any) -> None:
    _record(platform, 1, 9)
    first = RunningSeal(platform.store.chain)
    _, got = _relay(first, platform, 0, batch=3)  # never flushed: the process was killed
    second = RunningSeal(platform.store.chain)
    _, again = _relay(second, platform, 3, batch=3)  # the restarted relay re-reads after its recorded position
    second.flush()
    assert {p: h for p, h in got.items() if p > 3} == again
    assert platform.store.chain.verify_store()[0] == []
