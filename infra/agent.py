"""`tradertape agent`: runs on the user's machine, between the TraderTape server and Kite.

Each cycle it
  1. exchanges a pending Kite request token (the server hands out the token, the api_key and the
     checksum) and pushes the access token;
  2. re-reports what its journal holds but the server has not acknowledged;
  3. places the pending signals of live portfolios: entries as single-leg BUY GTTs at the limit price
     (entries without a limit as regular MARKET orders), protective exits as two-leg OCO SELL GTTs
     (stop, target), other exits (exit rules, manual closes) as regular MARKET SELL orders for the
     signal's quantity. An exit that `replaces` a working protective OCO (a manual close) is placed only
     after that GTT is deleted at Kite and the deletion reported; if the GTT triggered first, its fill
     is reported instead and the close is never sent (the server then fails it): never two sales;
  4. checks the working signals' GTTs and orders and reports fills and failures;
  5. pushes holdings and positions snapshots every `sync_every` seconds.

Never twice: before calling Kite it records its intent in a local SQLite journal (synchronous=FULL);
after a crash, an intent without a broker id is looked up at Kite (GTTs by instrument, side, quantity
and triggers; orders by their tag `tt<signal id>`) before anything is placed again. A network error
while placing leaves the intent open, so the next cycle checks Kite the same way. The server treats
repeated results as no-ops, so a result reported twice records once.
Kite limits: at most `orders_per_second` (8) placements per second; a 429 backs off exponentially.
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
from domain.portfolio import PROTECTIVE_REASON
from domain.ticks import to_tick
from infra.brokers import PaperBroker
from infra.kite import KiteBroker

log = logging.getLogger("tradertape.agent")
FAILED_GTT = ("cancelled", "deleted", "expired", "rejected", "disabled")
STOP_LIMIT_SLACK = 0.005  # a stop leg's limit price sits 0.5% under its trigger so the sell fills


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
        self.stats = {"placed": 0, "reported": 0, "fills": 0, "failures": 0}

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
            self.check_fills()
            if time.monotonic() - self.last_sync >= self.config.sync_every:
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
        day = str(sig.get("day") or "")
        symbol, exchange = sig["symbol"], sig.get("exchange") or "NSE"
        ref = float(sig.get("reference_price") or 0)
        if sig["kind"] == "entry":
            qty = int(sig["quantity"])
            if sig.get("limit_price"):
                price = float(sig["limit_price"])
                return {"type": "gtt", "exchange": exchange, "symbol": symbol, "last_price": ref or price,
                        "legs": [[price, "BUY", qty, price]]}
            return {"type": "order", "exchange": exchange, "symbol": symbol, "side": "BUY", "quantity": qty,
                    "price": ref}
        pos = sig.get("position") or {}
        stop, target = pos.get("stop_loss"), pos.get("target")
        if sig.get("reason") == PROTECTIVE_REASON and (stop or target):
            qty = int(pos.get("quantity") or sig["quantity"])  # the OCO covers every share held
            legs: list[list[Any]] = []
            if stop:
                limit = to_tick(float(stop) * (1 - STOP_LIMIT_SLACK), day or "2026-01-01", "down")
                legs.append([float(stop), "SELL", qty, limit])
            if target:
                legs.append([float(target), "SELL", qty, float(target)])
            last = ref or float(pos.get("avg_price") or legs[0][0])
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
                return "order", self.broker.place_order(params["exchange"], params["symbol"], params["side"],
                                                        int(params["quantity"]), "MARKET", None, f"tt{signal_id}")
            except BrokerRateLimited:
                log.warning("Kite rate limit while placing signal %s; retrying in %.1fs", signal_id, delay)
                time.sleep(delay)  # a 429 placed nothing: retrying is safe
                delay = min(delay * 2, 30.0)

    def place(self, sig: dict[str, Any]) -> None:
        assert self.broker is not None
        sid = int(sig["id"])
        entry = self.journal.get(sid)
        if entry is not None and entry["ref"] is None:
            found = self._find_existing(sid, entry["params"])
            if found is not None:
                log.info("signal %s: found %s %s at Kite from before a restart", sid, *found)
                self.journal.set_ref(sid, *found)
                entry = self.journal.get(sid)
        if entry is not None and entry["ref"] is not None:
            if not entry["placed_reported"]:
                self.report_placed(entry)
            return
        for replaced in sig.get("replaces") or []:
            outcome = self._cancel_replaced(replaced)
            if outcome != "cancelled":
                log.info("signal %s: not placed: the protective order of signal %s is %s", sid,
                         replaced["signal_id"], outcome)
                return
        params = self._order_params(sig)
        self.journal.intend(sid, sig["kind"], params)
        _crash_point("before_place")
        try:
            ref_type, ref = self._submit(sid, params)
        except BrokerInputError as exc:
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
        entry = self.journal.get(sid)
        assert entry is not None
        self.report_placed(entry)
        _crash_point("after_report")

    def _cancel_replaced(self, replaced: dict[str, Any]) -> str:
        """Cancel a working exit order a manual close replaced (a protective OCO GTT) and report it:
        "cancelled" (deleted, or never reached Kite), "filled" (it triggered first: its fill is reported
        and the close must not be placed) or "waiting" (its order is still in progress at Kite)."""
        assert self.broker is not None
        rid = int(replaced["signal_id"])
        gtt_id, order_id = replaced.get("gtt_id"), replaced.get("order_id")
        entry = self.journal.get(rid)
        if not gtt_id and not order_id and entry is not None:
            if entry["ref"] is None and entry["params"].get("type") in ("gtt", "order"):
                found = self._find_existing(rid, entry["params"])  # placed just before a crash?
                if found is not None:
                    self.journal.set_ref(rid, *found)
                    entry = self.journal.get(rid)
            if entry is not None and entry["ref"] is not None:
                gtt_id, order_id = (entry["ref"], None) if entry["ref_type"] == "gtt" else (None, entry["ref"])
        if not gtt_id and not order_id:
            if entry is None:  # never placed: make sure it never will be
                self.journal.intend(rid, "exit", {"type": "cancelled"})
            self._report({"signal_id": rid, "status": "failed", "error": "never placed: replaced by a manual close",
                          "idempotency_key": f"cancel-{rid}"})
            self.journal.mark(rid, "result_reported")
            return "cancelled"
        deleted = False
        if gtt_id:
            self.limiter.acquire()
            self._changed_at_kite()
            try:
                self.broker.delete_gtt(str(gtt_id))
                deleted = True
                log.info("signal %s: deleted GTT %s (replaced by a manual close)", rid, gtt_id)
            except BrokerInputError as exc:  # no longer active: triggered, expired or deleted already
                log.info("signal %s: GTT %s not deleted (%s); checking it", rid, gtt_id, exc.message)
        gtts = {str(g.get("id")): g for g in self._kite_list("gtts")}
        orders = {str(o.get("order_id")): o for o in self._kite_list("orders")}
        ids = {"gtt_id": str(gtt_id)} if gtt_id else {"order_id": str(order_id)}
        gtt = gtts.get(str(gtt_id)) if gtt_id else None
        triggered = gtt is not None and (gtt.get("status") == "triggered" or any(
            ((leg.get("result") or {}).get("order_result") or {}).get("order_id") for leg in gtt.get("orders") or []))
        if order_id or triggered:
            result = self._outcome({**ids, "id": rid}, gtts, orders)
            if result is None or result["status"] != "executed":
                return "waiting"
            self._report({"signal_id": rid, **result, "idempotency_key": f"result-{rid}"})
            self.stats["fills"] += 1
            return "filled"
        if deleted or gtt is None or str(gtt.get("status")) in FAILED_GTT:
            self._report({"signal_id": rid, "status": "failed", "gtt_id": str(gtt_id),
                          "error": f"GTT {gtt_id} deleted: replaced by a manual close",
                          "idempotency_key": f"cancel-{rid}"})
            return "cancelled"
        return "waiting"

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
        if not working:
            return
        gtts = {str(g.get("id")): g for g in self._kite_list("gtts")}
        orders = {str(o.get("order_id")): o for o in self._kite_list("orders")}
        for sig in working:
            sid = int(sig["id"])
            result = self._outcome(sig, gtts, orders)
            if result is None:
                continue
            out = self._report({"signal_id": sid, **result, "idempotency_key": f"result-{sid}"})
            if out is not None and out.get("recorded"):
                if result["status"] == "executed":
                    self.stats["fills"] += 1
                    log.info("signal %s: filled %s x %s @ %s", sid, sig["symbol"], result.get("filled_quantity"),
                             result.get("fill_price"))
                else:
                    self.stats["failures"] += 1
                    log.info("signal %s: failed (%s)", sid, result.get("error"))
            if self.journal.get(sid) is not None:
                self.journal.mark(sid, "result_reported")

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
        if sig.get("order_id"):
            order = orders.get(str(sig["order_id"]))
            return None if order is None else self._order_outcome(order, {"order_id": str(sig["order_id"])})
        gtt = gtts.get(str(sig.get("gtt_id")))
        if gtt is None:
            return None
        status = str(gtt.get("status") or "")
        if status in FAILED_GTT:
            return {"status": "failed", "error": f"GTT {status}", "gtt_id": str(sig["gtt_id"])}
        if status != "triggered":
            return None
        for leg in gtt.get("orders") or []:
            result = (leg.get("result") or {}).get("order_result") or {}
            if result.get("status") == "failed":
                return {"status": "failed", "error": f"GTT order rejected: {result.get('rejection_reason') or ''}",
                        "gtt_id": str(sig["gtt_id"])}
            oid = result.get("order_id")
            if oid and str(oid) in orders:
                return self._order_outcome(orders[str(oid)], {"gtt_id": str(sig["gtt_id"])})
        return None

    # ------------------------------------------------------------------ snapshots

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
