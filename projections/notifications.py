"""Notifications: the recorder (a consumer of the event stream, like the read-model projections, with
its own tracking row "notifier"), its tables, and the queries the API and the dispatcher use.

The recorder turns events into notifications and, in the same transaction as its tracking position,
one *delivery* row per (notification, channel) the user switched on: an outbox. Sending is someone
else's job (streams/notifier.py, one dispatcher per channel), so a slow channel never holds up the
stream. Events of one command (one correlation id) that notify the same kind are one notification with
a list (a scan's 50 signals are one message), as long as nothing of it was sent yet.

The recorder keeps its own small maps (portfolio names, signals, positions) from the events it reads,
so it never depends on another projection having caught up (with Kafka they run in other processes).
It is not in `projections.registry` (a read-model rebuild must not send anything again).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from domain.notifications import KINDS, channel_on, default_preferences, title_of
from projections.base import Projection, page
from projections.envelope import Envelope
from projections.values import expiry

metadata = sa.MetaData()

notifications = sa.Table(
    "notifications", metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("account_id", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("title", sa.String(300), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),  # JSON list of item objects
    sa.Column("link", sa.String(200), nullable=False),  # path in the web app
    sa.Column("group_key", sa.String(120)),  # kind:account:correlation -- merges one command's events
    sa.Column("dedupe_key", sa.String(160), unique=True),  # timed checks: at most one per key
    sa.Column("position", sa.BigInteger),  # the event that created it (None: a timed check)
    sa.Column("occurred_at", sa.String(40), nullable=False),  # the event's time (ISO)
    sa.Column("created_at", sa.Float, nullable=False),  # recorded (epoch seconds)
    sa.Column("in_app", sa.Boolean, nullable=False),  # listed in the app (the user's in-app preference)
    sa.Column("read_at", sa.Float),
    sa.Index("ix_notifications_account", "account_id", "id"),
    sa.Index("ix_notifications_group", "group_key"),
)

# One row per (notification, channel): pending -> sending (claimed) -> sent | failed | skipped.
notification_deliveries = sa.Table(
    "notification_deliveries", metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("notification_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("account_id", sa.BigInteger, nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("not_before", sa.Float, nullable=False),  # epoch: due from then (backoff, quiet hours, rate)
    sa.Column("claim", sa.String(32)),  # the dispatcher's claim token while sending
    sa.Column("claimed_until", sa.Float),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("sent_at", sa.Float),
    sa.Column("message_ref", sa.String(200)),  # the message that carried it (several may share one)
    sa.Column("last_error", sa.String(500)),
    sa.Index("ix_deliveries_due", "channel", "status", "not_before"),
)

# Plain table (like sessions): the user's choices. Absent row: the defaults.
notification_preferences = sa.Table(
    "notification_preferences", metadata,
    sa.Column("account_id", sa.BigInteger, primary_key=True),
    sa.Column("doc", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

# The recorder's own maps, from the events it reads.
notifier_portfolios = sa.Table(
    "notifier_portfolios", metadata,
    sa.Column("aggregate_id", sa.String(36), primary_key=True),
    sa.Column("portfolio_id", sa.BigInteger, nullable=False),
    sa.Column("account_id", sa.BigInteger),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("mode", sa.String(10), nullable=False),
)
notifier_signals = sa.Table(
    "notifier_signals", metadata,
    sa.Column("signal_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("account_id", sa.BigInteger),
    sa.Column("portfolio_id", sa.BigInteger),
    sa.Column("portfolio", sa.String(200)),
    sa.Column("symbol", sa.String(64), nullable=False),
    sa.Column("quantity", sa.Integer),
    sa.Column("pending", sa.Boolean, nullable=False),  # waiting for approval
    sa.Column("expires_at", sa.String(40)),
    sa.Column("expires_epoch", sa.Float),
    sa.Column("notification_id", sa.BigInteger),  # its pending-approval notification
    sa.Column("correlation", sa.String(80)),
)
notifier_positions = sa.Table(
    "notifier_positions", metadata,
    sa.Column("position_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("account_id", sa.BigInteger),
    sa.Column("portfolio", sa.String(200)),
    sa.Column("symbol", sa.String(64), nullable=False),
    sa.Column("quantity", sa.Integer),
)
notifier_state = sa.Table(
    "notifier_state", metadata,
    sa.Column("key", sa.String(40), primary_key=True),
    sa.Column("value", sa.String(200), nullable=False),
)

PENDING, SENDING, SENT, FAILED, SKIPPED = "pending", "sending", "sent", "failed", "skipped"


# --------------------------------------------------------------------------------------- preferences


def get_preferences(conn: Connection, account_id: int) -> dict[str, Any]:
    doc = conn.execute(sa.select(notification_preferences.c.doc)
                       .where(notification_preferences.c.account_id == account_id)).scalar_one_or_none()
    return json.loads(doc) if doc else default_preferences()


def save_preferences(conn: Connection, account_id: int, prefs: dict[str, Any]) -> None:
    values = {"doc": json.dumps(prefs, sort_keys=True), "updated_at": time.time()}
    t = notification_preferences
    if not conn.execute(sa.update(t).where(t.c.account_id == account_id).values(**values)).rowcount:
        conn.execute(sa.insert(t).values(account_id=account_id, **values))


# ------------------------------------------------------------------------------------------ recording


def record(conn: Connection, channels: Sequence[str], account_id: int, kind: str, item: dict[str, Any],  # noqa: PLR0913
           occurred_at: str, position: int | None = None, group_key: str | None = None,
           dedupe_key: str | None = None, now: float | None = None) -> int | None:
    """Record one notification item for `account_id` and a pending delivery per channel of `channels`
    the user has on for `kind`. With `group_key`, the item joins the notification of that key while
    none of its deliveries was claimed yet. With `dedupe_key`, a second record of the key is a no-op.
    Returns the notification id (None when the user wants this kind nowhere, or it was a duplicate)."""
    now = time.time() if now is None else now
    prefs = get_preferences(conn, account_id)
    wanted = [c for c in channels if channel_on(prefs, kind, c)]
    in_app = channel_on(prefs, kind, "in_app")
    if not wanted and not in_app:
        return None
    n = notifications
    if dedupe_key is not None and conn.execute(
            sa.select(n.c.id).where(n.c.dedupe_key == dedupe_key)).first() is not None:
        return None
    if group_key is not None:
        row = conn.execute(sa.select(n.c.id, n.c.payload).where(n.c.group_key == group_key)
                           .order_by(n.c.id.desc()).limit(1)).first()
        if row is not None and not _claimed(conn, row.id):
            items = [*json.loads(row.payload), item]
            conn.execute(sa.update(n).where(n.c.id == row.id).values(
                payload=json.dumps(items), title=title_of(kind, items)[:300]))
            return int(row.id)
    nid = conn.execute(sa.insert(n).values(
        account_id=account_id, kind=kind, title=title_of(kind, [item])[:300], payload=json.dumps([item]),
        link=KINDS[kind].link, group_key=group_key, dedupe_key=dedupe_key, position=position,
        occurred_at=occurred_at, created_at=now, in_app=in_app).returning(n.c.id)).scalar_one()
    if wanted:
        conn.execute(sa.insert(notification_deliveries), [
            {"notification_id": nid, "account_id": account_id, "channel": c, "status": PENDING, "attempts": 0,
             "not_before": now, "created_at": now} for c in wanted])
    return int(nid)


def _claimed(conn: Connection, notification_id: int) -> bool:
    d = notification_deliveries
    return conn.execute(sa.select(d.c.id).where(d.c.notification_id == notification_id,
                                                d.c.status != PENDING).limit(1)).first() is not None


def _drop_item(conn: Connection, notification_id: int, signal_id: int) -> None:
    """Take a signal out of its still-unsent pending-approval notification (auto-approved in the same
    command); a notification left empty goes with its deliveries."""
    n = notifications
    row = conn.execute(sa.select(n.c.payload, n.c.kind).where(n.c.id == notification_id)).first()
    if row is None or _claimed(conn, notification_id):
        return
    items = [i for i in json.loads(row.payload) if i.get("signal_id") != signal_id]
    if items:
        conn.execute(sa.update(n).where(n.c.id == notification_id).values(
            payload=json.dumps(items), title=title_of(row.kind, items)[:300]))
    else:
        conn.execute(sa.delete(notification_deliveries).where(
            notification_deliveries.c.notification_id == notification_id))
        conn.execute(sa.delete(n).where(n.c.id == notification_id))


def _correlation(env: Envelope) -> str:
    meta = env.meta or {}
    return str(meta.get("correlation_id") or meta.get("request_id") or f"p{env.position}")[:80]


class NotifierProjection(Projection):
    """Events -> notifications + deliveries. `channels`: the channels the notifier sends (deliveries are
    recorded only for those). Events at positions up to `silent_until` (what was stored before the
    notifier first ran) only fill its maps: history is never notified."""

    name = "notifier"
    metadata = metadata

    def __init__(self, channels: Sequence[str] = ("email",)) -> None:
        super().__init__()
        self.channels = list(channels)
        self.silent_until = 0

    def load_state(self, conn: Connection) -> None:
        v = conn.execute(sa.select(notifier_state.c.value).where(notifier_state.c.key == "silent_until")).scalar()
        self.silent_until = int(v) if v is not None else 0

    def start_silently(self, conn: Connection, head: int) -> None:
        """First start: what is already stored is history (fills the maps, notifies nobody)."""
        state = notifier_state
        if conn.execute(sa.select(state.c.value).where(state.c.key == "silent_until")).first() is None:
            conn.execute(sa.insert(notifier_state).values(key="silent_until", value=str(head)))
        self.load_state(conn)

    def _notify(self, conn: Connection, env: Envelope, account_id: int | None, kind: str, item: dict[str, Any],
                group: bool = True) -> int | None:
        if account_id is None or env.position <= self.silent_until:
            return None
        key = f"{kind}:{account_id}:{_correlation(env)}" if group else None
        return record(conn, self.channels, account_id, kind, item, env.occurred_at, env.position, key)

    def _portfolio(self, conn: Connection, env: Envelope) -> Any:
        return conn.execute(sa.select(notifier_portfolios).where(
            notifier_portfolios.c.aggregate_id == env.aggregate_id)).first()

    # --- maps

    def on_PortfolioDeployed(self, conn: Connection, env: Envelope) -> None:
        d = env.data
        conn.execute(sa.delete(notifier_portfolios).where(notifier_portfolios.c.aggregate_id == env.aggregate_id))
        conn.execute(sa.insert(notifier_portfolios).values(
            aggregate_id=env.aggregate_id, portfolio_id=d["portfolio_id"], account_id=env.account_id,
            name=str(d.get("name", ""))[:200], mode=str(d.get("mode", "paper"))[:10]))

    # --- signals waiting for approval

    def on_SignalGenerated(self, conn: Connection, env: Envelope) -> None:
        d = env.data
        pf = self._portfolio(conn, env)
        expires_at, epoch = expiry(d["day"], d["validity_days"])
        name = pf.name if pf is not None else None
        item = {"signal_id": d["signal_id"], "symbol": d["symbol"], "quantity": d["quantity"],
                "limit_price": d.get("limit_price"), "reference_price": d.get("reference_price"),
                "portfolio": name, "portfolio_id": pf.portfolio_id if pf is not None else None,
                "expires_at": expires_at, "conviction": d.get("conviction")}
        nid = self._notify(conn, env, env.account_id, "signal_pending", item)
        conn.execute(sa.delete(notifier_signals).where(notifier_signals.c.signal_id == d["signal_id"]))
        conn.execute(sa.insert(notifier_signals).values(
            signal_id=d["signal_id"], account_id=env.account_id, portfolio_id=item["portfolio_id"], portfolio=name,
            symbol=d["symbol"], quantity=d["quantity"], pending=True, expires_at=expires_at, expires_epoch=epoch,
            notification_id=nid, correlation=_correlation(env)))

    def on_ExitSignalled(self, conn: Connection, env: Envelope) -> None:
        d = env.data
        if d.get("signal_id") is None:
            return
        pf = self._portfolio(conn, env)
        conn.execute(sa.delete(notifier_signals).where(notifier_signals.c.signal_id == d["signal_id"]))
        conn.execute(sa.insert(notifier_signals).values(
            signal_id=d["signal_id"], account_id=env.account_id, portfolio_id=pf.portfolio_id if pf else None,
            portfolio=pf.name if pf else None, symbol=d.get("symbol") or "?", quantity=d.get("quantity"),
            pending=False, correlation=_correlation(env)))

    def _decided(self, conn: Connection, env: Envelope) -> None:
        s = notifier_signals
        row = conn.execute(sa.select(s).where(s.c.signal_id == env.data["signal_id"])).first()
        if row is None:
            return
        conn.execute(sa.update(s).where(s.c.signal_id == row.signal_id).values(pending=False))
        if row.notification_id is not None and row.correlation == _correlation(env):
            _drop_item(conn, int(row.notification_id), int(row.signal_id))

    def on_SignalApproved(self, conn: Connection, env: Envelope) -> None:
        self._decided(conn, env)

    def on_SignalRejected(self, conn: Connection, env: Envelope) -> None:
        self._decided(conn, env)

    def on_SignalExpired(self, conn: Connection, env: Envelope) -> None:
        self._decided(conn, env)

    # --- the cart

    def _signal(self, conn: Connection, signal_id: int) -> Any:
        return conn.execute(sa.select(notifier_signals).where(notifier_signals.c.signal_id == signal_id)).first()

    def on_OrderPlaced(self, conn: Connection, env: Envelope) -> None:
        d = env.data
        sig = self._signal(conn, d["signal_id"])
        if sig is None or not _is_entry(sig):
            return
        self._notify(conn, env, env.account_id, "cart_placed", {
            "signal_id": d["signal_id"], "symbol": sig.symbol, "quantity": d["quantity"],
            "order_type": d.get("order_type"), "limit_price": d.get("limit_price"), "portfolio": sig.portfolio})

    def on_OrderFailed(self, conn: Connection, env: Envelope) -> None:
        d = env.data
        sig = self._signal(conn, d["signal_id"])
        self._notify(conn, env, env.account_id, "cart_placed", {
            "signal_id": d["signal_id"], "symbol": sig.symbol if sig else "?", "refused": True,
            "reason": str(d.get("reason", ""))[:300], "portfolio": sig.portfolio if sig else None})

    # --- fills

    def on_PositionOpened(self, conn: Connection, env: Envelope) -> None:
        d = env.data
        pf = self._portfolio(conn, env)
        name = pf.name if pf is not None else None
        conn.execute(sa.delete(notifier_positions).where(notifier_positions.c.position_id == d["position_id"]))
        conn.execute(sa.insert(notifier_positions).values(
            position_id=d["position_id"], account_id=env.account_id, portfolio=name, symbol=d["symbol"],
            quantity=d["quantity"]))
        self._notify(conn, env, env.account_id, "fill_entry", {
            "position_id": d["position_id"], "symbol": d["symbol"], "quantity": d["quantity"],
            "price": d["entry_price"], "stop_loss": d.get("stop_loss"), "target": d.get("target"),
            "portfolio": name})

    def _exit(self, conn: Connection, env: Envelope, quantity: int | None) -> None:
        d = env.data
        pos = conn.execute(sa.select(notifier_positions).where(
            notifier_positions.c.position_id == d["position_id"])).first()
        self._notify(conn, env, env.account_id, "fill_exit", {
            "position_id": d["position_id"], "symbol": pos.symbol if pos else "?",
            "quantity": quantity if quantity is not None else (pos.quantity if pos else None),
            "price": d["exit_price"], "reason": d["exit_reason"], "pnl": d["realized_pnl"],
            "portfolio": pos.portfolio if pos else None})

    def on_PositionClosed(self, conn: Connection, env: Envelope) -> None:
        self._exit(conn, env, None)

    def on_PositionReduced(self, conn: Connection, env: Envelope) -> None:
        self._exit(conn, env, env.data["quantity"])
        pos = notifier_positions
        conn.execute(sa.update(pos).where(pos.c.position_id == env.data["position_id"]).values(
            quantity=pos.c.quantity - env.data["quantity"]))

    # --- risk

    def on_RiskBreached(self, conn: Connection, env: Envelope) -> None:
        d = env.data
        if d.get("action") == "daily_loss":
            return  # the kill switch event that follows says it
        self._notify(conn, env, env.account_id, "risk_breach", {
            "rule_id": d["rule_id"], "rule_type": d["rule_type"], "symbol": d.get("symbol"),
            "signal_id": d.get("signal_id"), "message": str(d.get("message", ""))[:300], "action": d.get("action")})

    def on_KillSwitchEngaged(self, conn: Connection, env: Envelope) -> None:
        d = env.data
        self._notify(conn, env, env.account_id, "kill_switch", {
            "rule_id": d["rule_id"], "loss": d["loss"], "limit": d["limit"], "day": d["day"]}, group=False)

    # --- the broker session, imports, research

    def on_BrokerSessionDisconnected(self, conn: Connection, env: Envelope) -> None:
        self._notify(conn, env, env.account_id, "kite_session", {
            "title": "Kite session ended", "text": f"The Kite session ended ({str(env.data.get('reason', ''))[:200]}): "
            "log in to Kite again from the Broker page before the market opens."}, group=False)

    def on_ImportBatchRecorded(self, conn: Connection, env: Envelope) -> None:
        d = env.data
        report = d.get("report") or {}
        self._notify(conn, env, env.account_id, "import_finished", {
            "batch_id": d["batch_id"], "import_kind": d.get("kind"), "imported": report.get("imported", 0),
            "rejected": report.get("rejected_count", len(report.get("rejected") or [])),
            "duplicates": report.get("duplicates", 0)}, group=False)

    def on_ResearchJobFinished(self, conn: Connection, env: Envelope) -> None:
        """The hook for long research jobs (issue 21): an event `ResearchJobFinished` with `job_id`, `name`,
        `status` and optionally `link` (a path in the web app) notifies the job's owner."""
        d = env.data
        link = d.get("link")
        item = {"job_id": d.get("job_id"), "title": f"Research job finished: {str(d.get('name', ''))[:100]}",
                "text": f"{str(d.get('name', 'research job'))[:100]}: {str(d.get('status', 'finished'))[:40]}"}
        if isinstance(link, str) and link.startswith("/") and not link.startswith("//"):
            item["link"] = link[:200]
        self._notify(conn, env, env.account_id, "research_finished", item, group=False)


def _is_entry(sig: Any) -> bool:
    return bool(sig.expires_at is not None)  # entry signals carry an expiry; exit signals do not


# ------------------------------------------------------------------------------------------- queries


def notification_public(row: Any, deliveries: list[Any]) -> dict[str, Any]:
    return {
        "id": int(row.id), "kind": row.kind, "title": row.title, "items": json.loads(row.payload),
        "link": row.link, "occurred_at": row.occurred_at,
        "created_at": datetime.fromtimestamp(row.created_at, UTC).isoformat(),
        "read": row.read_at is not None,
        "deliveries": [{"channel": d.channel, "status": d.status, "attempts": int(d.attempts),
                        "sent_at": datetime.fromtimestamp(d.sent_at, UTC).isoformat() if d.sent_at else None,
                        "next_attempt_at": (datetime.fromtimestamp(d.not_before, UTC).isoformat()
                                            if d.status == PENDING else None),
                        "error": d.last_error} for d in deliveries],
    }


def _listed(account_id: int) -> Any:
    n, d = notifications, notification_deliveries
    failed = sa.select(d.c.id).where(d.c.notification_id == n.c.id, d.c.status == FAILED).exists()
    return sa.and_(n.c.account_id == account_id, sa.or_(n.c.in_app.is_(True), failed))


def list_notifications(conn: Connection, account_id: int, unread: bool | None, limit: int,
                       offset: int) -> tuple[list[dict[str, Any]], int]:
    """Newest first; in-app ones, and any whose delivery failed (so a failure is always visible)."""
    n = notifications
    q = sa.select(n).where(_listed(account_id))
    if unread is True:
        q = q.where(n.c.read_at.is_(None))
    elif unread is False:
        q = q.where(n.c.read_at.is_not(None))
    rows, total = page(q.order_by(n.c.id.desc()), conn, limit, offset)
    per = _deliveries(conn, [r.id for r in rows])
    return [notification_public(r, by) for r, by in zip(rows, per, strict=True)], total


def _deliveries(conn: Connection, ids: list[int]) -> list[list[Any]]:
    if not ids:
        return []
    d = notification_deliveries
    rows = conn.execute(sa.select(d).where(d.c.notification_id.in_(ids)).order_by(d.c.id)).all()
    per: dict[int, list[Any]] = {i: [] for i in ids}
    for r in rows:
        per[int(r.notification_id)].append(r)
    return [per[i] for i in ids]


def unread_count(conn: Connection, account_id: int) -> int:
    n = notifications
    return int(conn.execute(sa.select(sa.func.count()).select_from(n).where(
        _listed(account_id), n.c.read_at.is_(None))).scalar_one())


def get_notification(conn: Connection, account_id: int, notification_id: int) -> dict[str, Any] | None:
    n = notifications
    row = conn.execute(sa.select(n).where(n.c.id == notification_id, _listed(account_id))).first()
    return None if row is None else notification_public(row, _deliveries(conn, [row.id])[0])


def mark_read(conn: Connection, account_id: int, notification_id: int, now: float) -> bool:
    """False when the notification is not the account's (a 404, never another user's)."""
    n = notifications
    found = conn.execute(sa.select(n.c.id, n.c.read_at).where(n.c.id == notification_id, _listed(account_id))).first()
    if found is None:
        return False
    if found.read_at is None:
        conn.execute(sa.update(n).where(n.c.id == notification_id).values(read_at=now))
    return True


def notifications_after(conn: Connection, after_id: int, limit: int = 500) -> list[Any]:
    """In-app notifications with an id above `after_id` (the live push), oldest first."""
    n = notifications
    return list(conn.execute(sa.select(n).where(n.c.id > after_id, n.c.in_app.is_(True))
                             .order_by(n.c.id).limit(limit)).all())


def max_notification_id(conn: Connection) -> int:
    return int(conn.execute(sa.select(sa.func.max(notifications.c.id))).scalar() or 0)
