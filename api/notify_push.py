"""The live push of notifications to open pages: a tick-hub companion that looks for new in-app
notifications (written by the notifier, in this process or another) and sends each to the tick
WebSocket connections of its account as `{"type": "notification", "notification": {...}, "unread": n}`.
Connections opened with a session cookie get them (the web app); agent-key connections do not."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from infra.bootstrap import Platform
from projections.notifications import max_notification_id, notification_public, notifications_after, unread_count
from streams.ticks import PeriodicCompanion, TickHub

log = logging.getLogger(__name__)


class NotificationPush(PeriodicCompanion):
    step_first = True
    failure = "notification push failed"

    def __init__(self, platform: Platform, interval: float = 0.5) -> None:
        self.platform = platform
        self.interval = interval
        self.accounts: dict[Any, int] = {}  # client -> account id
        self._last: int | None = None

    def track(self, client: Any, account_id: int) -> None:
        self.accounts[client] = account_id

    def untrack(self, client: Any) -> None:
        self.accounts.pop(client, None)

    def prepare(self, hub: TickHub) -> None:
        try:
            self._last = self._max()  # (once, at the hub's start: what exists now is not news)
        except Exception:
            log.warning("notification push: could not read the newest notification", exc_info=True)

    async def step(self, hub: TickHub) -> None:
        await self.sweep()

    async def sweep(self) -> int:
        """Push what was recorded since the last look; returns how many messages went out."""
        if self._last is None:
            self._last = await asyncio.to_thread(self._max)
            return 0
        if not self.accounts:
            self._last = await asyncio.to_thread(self._max)
            return 0
        wanted = set(self.accounts.values())
        top, rows, counts = await asyncio.to_thread(self._new, self._last, wanted)
        self._last = max(self._last, top)
        sent = 0
        for account, public in rows:
            for client, owner in list(self.accounts.items()):
                if owner == account:
                    client.say({"type": "notification", "notification": public, "unread": counts.get(account, 0)})
                    sent += 1
        return sent

    def _max(self) -> int:
        with self.platform.db.read() as conn:
            return max_notification_id(conn)

    def _new(self, after: int, wanted: set[int]) -> tuple[int, list[tuple[int, dict[str, Any]]], dict[int, int]]:
        """(the highest id seen, [(account, notification)] for the accounts connected, unread counts)."""
        with self.platform.db.read() as conn:
            rows = notifications_after(conn, after)
            mine = [(int(r.account_id), notification_public(r, [])) for r in rows if r.account_id in wanted]
            counts = {a: unread_count(conn, a) for a in {a for a, _ in mine}}
        return (max((int(r.id) for r in rows), default=after), mine, counts)
