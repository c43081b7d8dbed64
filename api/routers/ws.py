"""`/api/ws/ticks`: live ticks over a WebSocket (API "WebSocket").

Authenticated by the session cookie, `?token=zt_...` or `Authorization: Bearer zt_...`. Client messages
`{"action": "subscribe"|"unsubscribe", "symbols": [...], "mode": "ltp"|"quote"|"full"}`; server messages
`ticks`, `status`, `subscribed`, `unsubscribed`, `error`. A malformed message or an unknown symbol is an
`error` message, never a disconnect. One upstream feed is shared by every client (`streams.ticks`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from api.csrf import own_origin
from api.deps import SESSION_COOKIE
from api.notify_push import NotificationPush
from api.revocation import REVOKED
from api.security_log import security_event
from api.textguard import MAX_DEPTH, fault_error
from commands.handlers.agent import ACCESS_TOKEN
from domain.calendar import nse_calendar
from domain.text import NSE_SYMBOL
from infra.bars.store import BarStore
from infra.bootstrap import Platform
from infra.kite.client import KiteBroker
from infra.kite.ticker import KiteTickerFeed
from projections.broker import get_connection, live_accounts
from streams.paper_ticks import PaperTickFills
from streams.ticks import (
    MODES,
    Client,
    ClientClosed,
    Heartbeat,
    PeriodicCompanion,
    SimulatedFeed,
    TickHub,
    Upstream,
    next_nse_open,
    nse_open,
)

log = logging.getLogger(__name__)
router = APIRouter(tags=["ticks"])
MAX_SYMBOLS_PER_CLIENT = 3000  # Kite's per-connection limit
_EXCHANGE_SYMBOL = re.compile(r"(NSE|BSE):" + NSE_SYMBOL.pattern)


class _Names:
    """Known symbols ("NSE:SYMBOL"): the bar store's, plus Kite's instruments while the Kite feed runs."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def __call__(self, symbol: str) -> bool:
        return symbol in self.names


def _broker_session(platform: Platform) -> tuple[str, str, dict[str, int]] | None:
    """(api_key, access_token, NSE tokens) of some account with a live broker session, or None."""
    now = datetime.now(UTC)
    with platform.db.read() as conn:
        accounts = live_accounts(conn)
        rows = {a: get_connection(conn, a) for a in accounts}
    for account_id, row in rows.items():
        token = platform.bus.deps.secrets.get(account_id, ACCESS_TOKEN, now)
        if token is None or row is None or not row["api_key"]:
            continue
        try:
            instruments = KiteBroker(row["api_key"], token, root=platform.settings.kite_api_root).instruments("NSE")
        except Exception as exc:
            log.warning("Kite instruments unavailable (%s); ticks stay simulated", exc)
            return None
        tokens = {f"NSE:{i['tradingsymbol']}": int(i["instrument_token"]) for i in instruments
                  if i.get("segment") == "NSE"}
        return row["api_key"], token, tokens
    return None


def make_tick_hub(platform: Platform) -> TickHub:
    settings = platform.settings
    names = _Names()
    store = BarStore(settings.data_dir)
    names.names = {f"NSE:{s}" for s in store.symbols()}
    calendar = nse_calendar()

    def last_close(symbols: list[str]) -> dict[str, float]:
        return {s: float(bar["close"]) for s, bar in store.last_bars(symbols).items()}

    def sim_names() -> set[str]:
        return {f"NSE:{s}" for s in store.symbols()}

    async def make_upstream() -> Upstream:
        base = await asyncio.to_thread(sim_names)
        session = None if settings.tick_feed == "simulated" else await asyncio.to_thread(_broker_session, platform)
        if session is not None:
            api_key, token, tokens = session
            names.names = base | set(tokens)
            log.info("tick feed: Kite ticker (%d instruments)", len(tokens))
            return KiteTickerFeed(settings.kite_ws_root, api_key, token, tokens)
        names.names = base
        return SimulatedFeed(last_close, interval=settings.tick_interval, always_open=settings.tick_always_open,
                             is_trading_day=lambda d: calendar.is_trading_day(d.date()))

    hub = TickHub(names, make_upstream)
    hub.status_info = lambda: market_status(settings.tick_always_open, calendar, datetime.now(UTC))
    hub.companions.append(CredentialWatch(platform))
    hub.companions.append(NotificationPush(platform))
    hub.companions.append(Heartbeat(settings.tick_heartbeat_seconds))
    if settings.paper_tick_fills:
        def is_open(now: datetime) -> bool:
            return settings.tick_always_open or nse_open(now, lambda d: calendar.is_trading_day(d.date()))

        hub.companions.append(PaperTickFills(platform, is_open, settings.paper_tick_refresh_seconds,
                                             session_rules=not settings.tick_always_open))
    return hub


def market_status(always_open: bool, calendar: Any, now: datetime) -> dict[str, Any]:
    """`market_open` (NSE hours on a trading day, or the demo setting) and `next_open` (ISO, IST)."""
    def trading(d: datetime) -> bool:
        return bool(calendar.is_trading_day(d.date()))

    upcoming = next_nse_open(now, trading)
    return {"market_open": always_open or nse_open(now, trading),
            "next_open": upcoming.isoformat() if upcoming else None}


async def ensure_hub(app: Any) -> TickHub:
    """The app's tick hub, started at first use: the first WebSocket client, or the server's start when
    paper portfolios fill on ticks (`serve` with its scheduler)."""
    hub: TickHub | None = getattr(app.state, "tick_hub", None)
    if hub is None:  # no await between the check and the assignment: one hub per app
        hub = app.state.tick_hub = make_tick_hub(app.state.platform)
        await hub.start()
    return hub


POLICY = 1008  # refused outright: a foreign Origin, too many connections, a frame nested too deeply
AGENT_KEY_REVOKED = "Agent key revoked or replaced"  # the reason when the once-a-second check finds it


def _authenticate(platform: Platform, key: str | None,
                  cookie: str | None) -> tuple[int, tuple[str, Any], tuple[str, str]] | None:
    """(account id, credential, check) -- the credential names what a revocation closes: the account's
    agent key, or one session (by its token hash); the check is what `CredentialWatch` looks up again."""
    now = time.time()
    if key:
        key_hash = platform.token_hash(key)
        account = platform.security.agent_key_account(key_hash, now)
        return None if account is None else (account, ("agent_key", account), ("key", key_hash))
    if cookie:
        digest = platform.token_hash(cookie)
        info = platform.security.session(digest, now, platform.settings.session_days * 86400)
        return None if info is None else (info.account_id, ("session", digest), ("session", digest))
    return None


class CredentialWatch(PeriodicCompanion):
    """Closes tick connections whose credential stopped signing in -- revoked, regenerated or signed out
    through another API process (the process that handles a revocation closes its own connections at
    once, see `close_revoked`). Every `interval` seconds: one query for all distinct credentials."""

    failure = "tick credential check failed"

    def __init__(self, platform: Platform, interval: float = 1.0) -> None:
        self.platform = platform
        self.interval = interval
        self.checks: dict[Client, tuple[str, str]] = {}

    def track(self, client: Client, check: tuple[str, str]) -> None:
        self.checks[client] = check

    def untrack(self, client: Client) -> None:
        self.checks.pop(client, None)

    async def step(self, hub: TickHub) -> None:
        await self.sweep()

    async def sweep(self) -> int:
        """Close the tracked connections whose credential no longer signs in; returns how many."""
        checks = dict(self.checks)
        if not checks:
            return 0
        sessions = {v for kind, v in checks.values() if kind == "session"}
        keys = {v for kind, v in checks.values() if kind == "key"}
        live = await asyncio.to_thread(self.platform.security.live_credentials, sessions, keys, time.time())
        closed = 0
        for client, (kind, value) in checks.items():
            if value not in live and client.closing is None:
                client.close(REVOKED, "Signed out" if kind == "session" else AGENT_KEY_REVOKED)
                self.untrack(client)
                closed += 1
        return closed


@router.websocket("/api/ws/ticks")
async def ticks(websocket: WebSocket) -> None:
    platform: Platform = websocket.app.state.platform
    auth = websocket.headers.get("authorization", "")
    key = auth[7:].strip() if auth.lower().startswith("bearer ") else websocket.query_params.get("token")
    if key is not None and not key.startswith("zt_"):
        key = "invalid"
    if not _same_origin(websocket, platform.settings.public_base_url):  # a page of another site (cross-site hijack)
        security_event(websocket, "ws_origin_refused", origin=websocket.headers.get("origin", ""))
        await websocket.close(code=POLICY, reason="Origin not allowed")
        return
    found = await run_in_threadpool(_authenticate, platform, key, websocket.cookies.get(SESSION_COOKIE))
    await websocket.accept()  # then refuse with a close frame a client can read (before accept: a bare 403)
    if found is None:
        security_event(websocket, "ws_unauthorized")
        await websocket.close(code=1008, reason="Not authenticated: sign in, or pass ?token=zt_...")
        return
    account_id = found[0]
    counts: dict[int, int] | None = getattr(websocket.app.state, "tick_connections", None)
    if counts is None:
        counts = websocket.app.state.tick_connections = {}
    cap = platform.settings.ws_max_per_account
    if counts.get(account_id, 0) >= cap:
        security_event(websocket, "ws_connection_cap", account=account_id)
        await websocket.close(code=POLICY, reason=f"Too many tick connections for this account (at most {cap})")
        return
    counts[account_id] = counts.get(account_id, 0) + 1
    try:
        await _serve(websocket, found)
    finally:
        counts[account_id] -= 1
        if counts[account_id] <= 0:
            counts.pop(account_id, None)


def _same_origin(websocket: WebSocket, base_url: str) -> bool:
    """No Origin (a program, not a browser page) or the server's own (the CSRF rule's, api/csrf.py)."""
    origin = websocket.headers.get("origin")
    return not origin or own_origin(origin, websocket.scope, base_url)


async def _serve(websocket: WebSocket, found: tuple[int, tuple[str, Any], tuple[str, str]]) -> None:
    hub = await ensure_hub(websocket.app)
    client = hub.attach(found[1])
    watch = next((c for c in hub.companions if isinstance(c, CredentialWatch)), None)
    if watch is not None:
        watch.track(client, found[2])
    push = next((c for c in hub.companions if isinstance(c, NotificationPush)), None)
    if push is not None and found[1][0] == "session":  # the web app's pages (not an agent's connection)
        push.track(client, found[0])

    async def sender() -> None:
        try:
            while True:
                for text in await client.next_frames():
                    await websocket.send_text(text)
        except ClientClosed as closed:
            await websocket.close(code=closed.code, reason=closed.reason)

    async def receiver() -> None:
        while True:
            raw = await websocket.receive()
            if raw["type"] == "websocket.disconnect":
                return
            text = raw.get("text")
            if text is None:
                client.say({"type": "error", "detail": "Send JSON text messages, e.g. "
                                                       "{\"action\": \"subscribe\", \"symbols\": [\"NSE:INFY\"]}"})
                continue
            _handle(hub, client, text)

    tasks = [asyncio.create_task(sender()), asyncio.create_task(receiver())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except (asyncio.CancelledError, WebSocketDisconnect):
                pass
            except Exception:  # the socket closes either way; the cause belongs in the log
                log.exception("tick WebSocket of %s failed", client.credential)
        hub.detach(client)
        if watch is not None:
            watch.untrack(client)
        if push is not None:
            push.untrack(client)



def _handle(hub: TickHub, client: Any, text: str) -> None:
    try:
        msg = json.loads(text) if len(text) <= 100_000 else None
    except RecursionError:  # thousands of nested brackets: close, saying why
        client.close(POLICY, f"Message nested too deeply (JSON of at most {MAX_DEPTH} levels)")
        return
    except ValueError:
        msg = None
    if not isinstance(msg, dict):
        client.say({"type": "error", "detail": "Malformed message: expected a JSON object with \"action\""})
        return
    bad = fault_error(msg, [])
    if bad is not None:
        client.say({"type": "error", "detail": f"{bad['msg']} (field {'.'.join(map(str, bad['loc']))})"})
        return
    action = msg.get("action")
    symbols = msg.get("symbols")
    if action not in ("subscribe", "unsubscribe"):
        client.say({"type": "error", "detail": "Unknown action: use subscribe or unsubscribe"})
        return
    if not isinstance(symbols, list) or not all(isinstance(s, str) and 0 < len(s) <= 64 for s in symbols):
        client.say({"type": "error", "detail": "symbols must be a list of \"EXCHANGE:SYMBOL\" strings"})
        return
    wanted = list(dict.fromkeys(s.strip().upper() for s in symbols))
    if action == "unsubscribe":
        client.say({"type": "unsubscribed", "symbols": hub.unsubscribe(client, wanted)})
        return
    mode = msg.get("mode", "quote")
    if mode not in MODES:
        client.say({"type": "error", "detail": "Unknown mode: use ltp, quote or full"})
        return
    if len(set(client.modes) | set(wanted)) > MAX_SYMBOLS_PER_CLIENT:
        client.say({"type": "error", "detail": f"At most {MAX_SYMBOLS_PER_CLIENT} symbols per connection"})
        return
    ok, unknown = hub.subscribe(client, wanted, mode)
    for sym in unknown:  # named only when it is one (what a client sent is never echoed otherwise)
        named = sym if _EXCHANGE_SYMBOL.fullmatch(sym) else "(not an EXCHANGE:SYMBOL)"
        client.say({"type": "error", "detail": f"Unknown symbol {named}"})
    if ok:
        client.say({"type": "subscribed", "symbols": ok})
