"""`Idempotency-Key` on unsafe routes: a retry gets the first answer and never runs the command twice."""

from __future__ import annotations

import threading
from typing import Any

from tests.conftest import unique_email


def _body(name: str) -> dict[str, Any]:
    return {"name": name, "base_model": "sma_crossover", "params": {"fast": 10, "slow": 30}}


def _mine(client: Any, name: str) -> list[dict[str, Any]]:
    return [s for s in client.get("/api/strategies", params={"q": name}).json() if s["name"] == name]


def test_a_retry_with_the_same_key_gets_the_first_answer_and_creates_nothing(api: Any) -> None:
    api.login()
    first = api.post("/api/strategies", json=_body("once"), headers={"Idempotency-Key": "k-1"})
    assert first.status_code == 201, first.text
    assert "X-Projection-Lag" not in first.headers  # the projector kept up: nothing to warn about
    again = api.post("/api/strategies", json=_body("once"), headers={"Idempotency-Key": "k-1"})
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert [s["id"] for s in _mine(api, "once")] == [first.json()["id"]]

    other = api.post("/api/strategies", json=_body("twice"), headers={"Idempotency-Key": "k-1"})
    assert other.status_code == 422 and "different request" in other.json()["detail"]
    assert _mine(api, "twice") == []

    # a refusal is an answer too: the repeat gets the same 404, and a new key runs again
    gone = api.post("/api/model/portfolios/999999/pause", headers={"Idempotency-Key": "k-2"})
    assert gone.status_code == 404
    assert api.post("/api/model/portfolios/999999/pause", headers={"Idempotency-Key": "k-2"}).json() == gone.json()
    assert api.post("/api/strategies", json=_body("once"), headers={"Idempotency-Key": "k-3"}).status_code == 201
    assert len(_mine(api, "once")) == 2

    bad = api.post("/api/strategies", json=_body("x"), headers={"Idempotency-Key": "k" * 256})
    assert bad.status_code == 400


def test_keys_are_per_account(api_factory: Any) -> None:
    alice, bob = api_factory(), api_factory()
    alice.login(unique_email("alice"))
    bob.login(unique_email("bob"))
    a = alice.post("/api/strategies", json=_body("shared-key"), headers={"Idempotency-Key": "same"})
    b = bob.post("/api/strategies", json=_body("shared-key"), headers={"Idempotency-Key": "same"})
    assert a.status_code == b.status_code == 201 and a.json()["id"] != b.json()["id"]
    assert b.json()["owner_id"] != a.json()["owner_id"] and "Idempotent-Replayed" not in b.headers


def test_concurrent_duplicates_run_once(api_factory: Any, database_url: str) -> None:
    first = api_factory(database_url)
    first.login()
    clients = [first] + [api_factory() for _ in range(3)]
    for c in clients[1:]:
        c.cookies.update(first.cookies)
    answers: list[Any] = []
    start = threading.Barrier(len(clients))

    def go(c: Any) -> None:
        start.wait()
        answers.append(c.post("/api/strategies", json=_body("raced"), headers={"Idempotency-Key": "race"}))

    threads = [threading.Thread(target=go, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [r.status_code for r in answers] == [201] * len(clients)
    assert len({r.json()["id"] for r in answers}) == 1
    assert len(_mine(first, "raced")) == 1


def _process_died_before_answering(client: Any, key: str) -> None:
    """What a server killed after the command but before it stored the answer leaves: a claim with no
    answer, older than the lease."""
    import sqlalchemy as sa

    from infra.store.db import idempotency_keys
    from infra.store.idempotency import LEASE_SECONDS

    t = idempotency_keys.c
    with client.platform.db.write() as conn:
        conn.execute(sa.update(idempotency_keys).where(t.key == key).values(
            status=None, headers=None, body=None, created_at=t.created_at - LEASE_SECONDS - 1))


def test_a_retry_after_the_server_died_never_runs_a_recorded_command_again(api: Any) -> None:
    api.login()
    first = api.post("/api/strategies", json=_body("orphan"), headers={"Idempotency-Key": "died-1"})
    assert first.status_code == 201
    _process_died_before_answering(api, "died-1")
    retry = api.post("/api/strategies", json=_body("orphan"), headers={"Idempotency-Key": "died-1"})
    assert retry.status_code == 409 and "was recorded" in retry.json()["detail"], retry.text
    assert [s["id"] for s in _mine(api, "orphan")] == [first.json()["id"]]  # not created twice
    assert api.post("/api/strategies", json=_body("orphan"),
                    headers={"Idempotency-Key": "died-1"}).json() == retry.json()

    # a request that died before recording anything is run by the retry
    gone = api.post("/api/model/portfolios/999999/pause", headers={"Idempotency-Key": "died-2"})
    assert gone.status_code == 404
    _process_died_before_answering(api, "died-2")
    again = api.post("/api/model/portfolios/999999/pause", headers={"Idempotency-Key": "died-2"})
    assert again.status_code == 404 and "Idempotent-Replayed" not in again.headers
    # while unanswered but inside the lease, a repeat waits for the first (here: it has an answer now)
    assert api.post("/api/model/portfolios/999999/pause",
                    headers={"Idempotency-Key": "died-2"}).headers["Idempotent-Replayed"] == "true"


def test_an_upload_retried_with_its_key_imports_once(api: Any) -> None:
    """A body larger than what is kept in memory (a CSV tradebook of ~2 MB) is spooled and replayed."""
    from tests.support.brokerfiles import trade, tradebook_csv

    api.login()
    rows = [trade("INFY", "2024-01-02", "buy", 1, 1500.0 + i / 100, f"T{i:07d}") for i in range(12_000)]
    data = tradebook_csv(rows)
    assert len(data) > 1024 * 1024
    files = [("files[]", ("tb.csv", data))]
    first = api.post("/api/uploads/tradebook", files=files, headers={"Idempotency-Key": "upload-1"})
    assert first.status_code == 200, first.text
    again = api.post("/api/uploads/tradebook", files=files, headers={"Idempotency-Key": "upload-1"})
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    fresh = api.post("/api/uploads/tradebook", files=files, headers={"Idempotency-Key": "upload-2"})
    assert fresh.status_code == 200
    assert first.json() != fresh.json()  # run again: every trade is now a duplicate, none imported twice


def test_an_answer_handing_out_a_session_is_never_stored_nor_replayed(api: Any) -> None:
    """A signed-in browser signing in again with a key: the new session's token (in Set-Cookie) is never
    kept in the idempotency store, and a retry runs again instead of handing that session out twice."""
    import sqlalchemy as sa

    from infra.store.db import idempotency_keys

    user = api.login()
    email = user["email"]

    def sign_in() -> Any:
        assert api.post("/api/auth/magic-link", json={"email": email}).status_code == 200
        return api.post("/api/auth/verify-link", json={"email": email, "otp": api.inbox.last_otp(email)},
                        headers={"Idempotency-Key": "sign-in"})

    first = sign_in()
    token = first.cookies.get("kite_session")
    assert first.status_code == 200 and token
    with api.platform.db.read() as conn:
        rows = conn.execute(sa.select(idempotency_keys).where(idempotency_keys.c.key == "sign-in")).all()
    assert rows == []  # nothing kept: neither the answer nor a claim that would block the retry
    again = sign_in()
    assert again.status_code == 200 and "Idempotent-Replayed" not in again.headers
    assert again.cookies.get("kite_session") not in (None, token)  # a session of its own


def test_an_answer_that_only_refreshes_the_session_cookie_is_still_replayed(api: Any) -> None:
    """A session used within a minute of its last extension gets its own cookie back with a fresh lifetime
    (api.deps). That hands out nothing new: the answer is stored (without the cookie) and a retry replays it
    instead of running the upload again (it used to import nothing the second time: all duplicates)."""
    import sqlalchemy as sa

    from infra.store.db import idempotency_keys
    from tests.support.brokerfiles import trade, tradebook_csv

    api.login()
    api.app.state.principals.ttl = 0  # every request resolves its session (and so refreshes the cookie)
    files = [("files[]", ("tb.csv", tradebook_csv([trade("INFY", "2024-01-02", "buy", 3, 1500.0, "T0000001")])))]
    key = {"Idempotency-Key": "refresh-1"}
    first = api.post("/api/uploads/tradebook", files=files, headers=key)
    assert first.status_code == 200 and "kite_session=" in first.headers.get("set-cookie", "")
    again = api.post("/api/uploads/tradebook", files=files, headers=key)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json() and again.json()["imported"] == 1
    with api.platform.db.read() as conn:
        stored = conn.execute(sa.select(idempotency_keys.c.headers).where(idempotency_keys.c.key == "refresh-1")).one()
    assert not any(name == "set-cookie" for name, _ in stored.headers)
