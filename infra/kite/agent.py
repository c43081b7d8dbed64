"""`tradertape agent`: runs on the user's machine, between the TraderTape server and Kite.

Each cycle it
  1. exchanges a pending Kite request token (the server hands out the token, the api_key and the
     checksum) and pushes the access token;
  2. re-reports what its journal holds but the server has not acknowledged;
  3. places the pending signals of live portfolios: entries as single-leg BUY GTTs at the limit price
     (entries without a limit as regular MARKET orders), protective exits as two-leg OCO SELL GTTs
     (stop, target), other exits (exit rules, manual closes) as regular MARKET SELL orders for the
     signal's quantity. Every MARKET order carries `market_protection` (default -1, automatic: Kite
     refuses API market orders without it) and, when configured, `algo_id`. An exit that `replaces` a
     working protective OCO (a manual close, a re-armed stop) never leaves the shares unprotected: the
     new order is placed first and the old GTT deleted only once Kite accepted it; if Kite refuses the
     new order the old GTT stays. If the old GTT triggered first, its fill is reported instead and the
     new order is never sent (the server then fails it); for delivery (CNC) shares Kite refuses a second
     sale of the same shares, so the two can never both sell;
  4. checks the working signals' GTTs and orders and reports fills and failures;
  5. pushes holdings and positions snapshots every `sync_every` seconds.

Never twice: before calling Kite it records its intent in a local SQLite journal (synchronous=FULL);
after a crash, an intent without a broker id is looked up at Kite (GTTs by instrument, side, quantity
and triggers; orders by their tag `tt<signal id>`) before anything is placed again. A network error
while placing leaves the intent open, so the next cycle checks Kite the same way. The server treats
repeated results as no-ops, so a result reported twice records once.
Kite limits: at most `orders_per_second` (8) placements per second; a 429 backs off exponentially.

Over 500 lines because the cycle is one program: its steps share the journal, the rate limiter and the
Kite client, and the never-twice rule above holds only if every call to Kite goes through the same
`Agent` (the server client, the journal and the limiter beside it are small classes of their own).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

from commands.brokers import (
    Broker,
    BrokerAuthError,
    BrokerError,
    BrokerInputError,
    BrokerRateLimited,
    GttLeg,
)
from domain.market_hours import IST
from domain.portfolio.aggregate import PROTECTIVE_REASON
from domain.ticks import round_to_tick, tick_size
from infra.kite.brokers import PaperBroker
from infra.kite.client import KiteBroker

log = logging.getLogger("tradertape.agent")
FAILED_GTT = ("cancelled", "deleted", "expired", "rejected", "disabled")
STOP_LIMIT_SLACK = 0.005  # a stop leg's limit price sits 0.5% under its trigger so the sell fills


def on_grid(price: float, last: float = 0.0, mode: str = "nearest") -> float:
    """`price` on the tick grid Kite enforces today (NSE's price bands; the coarser of the price's and the
    last price's band, so it is valid whichever band Kite puts the instrument in)."""
    today = datetime.now(IST).date().isoformat()
    tick = max(tick_size(price, today), tick_size(last, today) if last > 0 else 0.0)
    return round_to_tick(price, tick, mode)


def trigger_gap(last: float) -> float:
    """How far Kite wants a GTT trigger from the last price: 0.25%, at least 9 paise under Rs 50."""
    return 0.09 if last < 50 else last * 0.0025


class ServerUnavailable(Exception):
    """The TraderTape server could not be reached (after retries)."""


class ServerRefused(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


class ServerClient:
    """The Agent API over HTTP with the agent key; retries connection errors and 5xx with backoff."""

    def __init__(self, base: str, key: str, retries: int = 5, timeout: float = 10.0) -> None:
        self.base = base.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {key}"
        self.retries = retries
        self.timeout = timeout

    def call(self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None) -> Any:
        delay = 0.2
        for attempt in range(self.retries + 1):
            try:
                r = self.session.request(method, self.base + path, json=body, params=params, timeout=self.timeout)
            except requests.RequestException as exc:
                problem = f"{type(exc).__name__}"
            else:
                if r.status_code == 204:
                    return None
                if r.status_code < 400:
                    return r.json()
                if r.status_code < 500 and r.status_code != 429:
                    try:
                        detail = r.json().get("detail", r.text)
                    except ValueError:
                        detail = r.text
                    raise ServerRefused(r.status_code, str(detail))
                problem = f"HTTP {r.status_code}"
            if attempt < self.retries:
                log.warning("server %s %s failed (%s); retrying in %.1fs", method, path, problem, delay)
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
        raise ServerUnavailable(f"{method} {path}: {problem}")


class Journal:
    """What the agent intended and what Kite answered, per signal (survives SIGKILL)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS intents (signal_id INTEGER PRIMARY KEY, kind TEXT NOT NULL, "
            "params TEXT NOT NULL, created_at REAL NOT NULL, ref_type TEXT, ref TEXT, "
            "placed_reported INTEGER NOT NULL DEFAULT 0, result_reported INTEGER NOT NULL DEFAULT 0)")

    def get(self, signal_id: int) -> dict[str, Any] | None:
        cur = self.db.execute("SELECT signal_id, kind, params, created_at, ref_type, ref, placed_reported, "
                              "result_reported FROM intents WHERE signal_id = ?", (signal_id,))
        row = cur.fetchone()
        if row is None:
            return None
        keys = ("signal_id", "kind", "params", "created_at", "ref_type", "ref", "placed_reported", "result_reported")
        out = dict(zip(keys, row, strict=True))
        out["params"] = json.loads(out["params"])
        return out

    def intend(self, signal_id: int, kind: str, params: dict[str, Any]) -> None:
        self.db.execute("INSERT OR REPLACE INTO intents (signal_id, kind, params, created_at) VALUES (?, ?, ?, ?)",
                        (signal_id, kind, json.dumps(params), time.time()))

    def set_ref(self, signal_id: int, ref_type: str, ref: str) -> None:
        self.db.execute("UPDATE intents SET ref_type = ?, ref = ? WHERE signal_id = ?", (ref_type, ref, signal_id))

    def mark(self, signal_id: int, column: str) -> None:
        assert column in ("placed_reported", "result_reported")
        self.db.execute(f"UPDATE intents SET {column} = 1 WHERE signal_id = ?", (signal_id,))

    def unreported(self) -> list[dict[str, Any]]:
        ids = [r[0] for r in self.db.execute(
            "SELECT signal_id FROM intents WHERE ref IS NOT NULL AND placed_reported = 0 ORDER BY signal_id")]
        return [j for i in ids if (j := self.get(i)) is not None]

    def refs(self, ref_type: str) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT ref FROM intents WHERE ref_type = ? AND ref IS NOT NULL",
                                              (ref_type,))}


class RateLimiter:
    """At most `rate` calls per second (a sliding one-second window)."""

    def __init__(self, rate: int, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.rate = rate
        self.clock = clock
        self.sleep = sleep
        self.stamps: list[float] = []

    def acquire(self) -> None:
        while True:
            now = self.clock()
            self.stamps = [t for t in self.stamps if now - t < 1.0]
            if len(self.stamps) < self.rate:
                self.stamps.append(now)
                return
            self.sleep(1.0 - (now - self.stamps[0]) + 0.001)


def _crash_point(name: str) -> None:
    """Fault injection for the crash tests: TRADERTAPE_AGENT_CRASH=<point>:<n> SIGKILLs the agent the n-th
    time it reaches <point> (before_place, after_place, after_journal, after_report)."""
    spec = os.environ.get("TRADERTAPE_AGENT_CRASH", "")
    if not spec.startswith(name + ":"):
        return
    counter = _CRASH_COUNTS[name] = _CRASH_COUNTS.get(name, 0) + 1
    if counter == int(spec.split(":", 1)[1]):
        log.warning("fault injection: SIGKILL at %s", name)
        os.kill(os.getpid(), signal.SIGKILL)


_CRASH_COUNTS: dict[str, int] = {}


@dataclass
class AgentConfig:
    server: str
    key: str
    paper: bool = False
    kite_root: str | None = None
    api_secret: str | None = None  # optional: exchange tokens with the local secret instead of the server's checksum
    state_dir: Path = Path(".tradertape-agent")
    poll_seconds: float = 2.0
    sync_every: float = 60.0
    orders_per_second: int = 8
    market_protection: float = -1.0  # sent with every MARKET order: 0 < percent <= 100, or -1 (Kite decides)
    algo_id: str | None = None  # sent with every regular order when set (SEBI retail-algo registration)


@dataclass
class GttMove:
    """A protective GTT that differs from its position's stop and target: its legs now and wanted
    ([trigger, side, quantity, price] each)."""

    sig: dict[str, Any]
    gtt_id: str
    exchange: str
    symbol: str
    have: list[list[Any]]
    legs: list[list[Any]]

    @property
    def key(self) -> str:
        return f"{self.exchange}:{self.symbol}"


class Agent:
    def __init__(self, config: AgentConfig, broker: Broker | None = None) -> None:
        self.config = config
        self.server = ServerClient(config.server, config.key)
        tag = "paper" if config.paper else "live"
        digest = hashlib.sha256(config.key.encode()).hexdigest()[:12]
        self.journal = Journal(config.state_dir / f"agent-{tag}-{digest}.db")
        self.broker: Broker | None = broker or (PaperBroker() if config.paper else None)
        self.limiter = RateLimiter(config.orders_per_second)
        self._lists: dict[str, list[dict[str, Any]]] = {}  # Kite's GTT and order lists, this step
        self.last_sync = 0.0
        self.backoff = 0.0
        self.stats = {"placed": 0, "reported": 0, "fills": 0, "failures": 0, "unresolved": 0}
        self._retry_at: dict[str, float] = {}  # order id -> when to look for it again (not in today's book)
        self._unresolved: dict[str, dict[str, Any]] = {}  # order id -> the unresolved fill (logged once)
        self._working = False  # orders were working at Kite this step
        self._pushed: str | None = None  # digest of the broker state last pushed to the server

    # ------------------------------------------------------------------ the loop

    def run(self, once: bool = False) -> int:
        log.info("agent started (%s) against %s", "paper" if self.config.paper else "live", self.config.server)
        while True:
            try:
                self.step()
                self.backoff = 0.0
            except ServerUnavailable as exc:
                self.backoff = min(max(self.backoff * 2, 1.0), 60.0)
                log.warning("server unavailable (%s); next try in %.0fs", exc, self.backoff)
            except ServerRefused as exc:
                if exc.status == 401:
                    log.error("the server refused the agent key (%s); generate a new key and restart", exc.detail)
                    return 2
                log.error("server refused a request: %s", exc)
            except BrokerRateLimited:
                self.backoff = min(max(self.backoff * 2, 1.0), 60.0)
                log.warning("Kite rate limit; backing off %.0fs", self.backoff)
            if once:
                return 0
            time.sleep(self.config.poll_seconds + self.backoff)

    def _kite_list(self, name: str) -> list[dict[str, Any]]:
        """Kite's GTTs ("gtts") or today's orders ("orders"), read at most once per step until the agent
        changes something there: checking many signals costs two calls, not two per signal (Kite allows
        about ten requests a second). Every read waits its turn at the rate limiter too."""
        assert self.broker is not None
        if name not in self._lists:
            self.limiter.acquire()
            self._lists[name] = self.broker.gtts() if name == "gtts" else self.broker.orders()
        return self._lists[name]

    def _changed_at_kite(self) -> None:
        self._lists.clear()

    def step(self) -> None:
        self._changed_at_kite()  # what Kite did since the last step: read afresh
        self.exchange_token()
        if self.broker is None and not self.connect():
            return
        try:
            self.report_unreported()
            for sig in self.server.call("GET", "/api/agent/pending-signals") or []:
                self.place(sig)
            due = time.monotonic() - self.last_sync >= self.config.sync_every
            self.check_fills()
            self.push_broker_orders(due)
            if due:
                self.sync_snapshots()
        except BrokerAuthError as exc:
            log.error("Kite rejected the access token (%s); waiting for a new Kite login", exc.message)
            self.server.call("POST", "/api/agent/session-invalid", {"reason": exc.message})
            self.broker = None

    # ------------------------------------------------------------------ Kite login

    def exchange_token(self) -> None:
        pending = self.server.call("GET", "/api/agent/pending-token")
        if not pending:
            return
        if self.config.paper:
            log.info("paper mode: a Kite request token is pending; run the agent without --paper to exchange it")
            return
        kite = KiteBroker(pending["api_key"], None, root=self.config.kite_root)
        try:
            if self.config.api_secret:
                data = kite.exchange_request_token(pending["request_token"], api_secret=self.config.api_secret)
            else:
                data = kite.exchange_request_token(pending["request_token"], checksum=pending["checksum"])
        except BrokerError as exc:
            log.error("Kite refused the request token (%s); log in to Kite again", exc.message)
            return
        status = self.server.call("POST", "/api/agent/access-token",
                                  {"access_token": data["access_token"], "user_id": data.get("user_id")})
        log.info("Kite session connected for %s (expires %s)", data.get("user_id"), status.get("expires_at"))
        self.broker = KiteBroker(pending["api_key"], data["access_token"], root=self.config.kite_root)

    def connect(self) -> bool:
        session = self.server.call("GET", "/api/agent/session")
        if not session:
            log.info("no Kite session yet: log in to Kite from TraderTape (GET /api/auth/kite/login-url)")
            return False
        self.broker = KiteBroker(session["api_key"], session["access_token"], root=self.config.kite_root)
        return True

    # ------------------------------------------------------------------ placing

    def _order_params(self, sig: dict[str, Any]) -> dict[str, Any]:
        symbol, exchange = sig["symbol"], sig.get("exchange") or "NSE"
        ref = float(sig.get("reference_price") or 0)
        if sig["kind"] == "entry":
            qty = int(sig["quantity"])
            if sig.get("limit_price"):
                price = on_grid(float(sig["limit_price"]), ref, "down")  # never above the model's limit
                return {"type": "gtt", "exchange": exchange, "symbol": symbol, "last_price": ref or price,
                        "legs": [[price, "BUY", qty, price]]}
            return {"type": "order", "exchange": exchange, "symbol": symbol, "side": "BUY", "quantity": qty,
                    "price": ref}
        pos = sig.get("position") or {}
        stop, target = pos.get("stop_loss"), pos.get("target")
        if sig.get("reason") == PROTECTIVE_REASON and (stop or target):
            qty = int(pos.get("quantity") or sig["quantity"])  # the OCO covers every share held
            legs: list[list[Any]] = []
            last = ref or float(pos.get("avg_price") or stop or target or 0)
            band = max(last, float(target or 0))  # one grid for both legs: the coarsest band they touch
            if stop:  # Kite refuses prices off the tick size: triggers and limits on the grid
                trigger = on_grid(float(stop), band)
                legs.append([trigger, "SELL", qty, on_grid(trigger * (1 - STOP_LIMIT_SLACK), band, "down")])
            if target:
                trigger = on_grid(float(target), band)
                legs.append([trigger, "SELL", qty, trigger])
            return {"type": "gtt", "exchange": exchange, "symbol": symbol, "last_price": last, "legs": legs}
        qty = int(sig.get("quantity") or pos.get("quantity") or 0)  # a partial close sells only its shares
        return {"type": "order", "exchange": exchange, "symbol": symbol, "side": "SELL", "quantity": qty,
                "price": ref}

    def _find_existing(self, signal_id: int, params: dict[str, Any]) -> tuple[str, str] | None:
        """After a crash: did Kite accept this intent already?"""
        assert self.broker is not None
        if params["type"] == "order":
            for o in self._kite_list("orders"):
                if o.get("tag") == f"tt{signal_id}":
                    return "order", str(o["order_id"])
            return None
        known = self.journal.refs("gtt")
        for g in self._kite_list("gtts"):
            cond, orders = g.get("condition") or {}, g.get("orders") or []
            if str(g.get("id")) in known or cond.get("tradingsymbol") != params["symbol"]:
                continue
            legs = [[float(t), o.get("transaction_type"), int(o.get("quantity") or 0)]
                    for t, o in zip(cond.get("trigger_values") or [], orders, strict=False)]
            if legs == [[float(leg[0]), leg[1], int(leg[2])] for leg in params["legs"]]:
                return "gtt", str(g["id"])
        return None

    def _submit(self, signal_id: int, params: dict[str, Any]) -> tuple[str, str]:
        assert self.broker is not None
        delay = 0.5
        while True:
            self.limiter.acquire()
            self._changed_at_kite()
            try:
                if params["type"] == "gtt":
                    legs = [GttLeg(float(t), side, int(q), float(p)) for t, side, q, p in params["legs"]]
                    return "gtt", self.broker.place_gtt(params["exchange"], params["symbol"],
                                                        float(params["last_price"]), legs)
                if isinstance(self.broker, PaperBroker) and params.get("price"):
                    self.broker.set_last_price(params["symbol"], float(params["price"]))
                return "order", self.broker.place_order(
                    params["exchange"], params["symbol"], params["side"], int(params["quantity"]), "MARKET", None,
                    f"tt{signal_id}", market_protection=self.config.market_protection, algo_id=self.config.algo_id)
            except BrokerRateLimited:
                log.warning("Kite rate limit while placing signal %s; retrying in %.1fs", signal_id, delay)
                time.sleep(delay)  # a 429 placed nothing: retrying is safe
                delay = min(delay * 2, 30.0)

    def place(self, sig: dict[str, Any]) -> None:
        assert self.broker is not None
        sid = int(sig["id"])
        replaces = sig.get("replaces") or []
        entry = self.journal.get(sid)
        if entry is not None and entry["params"].get("type") == "cancelled":
            if sig.get("kind") == "entry":  # withdrawn before, its report not taken: report it again
                self._withdrawn(sid, str(sig.get("withdraw") or "withdrawn earlier"))
            return  # decided never to place it
        if entry is not None and entry["ref"] is None:
            found = self._find_existing(sid, entry["params"])
            if found is not None:
                log.info("signal %s: found %s %s at Kite from before a restart", sid, *found)
                self.journal.set_ref(sid, *found)
                entry = self.journal.get(sid)
        if entry is not None and entry["ref"] is not None:
            self._retire_replaced(sid, replaces)  # accepted before a crash: the old protection goes now
            if not entry["placed_reported"]:
                self.report_placed(entry)
            return
        if sig.get("kind") == "entry" and sig.get("withdraw"):  # not at Kite (never sent, or sending failed)
            self.journal.intend(sid, "entry", {"type": "cancelled"})  # make sure it never will be
            self._withdrawn(sid, str(sig["withdraw"]))
            return
        for replaced in replaces:
            outcome = self._check_replaced(replaced)
            if outcome not in ("cancelled", "active"):
                log.info("signal %s: not placed: the protective order of signal %s is %s", sid,
                         replaced["signal_id"], outcome)
                return
        params = self._order_params(sig)
        self.journal.intend(sid, sig["kind"], params)
        _crash_point("before_place")
        try:
            ref_type, ref = self._submit(sid, params)
        except BrokerInputError as exc:
            # refused: nothing changed at Kite, so a protective GTT this order would replace still stands
            log.error("signal %s: Kite refused the order: %s", sid, exc.message)
            self._report({"signal_id": sid, "status": "failed", "error": f"Kite: {exc.message}"})
            self.journal.mark(sid, "result_reported")
            return
        except BrokerAuthError:
            raise
        except BrokerError as exc:
            log.warning("signal %s: placing failed (%s); Kite will be checked before trying again", sid, exc.message)
            return
        _crash_point("after_place")
        self.journal.set_ref(sid, ref_type, ref)
        _crash_point("after_journal")
        self.stats["placed"] += 1
        legs = params.get("legs") or [[params.get("price"), params.get("side"), params.get("quantity")]]
        log.info("signal %s: placed %s %s (%s %s %s, %s)", sid, ref_type.upper(), ref, params["symbol"],
                 "/".join(str(leg[1]) for leg in legs), legs[0][2], ", ".join(str(leg[0]) for leg in legs))
        self._retire_replaced(sid, replaces)
        entry = self.journal.get(sid)
        assert entry is not None
        self.report_placed(entry)
        _crash_point("after_report")

    def _withdrawn(self, sid: int, reason: str) -> None:
        """Report an entry the agent will never place (journalled `cancelled`) as expired."""
        self._report({"signal_id": sid, "status": "expired", "error": f"{reason}: never sent to Kite",
                      "idempotency_key": f"withdraw-{sid}"})
        self.journal.mark(sid, "result_reported")
        log.info("signal %s: not placed (%s)", sid, reason)

    def _replaced_ids(self, replaced: dict[str, Any]) -> tuple[str | None, str | None, dict[str, Any] | None]:
        """The Kite ids of a replaced exit (from the server, else from the journal: placed just before a
        crash?) and its journal entry."""
        rid = int(replaced["signal_id"])
        gtt_id, order_id = replaced.get("gtt_id"), replaced.get("order_id")
        entry = self.journal.get(rid)
        if not gtt_id and not order_id and entry is not None:
            if entry["ref"] is None and entry["params"].get("type") in ("gtt", "order"):
                found = self._find_existing(rid, entry["params"])
                if found is not None:
                    self.journal.set_ref(rid, *found)
                    entry = self.journal.get(rid)
            if entry is not None and entry["ref"] is not None:
                gtt_id, order_id = (entry["ref"], None) if entry["ref_type"] == "gtt" else (None, entry["ref"])
        return (str(gtt_id) if gtt_id else None), (str(order_id) if order_id else None), entry

    def _check_replaced(self, replaced: dict[str, Any]) -> str:
        """Before placing the order that replaces a working exit (a protective OCO GTT): "active" (it still
        protects the shares; it is deleted only once the new order is accepted), "cancelled" (it never
        reached Kite, or is gone there: reported), "filled" (it triggered and sold first: its fill is
        reported and the new order must not be placed) or "waiting" (its order is in progress at Kite)."""
        rid = int(replaced["signal_id"])
        gtt_id, order_id, entry = self._replaced_ids(replaced)
        if not gtt_id and not order_id:
            if entry is None:  # never placed: make sure it never will be
                self.journal.intend(rid, "exit", {"type": "cancelled"})
            self._report({"signal_id": rid, "status": "failed", "error": "never placed: replaced by a new exit order",
                          "idempotency_key": f"cancel-{rid}"})
            self.journal.mark(rid, "result_reported")
            return "cancelled"
        gtt = {str(g.get("id")): g for g in self._kite_list("gtts")}.get(gtt_id) if gtt_id else None
        if gtt_id and gtt is not None and gtt.get("status") == "active":
            return "active"
        return self._settle_replaced(rid, gtt_id, order_id, deleted=False)

    def _settle_replaced(self, rid: int, gtt_id: str | None, order_id: str | None, deleted: bool) -> str:
        """Report what became of a replaced exit whose GTT is no longer active (or was just deleted)."""
        gtts = {str(g.get("id")): g for g in self._kite_list("gtts")}
        orders = {str(o.get("order_id")): o for o in self._kite_list("orders")}
        ids = {"gtt_id": gtt_id} if gtt_id else {"order_id": str(order_id)}
        gtt = gtts.get(str(gtt_id)) if gtt_id else None
        triggered = gtt is not None and (gtt.get("status") == "triggered" or any(
            ((leg.get("result") or {}).get("order_result") or {}).get("order_id") for leg in gtt.get("orders") or []))
        if order_id or triggered:
            result = self._outcome({**ids, "id": rid}, gtts, orders)
            if result is None:
                return "waiting"
            if result["status"] == "executed":
                self._report({"signal_id": rid, **result, "idempotency_key": f"result-{rid}"})
                self.stats["fills"] += 1
                return "filled"
            # its triggered order was refused (e.g. the shares were sold by the new order): nothing sold
        self._report({"signal_id": rid, "status": "failed", **ids,
                      "error": f"GTT {gtt_id} deleted: replaced by a new exit order" if deleted or not triggered
                      else f"GTT {gtt_id} triggered but its order did not fill",
                      "idempotency_key": f"cancel-{rid}"})
        if self.journal.get(rid) is not None:
            self.journal.mark(rid, "result_reported")
        return "cancelled"

    def _retire_replaced(self, sid: int, replaces: list[dict[str, Any]]) -> None:
        """The order replacing these exits is accepted at Kite: delete their GTTs and report them."""
        assert self.broker is not None
        for replaced in replaces:
            rid = int(replaced["signal_id"])
            gtt_id, order_id, _ = self._replaced_ids(replaced)
            if not gtt_id and not order_id:
                continue
            deleted = False
            if gtt_id:
                self.limiter.acquire()
                self._changed_at_kite()
                try:
                    self.broker.delete_gtt(gtt_id)
                    deleted = True
                    log.info("signal %s: deleted GTT %s (replaced by signal %s, accepted at Kite)", rid, gtt_id, sid)
                except BrokerInputError as exc:  # no longer active: triggered, expired or deleted already
                    log.info("signal %s: GTT %s not deleted (%s); checking it", rid, gtt_id, exc.message)
            self._settle_replaced(rid, gtt_id, order_id, deleted)

    def _report(self, body: dict[str, Any]) -> dict[str, Any] | None:
        try:
            out: dict[str, Any] = self.server.call("POST", "/api/agent/signal-result", body)
        except ServerRefused as exc:
            if exc.status in (404, 409, 400):
                log.warning("signal %s: the server did not take %s: %s", body["signal_id"], body["status"],
                            exc.detail)
                return None
            raise
        self.stats["reported"] += 1
        return out

    def report_placed(self, entry: dict[str, Any]) -> None:
        key = "gtt_id" if entry["ref_type"] == "gtt" else "order_id"
        self._report({"signal_id": entry["signal_id"], "status": "placed", key: entry["ref"],
                      "idempotency_key": f"placed-{entry['signal_id']}-{entry['ref']}"})
        self.journal.mark(entry["signal_id"], "placed_reported")

    def report_unreported(self) -> None:
        for entry in self.journal.unreported():
            self.report_placed(entry)

    # ------------------------------------------------------------------ fills

    def check_fills(self) -> None:
        assert self.broker is not None
        working = self.server.call("GET", "/api/agent/pending-signals", params={"state": "working"}) or []
        self._working = bool(working)
        ids = {int(sig["id"]) for sig in working}  # a fill reported by hand is no longer unresolved
        self._unresolved = {oid: u for oid, u in self._unresolved.items() if u["signal_id"] in ids}
        if not working:
            return
        gtts = {str(g.get("id")): g for g in self._kite_list("gtts")}
        orders = {str(o.get("order_id")): o for o in self._kite_list("orders")}
        protective: list[tuple[dict[str, Any], dict[str, Any]]] = []  # working OCOs: kept in step below
        for sig in working:
            sid = int(sig["id"])
            result = self._outcome(sig, gtts, orders)
            if sig.get("withdraw") and sig.get("gtt_id") and (result is None or result["status"] == "failed"):
                result = self._withdraw(sig, gtts.get(str(sig["gtt_id"])), result)
            if result is None:
                gtt = gtts.get(str(sig.get("gtt_id")))
                if gtt is not None and gtt.get("status") == "active" and not sig.get("replaced") \
                        and sig.get("reason") == PROTECTIVE_REASON:
                    protective.append((sig, gtt))
                continue
            out = self._report({"signal_id": sid, **result, "idempotency_key": f"result-{sid}"})
            if out is not None and out.get("recorded"):
                if result["status"] == "executed":
                    self.stats["fills"] += 1
                    log.info("signal %s: filled %s x %s @ %s", sid, sig["symbol"], result.get("filled_quantity"),
                             result.get("fill_price"))
                elif result["status"] == "expired":
                    log.info("signal %s: expired (%s)", sid, result.get("error"))
                else:
                    self.stats["failures"] += 1
                    log.info("signal %s: failed (%s)", sid, result.get("error"))
            if self.journal.get(sid) is not None:
                self.journal.mark(sid, "result_reported")
        self._keep_in_step(protective)

    def _withdraw(self, sig: dict[str, Any], gtt: dict[str, Any] | None,
                  result: dict[str, Any] | None) -> dict[str, Any] | None:
        """A working entry the server wants off the broker (`withdraw`: validity passed, kill switch,
        pause): delete its GTT at Kite first; only a confirmed deletion (or a GTT Kite no longer holds
        active) becomes an `expired` report. A GTT that triggered meanwhile keeps its fill (`result`)."""
        assert self.broker is not None
        sid, gtt_id, reason = int(sig["id"]), str(sig["gtt_id"]), str(sig["withdraw"])
        status = str((gtt or {}).get("status") or "")
        if status == "active":
            self.limiter.acquire()
            self._changed_at_kite()
            try:
                self.broker.delete_gtt(gtt_id)
            except (BrokerAuthError, BrokerRateLimited):
                raise
            except BrokerError as exc:  # not confirmed (triggered meanwhile, Kite down): nothing is recorded
                log.info("signal %s: GTT %s not deleted (%s); checking it next cycle", sid, gtt_id, exc.message)
                return None
            log.info("signal %s: deleted GTT %s at Kite (%s)", sid, gtt_id, reason)
            return {"status": "expired", "gtt_id": gtt_id, "error": f"{reason}; GTT {gtt_id} deleted at Kite"}
        if gtt is None or status in ("deleted", "cancelled", "expired", "disabled"):
            return {"status": "expired", "gtt_id": gtt_id, "error": f"{reason}; GTT {gtt_id} is {status or 'gone'} "
                    "at Kite"}
        return result

    def _keep_in_step(self, protective: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
        """Keep working protective GTTs (signal, its active GTT) equal to their positions' stop and target
        (a trailing stop moves up, a partial sale changes the quantity): modify each at Kite where they
        differ, after one read of the last prices of them all (Kite allows about one quote request a
        second). Kite refuses a trigger within 0.25% of the last price (9 paise under Rs 50) and an OCO
        whose stop is not under and target not over it; such a change waits for the next cycle (the GTT
        keeps its old levels)."""
        assert self.broker is not None
        moves = [move for sig, gtt in protective if (move := self._gtt_drift(sig, gtt)) is not None]
        if not moves:
            return
        keys = sorted({move.key for move in moves})
        self.limiter.acquire()
        try:
            lasts = self.broker.ltp(keys)
        except (BrokerAuthError, BrokerRateLimited):
            raise
        except BrokerError as exc:
            log.warning("no last price for %s (%s); their GTTs keep their levels for now", ", ".join(keys),
                        exc.message)
            return
        for move in moves:
            self._move_gtt(move, lasts.get(move.key))

    def _gtt_drift(self, sig: dict[str, Any], gtt: dict[str, Any]) -> GttMove | None:
        """How a protective GTT differs from its position's stop and target (None: it does not)."""
        want = self._order_params(sig)
        if want["type"] != "gtt":
            return None
        cond, legs_now = gtt.get("condition") or {}, gtt.get("orders") or []
        have = [[float(t), o.get("transaction_type"), int(o.get("quantity") or 0), float(o.get("price") or 0)]
                for t, o in zip(cond.get("trigger_values") or [], legs_now, strict=False)]
        legs = [[float(t), side, int(q), float(p)] for t, side, q, p in want["legs"]]
        if len(have) == len(legs) and all(
                a[1:3] == b[1:3] and abs(a[0] - b[0]) < 0.005 and abs(a[3] - b[3]) < 0.005
                for a, b in zip(have, legs, strict=True)):
            return None
        return GttMove(sig, str(gtt.get("id")), want["exchange"], want["symbol"], have, legs)

    def _move_gtt(self, move: GttMove, last: float | None) -> None:
        assert self.broker is not None
        sid, gtt_id, legs, have = int(move.sig["id"]), move.gtt_id, move.legs, move.have
        if last is None:
            log.warning("signal %s: no last price for %s; GTT %s keeps its levels for now", sid, move.key, gtt_id)
            return
        gap = trigger_gap(last)
        pos = move.sig.get("position") or {}
        stop = legs[0][0] if pos.get("stop_loss") else None  # the legs: [stop, target], either may be absent
        target = legs[-1][0] if pos.get("target") else None
        if (stop is not None and stop > last - gap) or (target is not None and target < last + gap):
            log.warning("signal %s: GTT %s not moved to %s: the last price %s is too near (Kite wants triggers "
                        "%.2f away); it keeps %s", sid, gtt_id, [leg[0] for leg in legs], last, gap,
                        [leg[0] for leg in have])
            return
        self.limiter.acquire()
        self._changed_at_kite()
        try:
            self.broker.modify_gtt(gtt_id, move.exchange, move.symbol, last,
                                   [GttLeg(t, side, q, p) for t, side, q, p in legs])
        except (BrokerAuthError, BrokerRateLimited):
            raise
        except BrokerError as exc:
            log.warning("signal %s: Kite did not modify GTT %s: %s", sid, gtt_id, exc.message)
            return
        log.info("signal %s: GTT %s moved to triggers %s (was %s), %s shares", sid, gtt_id,
                 [leg[0] for leg in legs], [leg[0] for leg in have], legs[0][2])

    @staticmethod
    def _order_outcome(order: dict[str, Any], ids: dict[str, Any]) -> dict[str, Any] | None:
        status = str(order.get("status") or "")
        if status == "COMPLETE":
            qty = int(order.get("filled_quantity") or order.get("quantity") or 0)
            return {"status": "executed", "fill_price": float(order.get("average_price") or order.get("price") or 0),
                    "filled_quantity": qty, **ids}
        if status in ("REJECTED", "CANCELLED") and int(order.get("filled_quantity") or 0) > 0:
            # partly filled before it was cancelled: the filled part is a (partial) fill
            return {"status": "executed", "fill_price": float(order.get("average_price") or order.get("price") or 0),
                    "filled_quantity": int(order["filled_quantity"]), **ids}
        if status in ("REJECTED", "CANCELLED"):
            return {"status": "failed", "error": f"Kite order {status}: {order.get('status_message') or ''}".strip(),
                    **ids}
        return None

    def _outcome(self, sig: dict[str, Any], gtts: dict[str, Any], orders: dict[str, Any]) -> dict[str, Any] | None:
        """What became of a working signal at Kite: an executed/failed result, or None (still working, or
        not known yet). Kite's order book lists only the day's orders: an order not in it (a GTT that
        triggered while the agent was offline, a close read the next day) is looked up in its history and
        trades; one that cannot be found is reported as unresolved, never ignored."""
        if sig.get("order_id"):
            oid = str(sig["order_id"])
            order = orders.get(oid) or self._earlier_order(int(sig["id"]), oid, None, None)
            return None if order is None else self._order_outcome(order, {"order_id": oid})
        gtt_id = str(sig.get("gtt_id"))
        gtt = gtts.get(gtt_id)
        if gtt is None:
            return None
        status = str(gtt.get("status") or "")
        for leg in gtt.get("orders") or []:
            result = leg.get("result") or {}
            order_result = result.get("order_result") or {}
            if order_result.get("status") == "failed":
                return {"status": "failed", "gtt_id": gtt_id,
                        "error": f"GTT order rejected: {order_result.get('rejection_reason') or status}"}
            oid = str(order_result.get("order_id") or "")
            if oid:
                order = orders.get(oid) or self._earlier_order(int(sig["id"]), oid, result, gtt_id)
                return None if order is None else self._order_outcome(order, {"gtt_id": gtt_id})
        if status in FAILED_GTT:
            return {"status": "failed", "error": f"GTT {status}", "gtt_id": gtt_id}
        return None

    def _earlier_order(self, sid: int, oid: str, leg_result: dict[str, Any] | None,
                       gtt_id: str | None) -> dict[str, Any] | None:
        """An order that is not in today's order book: its last state from `GET /orders/{id}`, else its
        fills from `GET /orders/{id}/trades`. None while neither tells: then logged once as unresolved,
        pushed to the server with the GTTs (`push_broker_orders`) until it resolves, and looked up again
        at most once a minute."""
        assert self.broker is not None
        if self._retry_at.get(oid, 0.0) > time.monotonic():
            return None
        final: dict[str, Any] | None = None
        try:
            self.limiter.acquire()
            history = self.broker.order_history(oid)
            last = history[-1] if history else None
            if last is not None and str(last.get("status")) in ("COMPLETE", "REJECTED", "CANCELLED"):
                final = last
            else:
                self.limiter.acquire()
                trades = self.broker.order_trades(oid)
                qty = sum(int(t.get("quantity") or 0) for t in trades)
                if qty > 0:
                    value = sum(int(t.get("quantity") or 0) * float(t.get("average_price") or 0) for t in trades)
                    final = {"order_id": oid, "status": "COMPLETE", "filled_quantity": qty, "quantity": qty,
                             "average_price": round(value / qty, 2)}
        except (BrokerAuthError, BrokerRateLimited):
            raise
        except BrokerError as exc:
            log.debug("order %s: history/trades not available (%s)", oid, exc.message)
        if final is not None:
            log.info("signal %s: order %s is not in today's order book; read from Kite's order %s", sid, oid,
                     "history" if "exchange_order_id" in final else "trades")
            self._retry_at.pop(oid, None)
            self._unresolved.pop(oid, None)
            self.stats["unresolved"] = len(self._unresolved)
            return final
        self._retry_at[oid] = time.monotonic() + 60.0
        if oid not in self._unresolved:
            detail = ""
            if leg_result is not None:
                detail = (f"GTT leg triggered at {leg_result.get('triggered_at')} on {leg_result.get('timestamp')}:"
                          f" {leg_result.get('transaction_type')} {leg_result.get('quantity')} LIMIT "
                          f"{leg_result.get('price')}")
            self._unresolved[oid] = {"signal_id": sid, "order_id": oid, "gtt_id": gtt_id, "detail": detail,
                                     "since": datetime.now(IST).isoformat(timespec="seconds")}
            log.error("signal %s: UNRESOLVED: Kite order %s%s is neither in today's order book nor in its order "
                      "history or trades; check Kite (Console tradebook) and report the fill with POST "
                      "/api/agent/signal-result. The agent keeps looking once a minute", sid, oid,
                      f" ({detail})" if detail else "")
            self.stats["unresolved"] = len(self._unresolved)
        return None

    # ------------------------------------------------------------------ snapshots

    def push_broker_orders(self, due: bool) -> None:
        """Push Kite's GTTs (the fields reconciliation reads) and the unresolved fills to the server when
        they changed since the last push (while orders are working) or every `sync_every` seconds: the
        reconciliation then shows a protective GTT whose triggers differ from the model's stop and target,
        one that is missing, and each unresolved fill."""
        if not (due or self._working or self._unresolved):
            return
        gtts = [{"id": g.get("id"), "status": g.get("status"),
                 "condition": {k: (g.get("condition") or {}).get(k)
                               for k in ("exchange", "tradingsymbol", "last_price", "trigger_values")},
                 "orders": [{k: o.get(k) for k in ("transaction_type", "quantity", "price")}
                            for o in g.get("orders") or []]}
                for g in self._kite_list("gtts")]
        body = {"gtts": gtts, "unresolved": sorted(self._unresolved.values(), key=lambda u: u["order_id"])}
        digest = hashlib.sha256(json.dumps([gtts, [{k: v for k, v in u.items() if k != "since"}
                                                   for u in body["unresolved"]]], sort_keys=True,
                                           default=str).encode()).hexdigest()
        if digest == self._pushed and not due:
            return
        try:
            self.server.call("POST", "/api/agent/sync-gtts", body)
        except ServerRefused as exc:  # never in the way of fills and snapshots; tried again when it changes
            log.warning("the server did not take the GTT state: %s", exc)
        self._pushed = digest

    def sync_snapshots(self) -> None:
        assert self.broker is not None
        self.limiter.acquire()
        holdings = self.broker.holdings()
        self.limiter.acquire()
        positions = self.broker.positions()
        self.server.call("POST", "/api/agent/sync-holdings", holdings)
        self.server.call("POST", "/api/agent/sync-positions", positions)
        self.last_sync = time.monotonic()
        log.info("pushed snapshots: %d holdings, %d net positions", len(holdings), len(positions.get("net", [])))
