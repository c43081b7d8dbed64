"""Strategies over HTTP: CRUD, full-replacement PUT, ownership, fork, share, filters, pagination."""

from __future__ import annotations

from typing import Any

import pytest

BODY: dict[str, Any] = {
    "name": "My Strategy",
    "description": "dips in uptrends",
    "base_model": "v3_dip_buyer",
    "entry_rules": {"all": [
        {"left": {"ind": "close"}, "op": ">", "right": {"ind": "sma", "period": 200}},
        {"left": {"ind": "rsi", "period": 14}, "op": "<", "right": 35},
    ]},
    "exit_rules": {"stop_loss_pct": 7, "target_pct": 12, "trailing_stop_pct": None, "max_hold_days": 20,
                   "exit_when": None},
    "params": {"entry_order": "limit", "entry_validity_days": 1},
    "is_active": True,
}


def test_create_then_get_reads_own_write(api: Any) -> None:
    user = api.login()
    r = api.post("/api/strategies", json=BODY)
    assert r.status_code == 201
    created = r.json()
    assert created["owner_id"] == user["id"] and created["forked_from"] is None
    assert created["is_template"] is False and created["is_public"] is False
    assert created["params"]["entry_order"] == "limit"
    assert created["params"]["limit_offset_pct"] == 0.5  # the base model's default filled in
    got = api.get(f"/api/strategies/{created['id']}").json()
    assert got == created
    listed = [s for s in api.get("/api/strategies").json() if s["id"] == created["id"]]
    assert listed == [created] and created["created_at"].endswith("Z")


def test_a_write_answered_before_the_projection_caught_up_looks_the_same(api: Any, monkeypatch: Any) -> None:
    """When read-your-writes times out the answer is built from the events; it has the same shape and
    values the read model serves once it catches up."""
    api.login()
    waiter = api.app.state.read_your_writes
    monkeypatch.setattr(waiter, "wait", lambda *a, **k: False)
    created = api.post("/api/strategies", json=BODY)
    assert created.status_code == 201
    updated = api.put(f"/api/strategies/{created.json()['id']}", json=dict(BODY, name="renamed"))
    monkeypatch.undo()
    assert updated.status_code == 200 and updated.json()["name"] == "renamed"
    api.post("/api/strategies", json=BODY)  # waits for the projection, which is then past both writes
    assert api.get(f"/api/strategies/{created.json()['id']}").json() == updated.json()


def test_create_with_defaults_takes_the_base_model_rules(api: Any) -> None:
    api.login()
    r = api.post("/api/strategies", json={"name": "x", "base_model": "sma_crossover"})
    assert r.status_code == 201
    assert r.json()["entry_rules"]["all"][0]["op"] == "crosses_above"
    assert r.json()["exit_rules"]["exit_when"] is not None


@pytest.mark.parametrize("mutate,path_fragment", [
    (lambda b: b["entry_rules"]["all"][1]["left"].update(ind="magic"), "entry_rules.all[1].left.ind"),
    (lambda b: b["entry_rules"]["all"][0]["right"].update(period=0), "entry_rules.all[0].right.period"),
    (lambda b: b["entry_rules"]["all"][0]["right"].update(period=501), "entry_rules.all[0].right.period"),
    (lambda b: b.update(entry_rules={"all": []}), "entry_rules.all"),
    (lambda b: b["entry_rules"]["all"][0].update(op="=="), "entry_rules.all[0].op"),
    (lambda b: b["exit_rules"].update(stop_loss_pct=-1), "exit_rules.stop_loss_pct"),
    (lambda b: b["exit_rules"].update(exit_when={"any": [{"left": {"ind": "nope"}, "op": ">", "right": 1}]}),
     "exit_rules.exit_when.any[0].left.ind"),
    (lambda b: b["params"].update(entry_order="teleport"), "params.entry_order"),
    (lambda b: b["params"].update(bogus=1), "params.bogus"),
    (lambda b: b.update(base_model="crystal_ball"), "base_model"),
])
def test_invalid_strategy_is_422_naming_the_path(api: Any, mutate: Any, path_fragment: str) -> None:
    api.login()
    import copy

    body = copy.deepcopy(BODY)
    mutate(body)
    r = api.post("/api/strategies", json=body)
    assert r.status_code == 422
    assert path_fragment in str(r.json()["detail"])


def test_put_is_full_replacement_partial_is_422(api: Any) -> None:
    api.login()
    sid = api.post("/api/strategies", json=BODY).json()["id"]
    assert api.put(f"/api/strategies/{sid}", json={"name": "only a name"}).status_code == 422
    new = dict(BODY, name="Renamed", is_active=False, exit_rules=dict(BODY["exit_rules"], target_pct=15))
    r = api.put(f"/api/strategies/{sid}", json=new)
    assert r.status_code == 200
    got = api.get(f"/api/strategies/{sid}").json()
    assert got["name"] == "Renamed" and got["is_active"] is False and got["exit_rules"]["target_pct"] == 15


def test_other_users_private_strategy_is_404_for_read_and_write(api_factory: Any) -> None:
    alice, bob = api_factory(), api_factory()
    alice.login()
    bob.login()
    sid = alice.post("/api/strategies", json=BODY).json()["id"]
    assert bob.get(f"/api/strategies/{sid}").status_code == 404
    assert bob.put(f"/api/strategies/{sid}", json=BODY).status_code == 404
    assert bob.delete(f"/api/strategies/{sid}").status_code == 404
    assert bob.post(f"/api/strategies/{sid}/fork").status_code == 404
    assert bob.post(f"/api/strategies/{sid}/share").status_code == 404
    assert any(s["id"] == sid for s in alice.get("/api/strategies").json())
    assert all(s["id"] != sid for s in bob.get("/api/strategies").json())  # the same statement, bob's id bound
    assert alice.get(f"/api/strategies/{sid}").json()["name"] == BODY["name"]  # unchanged


def test_shared_strategy_is_readable_forkable_not_writable(api_factory: Any) -> None:
    alice, bob = api_factory(), api_factory()
    alice.login()
    bob_user = bob.login()
    sid = alice.post("/api/strategies", json=BODY).json()["id"]
    assert alice.post(f"/api/strategies/{sid}/share").json()["is_public"] is True
    assert bob.get(f"/api/strategies/{sid}").status_code == 200
    assert bob.put(f"/api/strategies/{sid}", json=BODY).status_code == 403
    assert bob.delete(f"/api/strategies/{sid}").status_code == 403
    fork = bob.post(f"/api/strategies/{sid}/fork")
    assert fork.status_code == 201
    assert fork.json()["forked_from"] == sid and fork.json()["owner_id"] == bob_user["id"]
    assert fork.json()["is_public"] is False
    public_ids = [s["id"] for s in bob.get("/api/strategies", params={"is_public": True}).json()]
    assert sid in public_ids
    # unshare: bob loses access
    assert alice.post(f"/api/strategies/{sid}/share").json()["is_public"] is False
    assert bob.get(f"/api/strategies/{sid}").status_code == 404


def test_share_body_sets_is_public_idempotently_and_no_body_toggles(api: Any) -> None:
    api.login()
    sid = api.post("/api/strategies", json=BODY).json()["id"]
    for _ in range(2):  # the same call twice leaves it public (a retry never unshares)
        r = api.post(f"/api/strategies/{sid}/share", json={"is_public": True})
        assert r.status_code == 200 and r.json()["is_public"] is True
    assert api.get(f"/api/strategies/{sid}").json()["is_public"] is True
    for _ in range(2):
        assert api.post(f"/api/strategies/{sid}/share", json={"is_public": False}).json()["is_public"] is False
    events = api.get("/api/audit/events", params={"aggregate_type": "Strategy", "aggregate_id": sid,
                                                   "type": "StrategyShared", "order": "oldest"}).json()
    assert [e["data"]["is_public"] for e in events] == [True, False]  # the repeats recorded nothing
    assert api.post(f"/api/strategies/{sid}/share").json()["is_public"] is True  # body-less: toggle (API.md)
    for bad in ({"is_public": "yes"}, {"is_public": None}, {"public": True}):
        assert api.post(f"/api/strategies/{sid}/share", json=bad).status_code == 422


def test_templates_are_seeded_readable_and_forkable_but_not_editable(api: Any) -> None:
    api.login()
    templates = api.get("/api/strategies", params={"is_template": True}).json()
    models = {t["base_model"] for t in templates}
    assert {"v3_dip_buyer", "momentum_breakout", "sma_crossover", "bollinger_reversion"} <= models
    t = templates[0]
    assert api.put(f"/api/strategies/{t['id']}", json=BODY).status_code == 403
    assert api.delete(f"/api/strategies/{t['id']}").status_code == 403
    fork = api.post(f"/api/strategies/{t['id']}/fork", json={"name": "My copy"}).json()
    assert fork["name"] == "My copy" and fork["is_template"] is False
    own = api.get("/api/strategies", params={"is_template": False}).json()
    assert [s["id"] for s in own] == [fork["id"]]


def test_delete_then_get_is_404(api: Any) -> None:
    api.login()
    sid = api.post("/api/strategies", json=BODY).json()["id"]
    assert api.delete(f"/api/strategies/{sid}").status_code == 204
    assert api.get(f"/api/strategies/{sid}").status_code == 404
    assert api.delete(f"/api/strategies/{sid}").status_code == 404


def test_filters_and_pagination_with_total_count(api: Any) -> None:
    api.login()
    for i in range(7):
        body = dict(BODY, name=f"Alpha {i}" if i % 2 else f"Beta {i}", base_model="v3_dip_buyer",
                    is_active=i < 5)
        assert api.post("/api/strategies", json=body).status_code == 201
    r = api.get("/api/strategies", params={"is_template": False, "limit": 3, "offset": 0})
    assert r.headers["X-Total-Count"] == "7" and len(r.json()) == 3
    r2 = api.get("/api/strategies", params={"is_template": False, "limit": 3, "offset": 6})
    assert len(r2.json()) == 1 and r2.headers["X-Total-Count"] == "7"
    past = api.get("/api/strategies", params={"is_template": False, "limit": 3, "offset": 50})
    assert past.json() == [] and past.headers["X-Total-Count"] == "7"  # a page past the end still counts
    assert {s["name"] for s in api.get("/api/strategies", params={"q": "alpha"}).json()} == {
        "Alpha 1", "Alpha 3", "Alpha 5"}
    inactive = api.get("/api/strategies", params={"is_active": False, "is_template": False})
    assert inactive.headers["X-Total-Count"] == "2"
    mine = api.get("/api/strategies", params={"base_model": "v3_dip_buyer", "is_template": False})
    assert mine.headers["X-Total-Count"] == "7" and {s["base_model"] for s in mine.json()} == {"v3_dip_buyer"}
    assert api.get("/api/strategies", params={"base_model": "sma_crossover", "is_template": False}).json() == []
    (template,) = api.get("/api/strategies", params={"base_model": "sma_crossover"}).json()  # the same shape
    assert template["is_template"] and template["base_model"] == "sma_crossover"
    assert api.get("/api/strategies", params={"limit": 501}).status_code == 422
    assert api.get("/api/strategies", params={"limit": 0}).status_code == 422
    everything = api.get("/api/strategies", params={"limit": 500})
    assert int(everything.headers["X-Total-Count"]) == 7 + 4  # own plus templates when unfiltered


def test_base_models_list_parameter_schemas(api: Any) -> None:
    api.login()
    models = {m["name"]: m for m in api.get("/api/strategies/base-models").json()}
    assert set(models) >= {"v3_dip_buyer", "momentum_breakout", "sma_crossover", "bollinger_reversion"}
    entry = models["v3_dip_buyer"]["params"]["entry_order"]
    assert entry["enum"] == ["next_open", "limit"] and entry["default"] == "limit"
    assert models["sma_crossover"]["defaults"]["entry_rules"]["all"][0]["op"] == "crosses_above"


def test_malformed_json_and_wrong_types_are_4xx_not_500(api: Any) -> None:
    api.login()
    r = api.post("/api/strategies", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert api.get("/api/strategies/abc").status_code == 422
    assert api.get("/api/strategies/999999").status_code == 404
    assert api.post("/api/strategies", json=dict(BODY, entry_rules="close > 5")).status_code == 422
    assert api.post("/api/strategies", json=dict(BODY, name="")).status_code == 422
