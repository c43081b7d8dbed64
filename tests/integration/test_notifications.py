"""Notifications end to end in the embedded default: the in-process notifier records what the events
say and sends it by email (real SMTP on loopback) and to the in-app list."""

from __future__ import annotations

import contextlib
import email
import email.message
import email.policy
import json
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from domain.notifications import IST as IST_ZONE
from infra.mail.channels import EmailChannel
from infra.mail.mailers import SmtpMailer
from projections.notifications import notification_deliveries, record
from streams.notifier import Dispatcher
from tests.conftest import unique_email
from tests.integration.test_api_model import deploy, scan_with_signals, template_id
from tests.support.services import free_port, smtp_server
from tests.support.waiting import eventually


def notification_mails(client: Any, address: str) -> list[email.message.Message]:
    return [m for m in client.inbox.messages_to(address) if m["X-TraderTape-Notifications"]]


def parts(msg: email.message.Message) -> tuple[str, str]:
    """The text and HTML parts, decoded."""
    full = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)
    plain, html = full.get_body(("plain",)), full.get_body(("html",))  # type: ignore[attr-defined]
    assert plain is not None and html is not None
    text, page = plain.get_content(), html.get_content()
    return str(text), str(page)


def test_a_scan_is_one_message_with_a_list_and_the_cart_another(market: Any) -> None:
    me = market.get("/api/auth/me").json()
    pf = deploy(market, market.post(f"/api/strategies/{template_id(market)}/fork", json={"name": "N"}).json()["id"])
    signals = scan_with_signals(market, pf["id"], minimum=2)
    pending_ids = {s["id"] for s in signals}

    def pending_listed() -> list[dict[str, Any]] | None:
        rows = market.get("/api/notifications").json()
        got = [n for n in rows if n["kind"] == "signal_pending"]
        listed = {i["signal_id"] for n in got for i in n["items"]}
        return got if pending_ids <= listed else None

    listed = eventually(pending_listed, "the pending signals in the notification list")
    # a scan's signals are one notification with a list, not one each
    assert any(len(n["items"]) >= 2 for n in listed)
    assert all(n["title"].endswith("waiting for your approval") and n["read"] is False for n in listed)
    ids = {n["id"] for n in listed}

    def mailed() -> list[email.message.Message] | None:
        mails = notification_mails(market, me["email"])
        carried = {int(x) for m in mails for x in m["X-TraderTape-Notifications"].split(",")}
        return mails if ids <= carried else None

    mails = eventually(mailed, "an email per pending-signal notification")
    carried = [int(x) for m in mails for x in m["X-TraderTape-Notifications"].split(",")]
    assert sorted(set(carried)) == sorted(carried), "a notification was emailed twice"
    big = next(n for n in listed if len(n["items"]) >= 2)
    msg = next(m for m in mails if str(big["id"]) in m["X-TraderTape-Notifications"].split(","))
    text, page = parts(msg)
    for item in big["items"]:
        assert item["symbol"] in text and item["symbol"] in page
    assert "\u20b9" in text and " IST" in text  # money in rupees, times in IST
    base = market.platform.settings.public_base_url
    assert f"{base}/approvals" in text and f'href="{base}/approvals"' in page
    assert msg.get_content_type() == "multipart/alternative"

    # the delivery is shown in the list, sent
    one = next(n for n in market.get("/api/notifications").json() if n["id"] == big["id"])
    assert [(d["channel"], d["status"], d["attempts"]) for d in one["deliveries"]] == [("email", "sent", 1)]

    # approve two and place the cart: one "cart placed" notification listing both
    chosen = signals[:2]
    for s in chosen:
        assert market.post(f"/api/model/signals/{s['id']}/approve").status_code == 200
    placed = market.post("/api/model/cart/place", json={"portfolio_id": pf["id"]})
    assert placed.status_code == 200, placed.text

    def cart() -> dict[str, Any] | None:
        return next((n for n in market.get("/api/notifications").json() if n["kind"] == "cart_placed"), None)

    cart_n = eventually(cart, "the cart notification")
    assert sorted(i["signal_id"] for i in cart_n["items"]) == sorted(s["id"] for s in chosen)
    assert cart_n["title"] == "Cart placed: 2 orders"

    # read / unread
    r = market.get("/api/notifications", params={"unread": True})
    unread_before = int(r.headers["X-Unread-Count"])
    assert unread_before == len(r.json()) >= 2
    assert market.post(f"/api/notifications/{cart_n['id']}/read").json()["read"] is True
    after = market.get("/api/notifications", params={"unread": True})
    assert int(after.headers["X-Unread-Count"]) == unread_before - 1
    assert cart_n["id"] not in [n["id"] for n in after.json()]
    assert [n["id"] for n in market.get("/api/notifications", params={"unread": False}).json()] == [cart_n["id"]]
    assert market.get("/api/notifications/unread-count").json() == {"unread": unread_before - 1}
    newest_first = [n["id"] for n in market.get("/api/notifications").json()]
    assert newest_first == sorted(newest_first, reverse=True)
    page2 = market.get("/api/notifications", params={"limit": 1, "offset": 1})
    assert [n["id"] for n in page2.json()] == newest_first[1:2]
    assert page2.headers["X-Total-Count"] == str(len(newest_first))


def test_another_users_notifications_are_invisible(market: Any, api_factory: Any) -> None:
    me = market.get("/api/auth/me").json()
    with market.platform.db.write() as conn:
        nid = record(conn, ["email"], me["id"], "import_finished",
                     {"batch_id": 1, "import_kind": "tradebook", "imported": 1234567, "rejected": 2, "duplicates": 0},
                     "2026-03-02T10:00:00+00:00")
    assert nid is not None
    other = api_factory()
    other.login(unique_email("other"))
    assert other.get("/api/notifications").json() == []
    assert other.post(f"/api/notifications/{nid}/read").status_code == 404
    assert market.post(f"/api/notifications/{nid}/read").status_code == 200
    assert market.post("/api/notifications/999999/read").status_code == 404
    mail = eventually(lambda: [m for m in notification_mails(market, me["email"])
                               if str(nid) in m["X-TraderTape-Notifications"].split(",")], "the import email")
    text, _ = parts(mail[0])
    assert "12,34,567 rows imported" in text  # Indian grouping


def test_preferences_switch_channels_and_refuse_nonsense(market: Any) -> None:
    prefs = market.get("/api/notifications/preferences").json()
    assert prefs["kinds"]["signal_pending"] == {"in_app": True, "email": True, "telegram": True}
    assert prefs["quiet_hours"] is None and prefs["timezone"] == "Asia/Kolkata"
    whole = {"kinds": prefs["kinds"], "quiet_hours": {"start": "22:30", "end": "07:00"}}
    whole["kinds"]["import_finished"]["email"] = False
    r = market.put("/api/notifications/preferences", json=whole)
    assert r.status_code == 200, r.text
    assert r.json()["kinds"]["import_finished"] == {"in_app": True, "email": False, "telegram": False}
    got = market.get("/api/notifications/preferences").json()
    assert got["quiet_hours"] == {"start": "22:30", "end": "07:00"}
    assert got["kinds"]["import_finished"]["email"] is False

    def changed(**change: Any) -> dict[str, Any]:
        doc = json.loads(json.dumps(whole))
        doc.update(change)
        return doc

    for bad in (changed(kinds={**whole["kinds"], "nope": {"email": True}}),
                changed(kinds={**whole["kinds"], "fill_entry": {"in_app": True, "email": True, "telegram": True,
                                                                "pigeon": True}}),
                changed(kinds={k: v for k, v in whole["kinds"].items() if k != "fill_entry"}),  # partial: 422
                changed(quiet_hours={"start": "25:00", "end": "07:00"}),
                changed(quiet_hours={"start": "07:00", "end": "07:00"}),
                changed(kinds={**whole["kinds"], "fill_entry": {"in_app": True, "email": "yes", "telegram": True}}),
                changed(extra=1), {"kinds": whole["kinds"]}):
        r = market.put("/api/notifications/preferences", json=bad)
        assert r.status_code in (400, 422) and "detail" in r.json(), (bad, r.text)
        assert "pigeon" not in r.text and "nope" not in r.text  # errors never echo input
    # email off for imports: an import notification is listed in the app but not emailed
    me = market.get("/api/auth/me").json()
    with market.platform.db.write() as conn:
        nid = record(conn, ["email"], me["id"], "import_finished",
                     {"batch_id": 2, "import_kind": "ledger", "imported": 1, "rejected": 0, "duplicates": 0},
                     "2026-03-02T10:00:00+00:00")
        rows = conn.execute(sa.select(notification_deliveries).where(
            notification_deliveries.c.notification_id == nid)).all()
    assert nid is not None and rows == []
    assert any(n["id"] == nid for n in market.get("/api/notifications").json())


class StepByStep:
    """A dispatcher's world driven by hand (no notifier in the app): a real SMTP server on loopback, the email
    channels made for it, a clock the test moves, and one recorded notification (an import finished)."""

    def __init__(self, client: Any, port: int, received: list[Any]) -> None:
        self.client, self.platform, self.port, self.received = client, client.platform, port, received
        self.now = time.time()
        self.channels: list[EmailChannel] = []
        me = client.login()
        with self.platform.db.write() as conn:
            nid = record(conn, ["email"], me["id"], "import_finished",
                         {"batch_id": 3, "import_kind": "cas", "imported": 5, "rejected": 1, "duplicates": 0},
                         "2026-03-02T10:00:00+00:00", now=self.now)
        assert nid is not None
        self.nid = nid

    def channel(self) -> EmailChannel:
        self.channels.append(EmailChannel(self.platform.db, SmtpMailer(f"smtp://127.0.0.1:{self.port}",
                                                                       self.platform.settings.mail_from)))
        return self.channels[-1]

    def dispatcher(self, channel: Any = None) -> Dispatcher:
        return Dispatcher(self.platform, channel or self.channel(), clock=lambda: self.now)

    def delivery(self) -> dict[str, Any]:
        n = next(n for n in self.client.get("/api/notifications").json() if n["id"] == self.nid)
        return dict(n["deliveries"][0])

    def mails(self) -> list[email.message.Message]:
        return [email.message_from_bytes(r.original_content) for r in self.received]


@contextlib.contextmanager
def step_by_step(api_factory: Any, answer: Callable[[Any, Any], str] | None = None) -> Iterator[StepByStep]:
    with smtp_server(answer) as (port, received):
        world = StepByStep(api_factory(notifier=False), port, received)
        try:
            yield world
        finally:
            for c in world.channels:
                c.close()


def test_a_refused_send_is_retried_with_backoff_and_visible(api_factory: Any) -> None:
    """A real SMTP server that refuses the first two attempts (451), then accepts."""
    refusals = [2]

    def flaky(server: Any, envelope: Any) -> str:
        if refusals[0] > 0:
            refusals[0] -= 1
            return "451 Try again later"
        return "250 OK"

    with step_by_step(api_factory, flaky) as w:
        dispatcher, retry = w.dispatcher(), w.platform.settings.notify_retry_seconds
        assert dispatcher.step() == 1
        first = w.delivery()
        assert first["status"] == "pending" and first["attempts"] == 1 and "451" in first["error"]
        assert dispatcher.step() == 0  # not due before the backoff
        w.now += retry + 1
        assert dispatcher.step() == 1
        second = w.delivery()
        assert second["attempts"] == 2 and second["status"] == "pending"
        wait2 = datetime.fromisoformat(second["next_attempt_at"]).timestamp() - w.now
        assert wait2 > retry  # doubled
        w.now += wait2 + 1
        assert dispatcher.step() == 1
        third = w.delivery()
        assert third["status"] == "sent" and third["attempts"] == 3 and third["error"] is None
        assert len(w.received) == 1
        w.now += 3600
        assert dispatcher.step() == 0 and len(w.received) == 1  # never again


class Killed(BaseException):
    """The notifier process dying (SIGKILL): nothing after this point of the send runs."""


class DiesAfterTheDot:
    """The email channel of a process killed right after the final "." went out."""

    name = "email"

    def __init__(self, real: EmailChannel) -> None:
        self.real = real

    def address(self, account_id: int) -> str | None:
        return self.real.address(account_id)

    def send(self, message: Any, address: str, commit: Any) -> None:
        def dying_commit(then: Any = None) -> bool:
            def then_die() -> None:
                then()
                raise Killed
            return bool(commit(then_die))
        self.real.send(message, address, dying_commit)


def test_a_message_in_doubt_after_a_stop_is_sent_again_marked_as_a_possible_repeat(api_factory: Any) -> None:
    """A notifier that records a message sent, writes the final SMTP "." and dies before the server's answer
    leaves the delivery in doubt: once its lease runs out the restarted notifier sends it again, marked as a
    possible repeat with the same Message-ID (mail clients show it once), never silently lost. A message the
    server answered is never sent again."""
    with step_by_step(api_factory) as w:
        lease = w.platform.settings.notify_lease_seconds
        with contextlib.suppress(Killed):
            w.dispatcher(DiesAfterTheDot(w.channel())).step()
        eventually(lambda: w.received, "the first copy at the server")
        first = w.mails()[0]
        assert first["X-TraderTape-Possible-Repeat"] is None and "repeat" not in first["Subject"].lower()

        restarted = w.dispatcher()
        assert restarted.step() == 0  # the dead sender's lease still runs: nothing is taken over yet
        w.now += lease + 1
        assert restarted.step() == 1
        assert len(w.received) == 2
        again = w.mails()[1]
        assert again["Message-ID"] == first["Message-ID"]
        assert again["X-TraderTape-Notifications"] == first["X-TraderTape-Notifications"] == str(w.nid)
        assert again["X-TraderTape-Possible-Repeat"] == "yes"
        assert again["Subject"] == f"[Possible repeat] {first['Subject']}"
        text, page = parts(again)
        sent_at = datetime.fromtimestamp(w.now - lease - 1, IST_ZONE)
        assert text.startswith(f"This may repeat a message sent at {sent_at:%-d %b %Y, %H:%M} IST")
        assert "This may repeat a message sent at" in page
        assert w.delivery()["status"] == "sent"
        w.now += 3 * lease  # answered by the server: never sent again
        assert restarted.step() == 0 and len(w.received) == 2


def test_a_connection_lost_before_the_servers_answer_is_sent_again_marked(api_factory: Any) -> None:
    """The mail server hangs up after the final "." without answering (RFC 1047's duplicate case): the message
    may or may not have been accepted, so it is sent again after the backoff, marked as a possible repeat,
    and the error stays visible until then."""
    answered = [0]

    def hangs_up_once(server: Any, envelope: Any) -> str:
        answered[0] += 1
        if answered[0] == 1:
            server.transport.close()
        return "250 OK"

    with step_by_step(api_factory, hangs_up_once) as w:
        dispatcher = w.dispatcher()
        assert dispatcher.step() == 1 and len(w.received) == 1
        doubt = w.delivery()
        assert doubt["status"] == "sent" and doubt["error"].startswith("in doubt, sent again as a possible repeat")
        assert "SMTPServerDisconnected" in doubt["error"]
        assert dispatcher.step() == 0  # not before the backoff
        w.now += w.platform.settings.notify_retry_seconds + 1
        assert dispatcher.step() == 1 and len(w.received) == 2
        first, again = w.mails()
        assert again["X-TraderTape-Possible-Repeat"] == "yes" and first["X-TraderTape-Possible-Repeat"] is None
        assert again["Message-ID"] == first["Message-ID"]
        assert again["Subject"] == f"[Possible repeat] {first['Subject']}"
        assert w.delivery()["status"] == "sent" and w.delivery()["error"] is None
        w.now += 3600
        assert dispatcher.step() == 0 and len(w.received) == 2  # answered: never again


def test_open_pages_get_their_own_notifications_live(api_factory: Any) -> None:
    from tests.support.live import make_bars

    mine = api_factory(tick_feed="simulated", tick_heartbeat_seconds=0.2)
    make_bars(mine.platform.settings.data_dir)
    me = mine.login()
    other = api_factory()
    them = other.login(unique_email("them"))
    with mine.websocket_connect("/api/ws/ticks") as ws, other.websocket_connect("/api/ws/ticks") as ws2:
        assert json.loads(ws.receive_text())["type"] == "status"
        assert json.loads(ws2.receive_text())["type"] == "status"
        with mine.platform.db.write() as conn:
            nid = record(conn, [], me["id"], "kill_switch", {"rule_id": 1, "loss": 250000.5, "limit": 200000,
                                                             "day": "2026-03-02"}, "2026-03-02T10:00:00+00:00")
            theirs = record(conn, [], them["id"], "kill_switch", {"rule_id": 2, "loss": 1, "limit": 1,
                                                                  "day": "2026-03-02"}, "2026-03-02T10:00:00+00:00")
        got = None
        for _ in range(200):
            msg = json.loads(ws.receive_text())
            if msg["type"] == "notification":
                got = msg
                break
        assert got is not None, "no notification pushed"
        assert got["notification"]["id"] == nid and got["notification"]["kind"] == "kill_switch"
        assert got["unread"] >= 1
        seen = []
        for _ in range(200):
            msg = json.loads(ws2.receive_text())
            if msg["type"] == "notification":
                seen.append(msg["notification"]["id"])
                break
        assert seen == [theirs]  # each page gets its own account's, never another's


def test_timed_checks_agent_offline_kite_session_and_the_digest(market: Any) -> None:
    """The checks at chosen IST moments (their own clock) over a live portfolio deployed through the API."""
    from datetime import date, timedelta
    from zoneinfo import ZoneInfo

    from domain.calendar import nse_calendar
    from streams.notifier import TimedChecks

    ist = ZoneInfo("Asia/Kolkata")
    me = market.get("/api/auth/me").json()
    deploy(market, template_id(market), mode="live", name="Live one")
    assert market.post("/api/auth/agent-key").status_code in (200, 201)
    platform = market.platform
    cal = nse_calendar()
    day = date(2026, 3, 2)
    while not cal.is_trading_day(day):
        day += timedelta(days=1)

    def at(hh: int, mm: int) -> float:
        return datetime(day.year, day.month, day.day, hh, mm, tzinfo=ist).timestamp()

    checks = TimedChecks(platform, [])
    eventually(lambda: checks._live_accounts_now() == [me["id"]], "the notifier mapped the live portfolio")
    assert checks.agent_offline(at(8, 0)) == 0  # market shut
    assert checks.agent_offline(at(10, 0)) == 1  # never called, market open
    assert checks.agent_offline(at(10, 5)) == 0  # once per outage
    assert checks.kite_session(at(8, 0)) == 0  # before the reminder time
    assert checks.kite_session(at(8, 50)) == 1  # no Kite session: remind before the open
    assert checks.kite_session(at(9, 0)) == 0  # once a day
    assert checks.daily_digest(at(15, 0)) == 0
    assert checks.daily_digest(at(16, 30)) == 1
    assert checks.daily_digest(at(17, 0)) == 0
    rows = market.get("/api/notifications").json()
    kinds = {n["kind"]: n for n in rows}
    assert {"agent_offline", "kite_session", "daily_digest"} <= set(kinds)
    digest = kinds["daily_digest"]
    assert digest["title"].startswith("Daily digest for") and digest["link"] == "/"
    lines = [x["line"] for x in digest["items"][0]["lines"]]
    assert any("Live one (live): equity \u20b910,00,000.00" in x for x in lines), lines  # Indian grouping
    assert kinds["kite_session"]["link"] == "/broker"


def test_rate_limit_merges_what_is_due_and_quiet_hours_hold_email(api_factory: Any) -> None:
    """Per user at most N messages a minute: more due at once go as one message with a list; past the
    limit they wait for the minute. In quiet hours email waits for their end (the list shows it at once)."""
    client = api_factory(notifier=False, notify_rate_per_minute=2)
    me = client.login(unique_email("rate"))
    platform = client.platform
    now = [datetime(2026, 3, 2, 11, 0, tzinfo=IST_ZONE).timestamp()]
    channel = EmailChannel(platform.db, SmtpMailer(platform.settings.smtp_url or "", platform.settings.mail_from))
    dispatcher = Dispatcher(platform, channel, clock=lambda: now[0])

    def burst(n: int) -> list[int]:
        with platform.db.write() as conn:
            return [int(record(conn, ["email"], me["id"], "import_finished",
                               {"batch_id": i, "import_kind": "ledger", "imported": i, "rejected": 0, "duplicates": 0},
                               "2026-03-02T05:30:00+00:00", now=now[0]) or 0) for i in range(n)]

    def mails() -> list[list[int]]:
        return [[int(x) for x in m["X-TraderTape-Notifications"].split(",")]
                for m in notification_mails(client, me["email"])]

    try:
        first = burst(5)
        assert dispatcher.step() == 5
        assert mails() == [first]  # 5 due, allowance 2: one message listing all five
        second = burst(1)
        assert dispatcher.step() == 1
        assert mails() == [first, second]  # the allowance's second message
        third = burst(3)
        assert dispatcher.step() == 3 and len(mails()) == 2  # past the limit: they wait
        assert dispatcher.step() == 0
        now[0] += 61
        assert dispatcher.step() == 3 and mails()[-1] == third  # the minute passed: one message with three
        # quiet hours 10:00-12:00 IST hold email until 12:00; the list shows it at once
        prefs = client.get("/api/notifications/preferences").json()
        assert client.put("/api/notifications/preferences", json={
            "kinds": prefs["kinds"], "quiet_hours": {"start": "10:00", "end": "12:00"}}).status_code == 200
        now[0] += 120
        held = burst(1)
        assert dispatcher.step() == 1 and len(mails()) == 3
        listed = next(n for n in client.get("/api/notifications").json() if n["id"] == held[0])
        assert listed["deliveries"][0]["status"] == "pending"
        assert listed["deliveries"][0]["next_attempt_at"].startswith("2026-03-02T06:30:00")  # 12:00 IST
        now[0] = datetime(2026, 3, 2, 12, 0, 1, tzinfo=IST_ZONE).timestamp()
        assert dispatcher.step() == 1 and mails()[-1] == held
    finally:
        channel.close()


def test_the_daily_digest_shows_pnl_open_positions_and_tomorrows_pending_items(market: Any) -> None:
    """The digest after the close: the day's and the total P&L in Indian money, each open position, and
    what waits for tomorrow (signals to approve, the cart), in the list and by email (text and HTML)."""
    from datetime import date, timedelta

    from domain.calendar import nse_calendar
    from domain.money import format_inr, format_price
    from streams.notifier import TimedChecks
    from tests.integration.test_api_model import advance, wait_projected

    me = market.get("/api/auth/me").json()
    pf = deploy(market, template_id(market), name="Digest one")
    chosen = scan_with_signals(market, pf["id"], minimum=2)[:2]
    for s in chosen:
        assert market.post(f"/api/model/signals/{s['id']}/approve").status_code == 200
    assert market.post("/api/model/cart/place", json={"portfolio_id": pf["id"]}).status_code == 200
    advance(market, 1)
    waiting = scan_with_signals(market, pf["id"], minimum=2)
    assert market.post(f"/api/model/signals/{waiting[0]['id']}/approve").status_code == 200
    wait_projected(market)
    held = market.get("/api/model/positions", params={"portfolio_id": pf["id"], "status": "open"}).json()
    assert held, "the placed cart filled at the next open"
    pending = market.get("/api/model/signals", params={"portfolio_id": pf["id"], "status": "pending_approval"}).json()
    placed = market.get("/api/model/signals", params={"portfolio_id": pf["id"], "status": "placed"}).json()
    tomorrow = len(pending) + 1 + len(placed)  # (an entry whose limit was not reached still waits at the broker)
    row = next(r for r in market.get("/api/model/portfolios").json() if r["id"] == pf["id"])

    cal = nse_calendar()
    day = date(2026, 3, 2)
    while not cal.is_trading_day(day):
        day += timedelta(days=1)
    at = datetime(day.year, day.month, day.day, 16, 30, tzinfo=IST_ZONE).timestamp()
    assert TimedChecks(market.platform, ["email"]).daily_digest(at) == 1

    digest = eventually(lambda: next((n for n in market.get("/api/notifications").json()
                                      if n["kind"] == "daily_digest"), None), "the digest in the list")
    lines = digest["items"][0]["lines"]
    text_lines = [x["line"] for x in lines]
    assert text_lines[0] == (f"P&L today {format_inr(row['day_pnl'], sign=True)}, in total "
                             f"{format_inr(row['total_pnl'], sign=True)} (1 portfolio)")
    assert [x["line"] for x in lines if x.get("heading")] == [
        f"Open positions ({len(held)})", f"Pending for tomorrow ({tomorrow})"]
    for p in held:
        assert any(x.startswith(f"{p['quantity']} {p['symbol']} at \u20b9{format_price(p['avg_price'])}, last ")
                   and x.endswith("(Digest one)") for x in text_lines), (p, text_lines)
    for s in pending:
        assert any(x.startswith(f"approve or reject: BUY {s['quantity']} {s['symbol']} at ") for x in text_lines)
    cart = waiting[0]
    assert (f"in the cart, not placed yet: BUY {cart['quantity']} {cart['symbol']} at "
            f"\u20b9{format_price(cart['limit_price'] or cart['reference_price'])} (Digest one)") in text_lines

    def mailed() -> email.message.Message | None:
        return next((m for m in notification_mails(market, me["email"])
                     if str(digest["id"]) in m["X-TraderTape-Notifications"].split(",")), None)

    text, page = parts(eventually(mailed, "the digest by email"))
    assert f"Open positions ({len(held)}):\n- {held[0]['quantity']} {held[0]['symbol']} at " in text
    assert f"Pending for tomorrow ({tomorrow}):\n- " in text
    assert all(f"- {line}\n" in text for line in text_lines if not any(x["line"] == line for x in lines
                                                                        if x.get("heading")))
    assert f"<h3>Open positions ({len(held)})</h3><ul><li>{held[0]['quantity']} {held[0]['symbol']} at " in page
    assert f"<h3>Pending for tomorrow ({tomorrow})</h3><ul><li>" in page


def test_a_mail_server_holding_one_users_message_does_not_hold_up_anothers(api_factory: Any) -> None:
    """The dispatcher sends different users' messages at once: the server keeps the first user's message
    until the second user's has arrived (on another connection), and both are delivered."""
    import asyncio
    import threading

    from aiosmtpd.controller import Controller

    slow_client = api_factory(notifier=False)
    slow = slow_client.login(unique_email("slow"))
    fast = api_factory().login(unique_email("fast"))
    platform = slow_client.platform
    other_arrived = threading.Event()
    arrived: list[tuple[str, str]] = []

    class Holding:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            to = envelope.rcpt_tos[0]
            if to == slow["email"]:  # held until the other user's message came in meanwhile
                came = await asyncio.get_running_loop().run_in_executor(None, other_arrived.wait, 15)
                arrived.append((to, "250" if came else "451"))
                return "250 OK" if came else "451 held too long"
            arrived.append((to, "250"))
            other_arrived.set()
            return "250 OK"

    port = free_port()
    server = Controller(Holding(), hostname="127.0.0.1", port=port)
    server.start()
    channel = EmailChannel(platform.db, SmtpMailer(f"smtp://127.0.0.1:{port}", platform.settings.mail_from))
    dispatcher = Dispatcher(platform, channel)
    try:
        with platform.db.write() as conn:  # the held user's first: a single sender would wait on it
            ids = [record(conn, ["email"], who["id"], "import_finished",
                          {"batch_id": n, "import_kind": "ledger", "imported": 1, "rejected": 0, "duplicates": 0},
                          "2026-03-02T05:30:00+00:00") for n, who in enumerate((slow, fast))]
        assert dispatcher.step() == 2
    finally:
        channel.close()
        server.stop()
    assert arrived == [(fast["email"], "250"), (slow["email"], "250")]
    with platform.db.read() as conn:
        d = notification_deliveries.c
        states = conn.execute(sa.select(d.notification_id, d.status).where(d.notification_id.in_(ids))).all()
    assert sorted(s for _, s in states) == ["sent", "sent"]
