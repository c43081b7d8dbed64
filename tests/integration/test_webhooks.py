"""Inbound alert hooks over HTTP: TradingView and Chartink alerts become signals of the hook's portfolio
through the scan's code and risk rules; repeats, malformed alerts, unknown tokens, other users' hooks and
the per-hook rate limit."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import Any
from urllib.parse import urlsplit

from infra.bars.store import BarStore
from infra.bars.synthetic import generate
from infra.bars.universes import load_universe
from tests.integration.test_api_model import advance, deploy, template_id, wait_projected


def hook(client: Any, portfolio_id: int, source: str = "tradingview", name: str = "my alerts") -> dict[str, Any]:
    r = client.post("/api/hooks", json={"portfolio_id": portfolio_id, "source": source, "name": name})
    assert r.status_code == 201, r.text
    assert r.headers["Cache-Control"] == "no-store"
    return dict(r.json())


def path_of(created: dict[str, Any]) -> str:
    return urlsplit(created["url"]).path


def tradingview_message(created: dict[str, Any], ticker: str, close: str, timenow: str, sell: bool = False) -> str:
    """The hook's message with TradingView's placeholders filled in, as TradingView sends it."""
    text = created["sell_message" if sell else "message"]
    return (text.replace("{{exchange}}", "NSE").replace("{{ticker}}", ticker).replace("{{close}}", close)
            .replace("{{timenow}}", timenow))


def post_alert(client: Any, path: str, body: str | bytes | dict[str, Any], content_type: str = "text/plain",
               **kwargs: Any) -> Any:
    if isinstance(body, dict):
        return client.post(path, json=body, **kwargs)
    return client.post(path, content=body, headers={"Content-Type": content_type}, **kwargs)


def pending(client: Any, portfolio_id: int) -> list[dict[str, Any]]:
    return list(client.get("/api/model/signals", params={"portfolio_id": portfolio_id}).json())


def test_tradingview_alert_end_to_end_to_a_pending_signal(market: Any) -> None:
    pf = deploy(market, template_id(market))
    created = hook(market, pf["id"])
    assert created["token"].startswith("th_") and created["url"].endswith("/api/webhooks/" + created["token"])
    assert created["source"] == "tradingview" and created["portfolio_id"] == pf["id"]
    assert '"action": "buy"' in created["message"] and "{{ticker}}" in created["message"]

    body = tradingview_message(created, "INFY", "1510.35", "2026-12-01T09:20:00Z")
    market.cookies.clear()  # the alert service has no session: the token in the URL is the credential
    r = post_alert(market, path_of(created), body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["duplicate"] is False and out["ignored"] == []
    [sig] = out["signals"]
    assert sig["symbol"] == "INFY" and sig["status"] == "pending_approval" and sig["side"] == "buy"
    assert sig["portfolio_id"] == pf["id"] and sig["reference_price"] == 1510.35
    assert 0 < sig["quantity"] * 1510.35 <= 110_000  # sized as a scan's signal: 10 % of the equity
    assert "TradingView alert (my alerts): buy NSE:INFY" in sig["reason"]

    market.login()  # a new session of another user must not see it; the owner's list does
    assert [s["id"] for s in pending(market, pf["id"])] == []


def test_owner_sees_the_signal_and_the_hook_without_its_token(market: Any) -> None:
    pf = deploy(market, template_id(market))
    created = hook(market, pf["id"], name="TV")
    body = tradingview_message(created, "INFY", "1500", "t1")
    sig = post_alert(market, path_of(created), body, "application/json").json()["signals"][0]
    listed = {s["id"]: s for s in pending(market, pf["id"])}
    assert listed[sig["id"]]["status"] == "pending_approval"
    hooks = market.get("/api/hooks")
    assert hooks.status_code == 200 and hooks.headers["X-Total-Count"] == "1"
    [row] = hooks.json()
    assert row["id"] == created["id"] and row["alerts"] == 1 and row["signals"] == 1 and row["last_alert_at"]
    assert created["token"] not in json.dumps(row) and "token" not in row
    assert created["token"].startswith(row["token_prefix"])
    # the signal is approved like any other
    r = market.post(f"/api/model/signals/{sig['id']}/approve")
    assert r.status_code == 200 and r.json()["status"] == "in_cart"


def test_chartink_alert_json_and_form_fields_one_signal_per_stock(market: Any) -> None:
    pf = deploy(market, template_id(market), max_positions=10, max_per_sector=None)
    created = hook(market, pf["id"], "chartink", "breakouts")
    assert created["message"] is None and "Chartink" in created["instructions"]
    alert = {"stocks": "INFY,RELIANCE,ITC", "trigger_prices": "1500.5,2400,410.25", "triggered_at": "2:34 pm",
             "scan_name": "Short term breakouts", "scan_url": "short-term-breakouts",
             "alert_name": "Alert for Short term breakouts", "webhook_url": created["url"]}
    r = post_alert(market, path_of(created), alert)
    assert r.status_code == 200, r.text
    sigs = r.json()["signals"]
    assert sorted((s["symbol"], s["reference_price"]) for s in sigs) == [
        ("INFY", 1500.5), ("ITC", 410.25), ("RELIANCE", 2400.0)]
    assert all(s["status"] == "pending_approval" and "Alert for Short term breakouts at 2:34 pm" in s["reason"]
               for s in sigs)
    # Chartink may post form fields instead; a later trigger of the same scan is a new alert
    form = {**alert, "stocks": "SBIN,INFY", "trigger_prices": "600,1501", "triggered_at": "3:01 pm"}
    r = market.post(path_of(created), data=form)
    assert r.status_code == 200, r.text
    out = r.json()
    assert [s["symbol"] for s in out["signals"]] == ["SBIN"]
    assert out["ignored"] == [{"symbol": "INFY", "action": "buy",
                               "reason": "already held or signalled in this portfolio"}]
    assert len([s for s in pending(market, pf["id"]) if s["status"] == "pending_approval"]) == 4


def test_repeats_are_answered_again_and_never_a_second_signal(market: Any) -> None:
    pf = deploy(market, template_id(market), max_positions=10, max_per_sector=None)
    created = hook(market, pf["id"])
    path = path_of(created)
    body = tradingview_message(created, "INFY", "1500", "2026-12-01T09:20:00Z")
    first = post_alert(market, path, body).json()
    again = post_alert(market, path, body).json()
    assert first["duplicate"] is False and again["duplicate"] is True
    assert [s["id"] for s in again["signals"]] == [s["id"] for s in first["signals"]]
    # the same alert_id with another price is still the same alert
    moved = json.loads(body)
    moved["price"] = 1490
    assert post_alert(market, path, moved).json()["duplicate"] is True
    # without an alert_id the content decides
    plain = {"symbol": "NSE:TCS", "action": "buy", "price": 3500}
    a, b = post_alert(market, path, plain).json(), post_alert(market, path, plain).json()
    assert (a["duplicate"], b["duplicate"]) == (False, True) and a["signals"] == b["signals"]
    # concurrent retries of one new alert: one signal
    retry = {"symbol": "NSE:SBIN", "action": "buy", "price": 600, "alert_id": "sbin-1"}
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: post_alert(market, path, retry), range(6)))
    assert all(r.status_code == 200 for r in answers), [r.text for r in answers]
    assert sorted(r.json()["duplicate"] for r in answers) == [False] + [True] * 5
    assert len({r.json()["signals"][0]["id"] for r in answers}) == 1
    symbols = [s["symbol"] for s in pending(market, pf["id"])]
    assert sorted(symbols) == ["INFY", "SBIN", "TCS"]
    assert market.get("/api/hooks").json()[0]["alerts"] == 3


def test_malformed_alerts_are_a_422_naming_the_problem(market: Any) -> None:
    pf = deploy(market, template_id(market))
    tv = path_of(hook(market, pf["id"]))
    ck = path_of(hook(market, pf["id"], "chartink"))

    def problem(path: str, body: Any, content_type: str = "text/plain") -> str:
        r = post_alert(market, path, body, content_type)
        assert r.status_code == 422, (body, r.status_code, r.text)
        return json.dumps(r.json()["detail"])

    assert "not JSON" in problem(tv, "buy INFY please")
    assert "empty" in problem(tv, "")
    assert "JSON object" in problem(tv, "[1, 2]")
    assert "symbol" in problem(tv, {"action": "buy"})
    assert "action must be buy or sell" in problem(tv, {"symbol": "NSE:INFY", "action": "hold"})
    assert "only NSE symbols" in problem(tv, {"symbol": "BSE:INFY", "action": "buy"})
    assert "trading symbol" in problem(tv, {"symbol": "NSE:IN FY", "action": "buy"})
    assert "price" in problem(tv, {"symbol": "INFY", "action": "buy", "price": -3})
    assert "NaN is not a number" in problem(tv, '{"symbol": "INFY", "action": "buy", "price": NaN}')
    assert "not JSON" in problem(tv, b"\xff\xfe")
    assert "stocks" in problem(ck, {"trigger_prices": "1"})
    assert "2 price(s) for 3 stock(s)" in problem(ck, {"stocks": "INFY,TCS,ITC", "trigger_prices": "1,2"})
    assert "numbers" in problem(ck, {"stocks": "INFY", "trigger_prices": "abc"})
    big = market.post(tv, content=b"{" + b" " * 70_000 + b"}", headers={"Content-Type": "application/json"})
    assert big.status_code == 413
    assert pending(market, pf["id"]) == []  # nothing malformed became a signal


def test_unknown_rotated_and_deleted_tokens_are_a_404(market: Any) -> None:
    pf = deploy(market, template_id(market), max_positions=10, max_per_sector=None)
    created = hook(market, pf["id"])
    alert = {"symbol": "INFY", "action": "buy", "price": 1500}
    for bad in ("nope", created["token"][:-3] + "xyz", "th_999999_" + "a" * 40, "th_0_" + "a" * 40):
        r = post_alert(market, f"/api/webhooks/{bad}", alert)
        assert r.status_code == 404 and r.json()["detail"] == "Unknown or revoked hook", bad
    rotated = market.post(f"/api/hooks/{created['id']}/rotate")
    assert rotated.status_code == 200 and rotated.headers["Cache-Control"] == "no-store"
    new = rotated.json()
    assert new["token"] != created["token"] and new["id"] == created["id"] and new["token_rotated_at"]
    assert post_alert(market, path_of(created), alert).status_code == 404
    assert post_alert(market, path_of(new), alert).status_code == 200
    assert market.delete(f"/api/hooks/{created['id']}").status_code == 204
    assert post_alert(market, path_of(new), {**alert, "symbol": "TCS"}).status_code == 404
    assert market.get("/api/hooks").json() == []
    assert market.delete(f"/api/hooks/{created['id']}").status_code == 404


def test_another_users_hook_and_portfolio_are_a_404(api_factory: Any) -> None:
    owner = api_factory()
    generate(BarStore(owner.platform.settings.data_dir), load_universe("nifty_50"), date(2020, 1, 1),
             date(2020, 12, 31))
    owner.login()
    pf = deploy(owner, template_id(owner))
    created = hook(owner, pf["id"])
    other = api_factory()
    other.login()
    assert other.get("/api/hooks").json() == []
    assert other.post(f"/api/hooks/{created['id']}/rotate").status_code == 404
    assert other.delete(f"/api/hooks/{created['id']}").status_code == 404
    r = other.post("/api/hooks", json={"portfolio_id": pf["id"], "source": "tradingview", "name": "x"})
    assert r.status_code == 404
    # the owner's hook still works with its token
    ok = post_alert(other, path_of(created), {"symbol": "INFY", "action": "buy", "price": 1500})
    assert ok.status_code == 200 and ok.json()["portfolio_id"] == pf["id"]
    bad = other.post("/api/hooks", json={"portfolio_id": pf["id"], "source": "zerodha", "name": "x"})
    assert bad.status_code == 422


def test_per_hook_rate_limit_is_a_429(api_factory: Any) -> None:
    client = api_factory(webhook_alerts_per_minute=3)
    generate(BarStore(client.platform.settings.data_dir), load_universe("nifty_50"), date(2020, 1, 1),
             date(2020, 12, 31))
    client.login()
    pf = deploy(client, template_id(client))
    first, second = hook(client, pf["id"]), hook(client, pf["id"], name="second")
    codes = [post_alert(client, path_of(first), {"symbol": "INFY", "action": "buy", "alert_id": i}).status_code
             for i in range(4)]
    assert codes == [200, 200, 200, 429]
    assert post_alert(client, path_of(second), {"symbol": "TCS", "action": "buy"}).status_code == 200


def test_auto_approve_places_at_once_unless_a_risk_rule_refuses_and_sell_exits(market: Any) -> None:
    pf = deploy(market, template_id(market), auto_approve=True, max_positions=10, max_per_sector=None)
    created = hook(market, pf["id"])
    path = path_of(created)
    r = market.post("/api/risk/rules", json={"rule_type": "blocked_symbols", "symbols": ["TCS"],
                                             "portfolio_id": pf["id"]})
    assert r.status_code == 201, r.text
    placed = post_alert(market, path, {"symbol": "INFY", "action": "buy"}).json()["signals"][0]
    assert placed["status"] == "placed" and placed["reference_price"] > 0  # no price sent: the last close
    held = post_alert(market, path, {"symbol": "TCS", "action": "buy"}).json()["signals"][0]
    assert held["status"] == "pending_approval"  # the rule refused auto-approval: it waits for a person
    breaches = market.get("/api/risk/state").json()["breaches"]
    assert any(b["symbol"] == "TCS" for b in breaches)
    nothing = post_alert(market, path, {"symbol": "ITC", "action": "sell"}).json()
    assert nothing["signals"] == [] and nothing["ignored"][0]["reason"] == "no open position in this symbol"

    for _ in range(5):  # the placed entry fills on a following day's bars
        advance(market, 1)
        wait_projected(market)
        if market.get("/api/model/positions", params={"portfolio_id": pf["id"], "status": "open"}).json():
            break
    [pos] = market.get("/api/model/positions", params={"portfolio_id": pf["id"], "status": "open"}).json()
    assert pos["symbol"] == "INFY"
    out = post_alert(market, path, {"symbol": "NSE:INFY", "action": "sell", "alert_id": "exit-1"}).json()
    [exit_signal] = out["signals"]
    assert exit_signal["symbol"] == "INFY" and exit_signal["side"] == "sell" and exit_signal["status"] == "placed"


def test_webhook_needs_no_csrf_header_even_with_a_session_cookie(market: Any) -> None:
    pf = deploy(market, template_id(market))
    created = hook(market, pf["id"])
    del market.headers["X-Requested-With"]
    r = post_alert(market, path_of(created), '{"symbol": "INFY", "action": "buy", "price": 1500}')
    assert r.status_code == 200, r.text
    assert market.post("/api/hooks", content="x", headers={"Content-Type": "text/plain"}).status_code == 403


def test_an_alert_outlasts_other_changes_to_its_portfolio_and_is_never_refused(market: Any, monkeypatch: Any) -> None:
    """Two hooks on one portfolio: while one alert is being recorded, six alerts to the other hook are saved
    in between (more clashes than the bus retries by default). The alert is still answered with its signal, once."""
    from commands import hooks_messages as hm
    from commands.handlers import hooks as handlers
    from commands.ports import CommandMeta

    pf = deploy(market, template_id(market), max_positions=20, max_per_sector=None)
    first, other = hook(market, pf["id"]), hook(market, pf["id"], source="chartink", name="scan")
    platform = market.platform
    real = handlers.record_candidates
    between: list[str] = ["HDFCBANK", "ICICIBANK", "SBIN", "TCS", "ITC", "LT"]
    saved: list[int] = []

    def clashing(uow: Any, pf_: Any, *args: Any) -> Any:
        if between and pf_.portfolio_id == pf["id"] and not getattr(clashing, "inside", False):
            symbol = between.pop(0)
            clashing.inside = True  # type: ignore[attr-defined]
            try:  # another alert to the portfolio is saved after this one loaded it: this save will clash
                done = platform.bus.handle(hm.ReceiveAlert(
                    other["id"], platform.token_hash(other["token"]), f"k-{symbol}",
                    (hm.AlertItem(symbol, "buy", 500.0),), "between", 600), CommandMeta(actor="test"))
                saved.extend(done.value.signal_ids)
            finally:
                clashing.inside = False  # type: ignore[attr-defined]
        return real(uow, pf_, *args)

    monkeypatch.setattr(handlers, "record_candidates", clashing)
    r = post_alert(market, path_of(first), {"symbol": "NSE:INFY", "action": "buy", "price": 1500, "alert_id": "i-1"})
    assert r.status_code == 200, r.text
    assert between == [] and len(saved) == 6  # every clash happened
    assert [s["symbol"] for s in r.json()["signals"]] == ["INFY"]
    wait_projected(market)
    symbols = sorted(s["symbol"] for s in pending(market, pf["id"]))
    assert symbols == sorted(["INFY", "HDFCBANK", "ICICIBANK", "SBIN", "TCS", "ITC", "LT"])


def test_an_alert_with_invalid_text_is_refused_whatever_its_content_type_and_the_audit_still_lists(
        market: Any) -> None:
    """TradingView sends text/plain: a lone surrogate in a field the alert only carries along (its id) used to be
    recorded and then broke the owner's audit listing for good; one in a checked field was a 500."""
    pf = deploy(market, template_id(market))
    tv = path_of(hook(market, pf["id"]))
    ck = path_of(hook(market, pf["id"], "chartink"))
    head = market.platform.store.max_position()
    bodies = [(tv, b'{"symbol":"NSE:INFY","action":"buy","price":1500,"alert_id":"x\\ud800"}', "unicode_invalid"),
              (tv, b'{"symbol":"NSE:\\ud800","action":"buy"}', "unicode_invalid"),
              (ck, b'{"stocks":"INFY","trigger_prices":"1500","scan_name":"s\\udfff"}', "unicode_invalid"),
              (ck, b'{"stocks":"INFY","trigger_prices":"1500","scan_name":"s\\u202e\\u0007"}', "text_invalid")]
    for path, body, kind in bodies:
        for content_type in ("text/plain", "application/json"):
            r = post_alert(market, path, body, content_type)
            assert r.status_code == 422, (body, content_type, r.status_code, r.text)
            [err] = r.json()["detail"]
            assert err["type"] == kind and "input" not in err, r.text
    r = market.post(ck, data={"stocks": "INFY", "trigger_prices": "1500", "scan_name": "s\u202eevil"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "scan_name"], r.text  # form fields too
    assert market.platform.store.max_position() == head  # nothing was recorded
    assert pending(market, pf["id"]) == []
    assert market.get("/api/audit/events").status_code == 200
