"""The Telegram bot (python-telegram-bot) against a stub Bot API server on loopback: linking with a one-time
code, the commands, and Approve/Reject buttons acting through the API's own decision code and risk rules."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

import pytest

from commands.ports import NotDelivered, OutgoingNotification
from domain.money import format_inr
from infra.bars.store import BarStore
from infra.bars.synthetic import generate
from infra.bars.universes import load_universe
from infra.bootstrap import bootstrap
from projections.notifications import record
from streams.notifier import Dispatcher
from streams.telegram_bot import NOT_LINKED, TelegramBot
from streams.telegram_channel import TelegramChannel
from tests.conftest import make_settings
from tests.integration.test_api_model import deploy, template_id, wait_projected
from tests.integration.test_webhooks import hook, path_of, post_alert
from tests.support.services import free_port
from tests.support.telegram_stub import BOT_USERNAME, TelegramStub, telegram_stub

CHAT = 777001


@pytest.fixture
def bot(api_factory: Any) -> Iterator[tuple[Any, TelegramStub]]:
    """A signed-in user over synthetic history, the stub Bot API, and the bot polling it."""
    with running_bot(api_factory) as pair:
        yield pair


@contextmanager
def running_bot(api_factory: Any, **settings: Any) -> Iterator[tuple[Any, TelegramStub]]:
    with telegram_stub() as stub:
        client = api_factory(telegram_bot_token=stub.token, telegram_api_url=stub.url, **settings)
        generate(BarStore(client.platform.settings.data_dir), load_universe("nifty_50"), date(2020, 1, 1),
                 date(2020, 12, 31))
        client.login()
        stop = threading.Event()
        thread = TelegramBot(client.platform).start_thread(stop)
        try:
            yield client, stub
        finally:
            stop.set()
            thread.join(timeout=15)


def link(client: Any, stub: TelegramStub, chat: int = CHAT, username: str = "trader") -> str:
    r = client.post("/api/notifications/telegram/link")
    assert r.status_code == 200, r.text
    assert r.headers["Cache-Control"] == "no-store"
    code = r.json()["code"]
    assert r.json()["url"] == f"https://t.me/{BOT_USERNAME}?start={code}"
    before = len(stub.messages_to(chat))
    stub.send_text(chat, f"/start {code}", username=username)
    stub.wait_for(chat, "Linked to your TraderTape account", after=before)
    return str(code)


def say(stub: TelegramStub, text: str, expect: str, chat: int = CHAT) -> dict[str, Any]:
    before = len(stub.messages_to(chat))
    stub.send_text(chat, text)
    return stub.wait_for(chat, expect, after=before)


def press(stub: TelegramStub, data: str, expect: str, chat: int = CHAT) -> str:
    before = len(stub.messages_to(chat))
    stub.press(chat, data)
    return str(stub.wait_for(chat, expect, after=before)["text"])


def buttons(message: dict[str, Any]) -> dict[str, str]:
    """{button text: callback data} of a message's inline keyboard."""
    rows = (message["reply_markup"] or {}).get("inline_keyboard", [])
    return {b["text"] if b["text"] != "Reject" else f"Reject {row[0]['text'].split()[1]}": b["callback_data"]
            for row in rows for b in row}


def test_linking_is_one_code_once_from_one_chat_and_unlinking_stops_it(bot: Any) -> None:
    client, stub = bot
    wait_projected(client)  # the bot's commands answer at once; the read models follow
    assert client.get("/api/notifications/telegram").json()["linked"] is False
    say(stub, "/status", NOT_LINKED)
    code = link(client, stub)
    state = client.get("/api/notifications/telegram").json()
    assert state["linked"] is True and state["configured"] is True and state["username"] == "trader"
    # the code was single-use: another chat cannot take it over
    say(stub, f"/start {code}", "unknown, used or expired", chat=CHAT + 1)
    say(stub, "/status", NOT_LINKED, chat=CHAT + 1)
    say(stub, "/start Lbogus", "unknown, used or expired", chat=CHAT + 1)
    assert client.delete("/api/notifications/telegram").status_code == 204
    wait_projected(client)
    assert client.get("/api/notifications/telegram").json()["linked"] is False
    say(stub, "/status", NOT_LINKED)


def test_a_telegram_name_is_recorded_as_text_that_displays_as_what_it_is(bot: Any) -> None:
    """A Telegram user's name comes from elsewhere: a bidi override, a bell and a lone surrogate in it are shown as
    U+FFFD. A surrogate had been recorded as it was: the read model set the event aside (health degraded) and
    the chat read as not linked."""
    client, stub = bot
    link(client, stub, username="ev\u202eil\u0007\ud800x")
    wait_projected(client)
    state = client.get("/api/notifications/telegram").json()
    assert state["linked"] is True and state["username"] == "ev\ufffdil\ufffd\ufffdx"
    assert client.get("/api/health").json()["status"] == "ok"


def test_commands_read_and_act_like_the_api(bot: Any) -> None:
    client, stub = bot
    pf = deploy(client, template_id(client))
    link(client, stub)
    status = say(stub, "/status", "Today's P&L")["text"]
    assert f"#{pf['id']} {pf['name']}" in status and "₹10,00,000.00" in status  # Indian grouping
    say(stub, "/positions", "No open positions.")
    say(stub, f"/pause {pf['id']}", f"Portfolio {pf['id']} is paused.")
    wait_projected(client)
    assert client.get("/api/model/portfolios", params={"status": "paused"}).json()[0]["id"] == pf["id"]
    say(stub, f"/pause {pf['id']}", "only an active portfolio can be paused")
    say(stub, f"/resume {pf['id']}", f"Portfolio {pf['id']} is active.")
    say(stub, "/pause 999999", "not found")
    say(stub, "/pause", "Usage: /pause PORTFOLIO_ID")
    say(stub, "/kill", "Kill switch engaged")
    wait_projected(client)
    rules = client.get("/api/risk/rules").json()
    assert [r["rule_type"] for r in rules] == ["kill_switch"]
    wait_projected(client)
    events = client.get("/api/audit/events", params={"limit": 20}).json()
    assert any(e["type"] == "RiskRuleCreated" and e["meta"]["actor"] == f"telegram:{CHAT}" for e in events)
    assert any(e["type"] == "PortfolioPaused" and e["meta"]["actor"] == f"telegram:{CHAT}" for e in events)


def test_tradingview_alert_to_pending_signal_and_buttons_that_act_once(bot: Any) -> None:
    client, stub = bot
    pf = deploy(client, template_id(client), max_positions=10, max_per_sector=None)
    link(client, stub)
    tv = path_of(hook(client, pf["id"]))
    for symbol in ("INFY", "TCS", "ITC"):
        r = post_alert(client, tv, f'{{"symbol": "NSE:{symbol}", "action": "buy", "price": 1500}}')
        assert r.status_code == 200 and r.json()["signals"][0]["status"] == "pending_approval", r.text
    r = client.post("/api/risk/rules", json={"rule_type": "blocked_symbols", "symbols": ["ITC"]})
    assert r.status_code == 201, r.text
    message = say(stub, "/pending", "3 signal(s) waiting for your approval")
    keys = buttons(message)
    by_symbol = {s["symbol"]: s for s in client.get("/api/model/signals", params={"portfolio_id": pf["id"]}).json()}
    approve_infy = keys[f"Approve INFY #{by_symbol['INFY']['id']}"]
    assert len(approve_infy.encode()) <= 64

    # (each answer is waited for by its own words: the notifier's messages about these signals arrive meanwhile)
    assert "Approved: INFY" in press(stub, approve_infy, "Approved: INFY")
    wait_projected(client)
    assert client.get("/api/model/signals", params={"symbol": "INFY"}).json()[0]["status"] == "in_cart"
    assert "INFY" in press(stub, approve_infy, "used already")  # single use
    assert "Rejected: TCS" in press(stub, keys["Reject TCS"], "Rejected: TCS")
    wait_projected(client)
    assert client.get("/api/model/signals", params={"symbol": "TCS"}).json()[0]["status"] == "rejected"
    refused = press(stub, keys[f"Approve ITC #{by_symbol['ITC']['id']}"], "Risk rule breached")
    assert "Risk rule breached" in refused and "blocked" in refused.lower()  # the rule that refused it
    wait_projected(client)
    assert client.get("/api/model/signals", params={"symbol": "ITC"}).json()[0]["status"] == "pending_approval"
    assert stub.wait_answer("Risk rule breached")

    forged = approve_infy.rsplit(":", 1)[0] + ":0000000000000000"
    assert "not valid" in press(stub, forged, "not valid")
    fresh = buttons(say(stub, "/pending", "waiting for your approval"))[f"Approve ITC #{by_symbol['ITC']['id']}"]
    press(stub, fresh, NOT_LINKED, chat=CHAT + 5)  # only the linked chat may act
    assert client.delete("/api/notifications/telegram").status_code == 204
    press(stub, fresh, NOT_LINKED)


def test_linking_needs_a_configured_bot(api: Any) -> None:
    api.login()
    r = api.post("/api/notifications/telegram/link")
    assert r.status_code == 400 and "TRADERTAPE_TELEGRAM_BOT_TOKEN" in r.json()["detail"]
    assert api.get("/api/notifications/telegram").json() == {"configured": False, "linked": False,
                                                             "username": None, "linked_at": None}


def test_a_tradingview_alert_end_to_end_to_a_telegram_message_whose_buttons_work(bot: Any) -> None:
    client, stub = bot
    pf = deploy(client, template_id(client), max_positions=10, max_per_sector=None)
    link(client, stub)
    tv = path_of(hook(client, pf["id"]))
    r = post_alert(client, tv, '{"symbol": "NSE:INFY", "action": "buy", "price": 1510.35, "alert_id": "e2e-1"}')
    assert r.status_code == 200, r.text
    [signal] = r.json()["signals"]
    assert signal["status"] == "pending_approval"
    # the notifier sends the pending signal to the linked chat, with its buttons
    message = stub.wait_for(CHAT, "waiting for your approval", timeout=60)
    price = format_inr(signal["limit_price"] or signal["reference_price"])  # Indian grouping: ₹1,502.75
    assert f"BUY {signal['quantity']} INFY at {price}" in message["text"]
    keys = buttons(message)
    assert set(keys) == {f"Approve INFY #{signal['id']}", "Reject INFY"}
    assert "Approved: INFY" in press(stub, keys[f"Approve INFY #{signal['id']}"], "INFY")
    wait_projected(client)
    assert client.get("/api/model/signals", params={"symbol": "INFY"}).json()[0]["status"] == "in_cart"
    # the notification list shows it delivered on Telegram
    wait_projected(client)
    rows = client.get("/api/notifications").json()
    pending = next(n for n in rows if n["kind"] == "signal_pending")
    assert any(d["channel"] == "telegram" and d["status"] == "sent" for d in pending["deliveries"]), pending


def test_a_chartink_alert_is_one_telegram_message_with_a_row_of_buttons_per_stock(bot: Any) -> None:
    client, stub = bot
    pf = deploy(client, template_id(client), max_positions=10, max_per_sector=None)
    link(client, stub)
    ck = path_of(hook(client, pf["id"], "chartink", "breakouts"))
    r = client.post(ck, data={"stocks": "RELIANCE,SBIN", "trigger_prices": "2400,600", "triggered_at": "2:34 pm",
                              "scan_name": "Breakouts", "alert_name": "Alert for Breakouts"})
    assert r.status_code == 200, r.text
    ids = {s["symbol"]: s["id"] for s in r.json()["signals"]}
    assert set(ids) == {"RELIANCE", "SBIN"}
    message = stub.wait_for(CHAT, "2 signals waiting for your approval", timeout=60)
    keys = buttons(message)
    assert set(keys) == {f"Approve RELIANCE #{ids['RELIANCE']}", "Reject RELIANCE", f"Approve SBIN #{ids['SBIN']}",
                         "Reject SBIN"}
    assert "Rejected: SBIN" in press(stub, keys["Reject SBIN"], "SBIN")
    wait_projected(client)
    assert client.get("/api/model/signals", params={"symbol": "SBIN"}).json()[0]["status"] == "rejected"


def test_the_daily_digest_reaches_the_linked_chat_with_pnl_positions_and_pending_items(bot: Any) -> None:
    from datetime import datetime, timedelta

    from domain.calendar import nse_calendar
    from domain.notifications import IST
    from streams.notifier import TimedChecks

    client, stub = bot
    pf = deploy(client, template_id(client), name="Chat paper", max_positions=10, max_per_sector=None)
    link(client, stub)
    prefs = client.get("/api/notifications/preferences").json()
    prefs["kinds"]["daily_digest"]["telegram"] = True  # (by default the digest goes to the list and by email)
    assert client.put("/api/notifications/preferences", json={"kinds": prefs["kinds"],
                                                               "quiet_hours": None}).status_code == 200
    r = post_alert(client, path_of(hook(client, pf["id"])), {"symbol": "NSE:INFY", "action": "buy", "price": 1500})
    [signal] = r.json()["signals"]
    wait_projected(client)
    day = date(2026, 3, 2)
    while not nse_calendar().is_trading_day(day):
        day += timedelta(days=1)
    at = datetime(day.year, day.month, day.day, 16, 30, tzinfo=IST).timestamp()
    assert TimedChecks(client.platform, ["telegram"]).daily_digest(at) == 1
    text = stub.wait_for(CHAT, "Daily digest for", timeout=60)["text"]
    assert f"- P&L today {format_inr(0, sign=True)}, in total {format_inr(0, sign=True)} (1 portfolio)" in text
    assert "- Chat paper (paper): equity \u20b910,00,000.00" in text
    assert "Open positions (0):\n- No open positions." in text
    price = format_inr(signal["limit_price"] or signal["reference_price"])
    assert f"Pending for tomorrow (1):\n- approve or reject: BUY {signal['quantity']} INFY at {price}, expires " in text


def test_an_approval_answer_carries_a_place_cart_button_that_places_once_through_the_risk_rules(bot: Any) -> None:
    client, stub = bot
    pf = deploy(client, template_id(client), max_positions=10, max_per_sector=None)
    link(client, stub)
    tv = path_of(hook(client, pf["id"]))
    for symbol in ("INFY", "ITC"):
        r = post_alert(client, tv, {"symbol": f"NSE:{symbol}", "action": "buy", "price": 1500})
        assert r.status_code == 200, r.text
    ids = {s["symbol"]: s["id"] for s in client.get("/api/model/signals", params={"portfolio_id": pf["id"]}).json()}
    keys = buttons(say(stub, "/pending", "2 signal(s) waiting for your approval"))
    press(stub, keys[f"Approve ITC #{ids['ITC']}"], "Approved: ITC")
    before = len(stub.messages_to(CHAT))
    stub.press(CHAT, keys[f"Approve INFY #{ids['INFY']}"])
    answer = stub.wait_for(CHAT, "Approved: INFY", after=before)
    place = buttons(answer)[f"Place cart of portfolio {pf['id']}"]
    assert len(place.encode()) <= 64
    # a rule made after the approvals: placing checks the risk rules again, as the API does
    r = client.post("/api/risk/rules", json={"rule_type": "blocked_symbols", "symbols": ["ITC"]})
    assert r.status_code == 201, r.text

    press(stub, place, NOT_LINKED, chat=CHAT + 5)  # only the linked chat may act
    placed = press(stub, place, f"Cart of portfolio {pf['id']} placed")
    assert "placed: 1 order(s), 1 refused" in placed and f"INFY #{ids['INFY']}" in placed
    assert f"refused: ITC #{ids['ITC']}" in placed and "blocked" in placed.lower()
    wait_projected(client)
    states = {s["symbol"]: s["status"] for s in client.get("/api/model/signals",
                                                            params={"portfolio_id": pf["id"]}).json()}
    assert states == {"INFY": "placed", "ITC": "in_cart"}
    assert "used already" in press(stub, place, "used already")  # single use
    forged = place.rsplit(":", 1)[0] + ":0000000000000000"
    assert "not valid" in press(stub, forged, "not valid")
    events = [e for e in client.platform.store.read(0, 100_000) if e.type == "TelegramActionUsed"]
    assert [(e.data["action"], e.data.get("portfolio_id")) for e in events][-1] == ("place", pf["id"])
    assert any(e.type == "OrderPlaced" and e.meta.get("actor") == f"telegram:{CHAT}"
               for e in client.platform.store.read(0, 100_000))


def test_the_bot_api_is_reached_before_a_delivery_is_recorded_sent(tmp_path: Any) -> None:
    """The channel's one-time getMe happens before `commit()`: a Bot API that cannot be reached leaves the delivery
    unsent and retried (NotDelivered), never recorded as sent with nothing delivered; reached, the message follows
    the commit, once."""

    message = OutgoingNotification(account_id=1, channel="telegram", delivery_ids=(1,), notification_ids=(1,),
                                   kinds=("import_finished",), subject="Import finished", text="12 rows imported",
                                   html="", link="http://127.0.0.1:8000/", message_id="<tt-telegram-1@x>")
    commits: list[str] = []

    def commit(then: Any = None) -> bool:
        commits.append("committed")
        return True

    with telegram_stub() as stub:
        down = bootstrap(make_settings(tmp_path / "down", telegram_bot_token=stub.token,
                                       telegram_api_url=f"http://127.0.0.1:{free_port()}"))
        try:
            with pytest.raises(NotDelivered, match="Telegram unreachable"):
                TelegramChannel(down).send(message, str(CHAT), commit)
        finally:
            down.close()
        assert commits == [] and stub.messages_to(CHAT) == []
        up = bootstrap(make_settings(tmp_path / "up", telegram_bot_token=stub.token, telegram_api_url=stub.url))
        try:
            TelegramChannel(up).send(message, str(CHAT), commit)
        finally:
            up.close()
        assert commits == ["committed"]
        assert [m["text"] for m in stub.messages_to(CHAT)] == ["12 rows imported"]


def test_a_message_the_bot_api_failed_after_it_was_recorded_is_sent_again_marked(api_factory: Any) -> None:
    """sendMessage follows the commit: a Bot API that fails it (502) leaves the delivery in doubt -- it may or may
    not have reached the chat -- so after the retry backoff it is sent again, marked as a possible repeat, never
    silently lost. (No notifier in the app: a dispatcher driven step by step with its own clock.)"""
    with running_bot(api_factory, notifier=False) as (client, stub):
        link(client, stub)
        me = client.get("/api/auth/me").json()
        platform = client.platform
        now = [time.time()]
        dispatcher = Dispatcher(platform, TelegramChannel(platform), clock=lambda: now[0])
        with platform.db.write() as conn:
            nid = record(conn, ["telegram"], me["id"], "kill_switch", {"loss": 12000.0, "limit": 10000.0},
                         "2026-03-02T10:00:00+00:00", now=now[0])

        def delivery() -> dict[str, Any]:
            n = next(n for n in client.get("/api/notifications").json() if n["id"] == nid)
            return dict(next(d for d in n["deliveries"] if d["channel"] == "telegram"))

        before = len(stub.messages_to(CHAT))
        stub.fail_sends = 1
        assert dispatcher.step() == 1
        assert len(stub.messages_to(CHAT)) == before  # nothing reached the chat
        doubt = delivery()
        assert doubt["status"] == "sent" and doubt["error"].startswith("in doubt, sent again as a possible repeat")
        assert dispatcher.step() == 0  # not before the backoff
        now[0] += platform.settings.notify_retry_seconds + 1
        assert dispatcher.step() == 1
        sent = stub.messages_to(CHAT)[before:]
        assert len(sent) == 1 and sent[0]["text"].startswith("This may repeat a message sent at")
        assert "Kill switch" in sent[0]["text"]
        assert delivery()["status"] == "sent" and delivery()["error"] is None
        now[0] += 3600
        assert dispatcher.step() == 0 and len(stub.messages_to(CHAT)) == before + 1  # never again
