"""The broker connection and the agent: Kite credentials, the login flow, the broker session, the agent's
order results (through the same Portfolio code as paper fills) and holdings/positions snapshots."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from commands import agent_messages as am
from commands.brokers import kite_checksum
from commands.handlers.portfolios import _load
from commands.uow import UnitOfWork
from domain.aggregate import IdSource
from domain.broker import BrokerConnection
from domain.errors import Conflict, DomainError, InvalidTransition
from domain.market_hours import IST, kite_token_expiry
from domain.portfolio.aggregate import PROTECTIVE_REASON, Portfolio
from domain.portfolio.state import PositionState
from domain.status import PositionStatus, SignalStatus

# kinds of rows in the encrypted secret store (names, not secrets)
API_SECRET = "kite_api_secret"  # noqa: S105
REQUEST_TOKEN = "kite_request_token"  # noqa: S105
ACCESS_TOKEN = "kite_access_token"  # noqa: S105
REQUEST_TOKEN_MINUTES = 10  # Kite's request tokens live "a few minutes"


@dataclass(frozen=True)
class PendingToken:
    request_token: str
    api_key: str
    checksum: str


def _conn(uow: UnitOfWork, account_id: int) -> BrokerConnection:
    conn = uow.load(BrokerConnection, BrokerConnection.uuid_for(account_id))
    if conn is None:
        return BrokerConnection.open(account_id)
    conn.account_id = account_id  # the events name the account through the aggregate id only
    return conn


def _now(uow: UnitOfWork) -> datetime:
    return uow.deps.clock.now()


# ------------------------------------------------------------------ credentials, login, session


def save_kite_credentials(cmd: am.SaveKiteCredentials, uow: UnitOfWork) -> str:
    api_key, secret = cmd.api_key.strip(), cmd.api_secret.strip()
    if not api_key or not secret:
        raise DomainError("api_key and api_secret must not be empty")
    conn = _conn(uow, cmd.account_id)
    now = _now(uow)
    changed_app = conn.api_key not in (None, api_key)
    uow.deps.secrets.put(cmd.account_id, API_SECRET, secret, now)
    if changed_app:
        uow.deps.secrets.delete(cmd.account_id, ACCESS_TOKEN)
        uow.deps.secrets.delete(cmd.account_id, REQUEST_TOKEN)
    conn.save_credentials(api_key, secret, now.isoformat())
    uow.save(conn)
    return api_key


def record_kite_login(cmd: am.RecordKiteLogin, uow: UnitOfWork) -> None:
    conn = _conn(uow, cmd.account_id)
    if conn.api_key is None:
        raise DomainError("Save your Kite app credentials (POST /api/auth/kite-credentials) before logging in")
    if cmd.status != "success":
        raise DomainError(f"Kite login did not succeed (status {cmd.status!r}); try logging in again")
    token = cmd.request_token.strip()
    if not token:
        raise DomainError("request_token is missing from the Kite redirect")
    now = _now(uow)
    uow.deps.secrets.put(cmd.account_id, REQUEST_TOKEN, token, now,
                         expires_at=now + timedelta(minutes=REQUEST_TOKEN_MINUTES))
    conn.login_completed(cmd.status, now.isoformat())
    uow.save(conn)


def take_pending_token(cmd: am.TakePendingToken, uow: UnitOfWork) -> PendingToken | None:
    """The pending request token (removed: single use) with the api_key and the login checksum, which the
    server computes so the api_secret never leaves it."""
    conn = _conn(uow, cmd.account_id)
    if conn.api_key is None:
        return None
    now = _now(uow)
    token = uow.deps.secrets.take(cmd.account_id, REQUEST_TOKEN, now)
    if token is None:
        return None
    secret = uow.deps.secrets.get(cmd.account_id, API_SECRET, now)
    if secret is None:
        raise DomainError("The Kite api_secret is missing; save the Kite credentials again")
    return PendingToken(token, conn.api_key, kite_checksum(conn.api_key, token, secret))


def connect_broker_session(cmd: am.ConnectBrokerSession, uow: UnitOfWork) -> str:
    conn = _conn(uow, cmd.account_id)
    if conn.api_key is None:
        raise DomainError("Save your Kite app credentials before pushing an access token")
    if not cmd.access_token.strip():
        raise DomainError("access_token must not be empty")
    now = _now(uow)
    if cmd.expires_at:
        try:
            expires = datetime.fromisoformat(cmd.expires_at.replace("Z", "+00:00"))
        except ValueError:
            raise DomainError("expires_at must be an ISO 8601 timestamp") from None
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=IST)
    else:
        expires = kite_token_expiry(now)
    if expires <= now:
        raise DomainError("expires_at lies in the past")
    uow.deps.secrets.put(cmd.account_id, ACCESS_TOKEN, cmd.access_token.strip(), now, expires_at=expires)
    conn.connect(cmd.user_id, expires.isoformat(), now.isoformat())
    uow.save(conn)
    return expires.isoformat()


def disconnect_broker_session(cmd: am.DisconnectBrokerSession, uow: UnitOfWork) -> bool:
    """Forget the access token (Kite rejected it, or it expired); the user's own session is untouched."""
    uow.deps.secrets.delete(cmd.account_id, ACCESS_TOKEN)
    conn = _conn(uow, cmd.account_id)
    if not conn.disconnect(cmd.reason, _now(uow).isoformat()):
        return False
    uow.save(conn)
    return True


# ------------------------------------------------------------------ snapshots


def _sync(uow: UnitOfWork, account_id: int, record: Callable[[BrokerConnection, str], bool]) -> bool:
    """Record a snapshot the agent pushed when it differs from the last one; True when recorded."""
    conn = _conn(uow, account_id)
    if record(conn, _now(uow).isoformat()):
        uow.save(conn)
        return True
    return False


def sync_broker_holdings(cmd: am.SyncBrokerHoldings, uow: UnitOfWork) -> bool:
    return _sync(uow, cmd.account_id, lambda conn, at: conn.sync_holdings(cmd.holdings, at))


def sync_broker_positions(cmd: am.SyncBrokerPositions, uow: UnitOfWork) -> bool:
    return _sync(uow, cmd.account_id, lambda conn, at: conn.sync_positions(cmd.net, cmd.day, at))


def sync_broker_orders(cmd: am.SyncBrokerOrders, uow: UnitOfWork) -> bool:
    return _sync(uow, cmd.account_id, lambda conn, at: conn.sync_orders(cmd.gtts, cmd.unresolved, at))


# ------------------------------------------------------------------ the agent's order results


def _same_price(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and abs(float(a) - float(b)) < 0.005


def _exit_reason(pos: PositionState, price: float, signal_reason: str) -> str:
    if signal_reason.startswith("manual"):
        return "manual"
    if signal_reason == PROTECTIVE_REASON:
        stop, target = pos.stop_loss, pos.target
        if target is not None and (stop is None or abs(price - target) < abs(price - stop)):
            return "target"
        return pos.stop_reason if stop is not None else "signal"
    return "signal"


def report_signal_result(cmd: am.ReportSignalResult, uow: UnitOfWork) -> dict[str, Any]:
    """Apply one agent report. Idempotent: a result already recorded answers `recorded: false`; a
    result that contradicts the recorded one is a Conflict (409)."""
    pf = _load(uow, cmd.portfolio_id, cmd.account_id)
    if pf.mode != "live":
        raise DomainError(f"signal {cmd.signal_id} belongs to a {pf.mode} portfolio; the agent reports live "
                          "orders only")
    now = _now(uow)
    at, day = now.isoformat(), now.astimezone(IST).date().isoformat()
    entry = cmd.signal_id in pf.signals
    out = _entry_result(pf, cmd, at, day, uow.ids) if entry else _exit_result(pf, cmd, at, day, uow.ids)
    if pf.has_changes:
        uow.save(pf)
    return out


def _entry_result(pf: Portfolio, cmd: am.ReportSignalResult, at: str, day: str, ids: IdSource) -> dict[str, Any]:
    sig = pf.signals[cmd.signal_id]
    recorded = False
    if cmd.status == "placed":
        recorded = pf.record_broker_order(cmd.signal_id, cmd.order_id, cmd.gtt_id, at)
    elif cmd.status == "executed":
        if cmd.fill_price is None or cmd.fill_price <= 0:
            raise DomainError("an executed result needs a positive fill_price")
        if sig.status == SignalStatus.EXECUTED:
            qty = cmd.filled_quantity if cmd.filled_quantity is not None else sig.filled_quantity
            if not (_same_price(sig.fill_price, cmd.fill_price) and qty == sig.filled_quantity):
                raise Conflict(f"signal {cmd.signal_id} was already reported executed at {sig.fill_price} x "
                               f"{sig.filled_quantity}")
        elif sig.status != SignalStatus.PLACED:
            raise Conflict(f"signal {cmd.signal_id} is {sig.status}; it cannot be executed now")
        else:
            if (cmd.order_id or cmd.gtt_id) and (sig.order_id, sig.gtt_id) == (None, None):
                pf.record_broker_order(cmd.signal_id, cmd.order_id, cmd.gtt_id, at)
            pf.record_fill(cmd.signal_id, day, float(cmd.fill_price), at, cmd.filled_quantity, ids=ids)
            recorded = True
            pos = pf.position_of(sig.symbol)
            if pos is not None:
                _protect(pf, pos, day, at, ids)
    elif cmd.status == "failed":
        if sig.status == SignalStatus.FAILED:
            pass
        elif sig.status != SignalStatus.PLACED:
            raise Conflict(f"signal {cmd.signal_id} is {sig.status}; it cannot fail now")
        else:
            pf.record_order_failure(cmd.signal_id, day, cmd.error or "refused by the broker", at)
            recorded = True
    elif cmd.status == "expired":  # withdrawn: its GTT is gone from the broker (the agent deleted it first)
        if sig.status == SignalStatus.EXPIRED:
            pass
        elif sig.status != SignalStatus.PLACED:
            raise Conflict(f"signal {cmd.signal_id} is {sig.status}; it cannot expire now")
        else:
            pf.withdraw_entry(cmd.signal_id, cmd.error or "withdrawn from the broker", at)
            recorded = True
    else:
        raise DomainError("status must be placed, executed, failed or expired")
    out: dict[str, Any] = {"signal_id": cmd.signal_id, "kind": "entry", "status": sig.status, "recorded": recorded,
                           "position_id": sig.position_id}
    if sig.position_id is not None:
        pos = pf.positions[sig.position_id]
        out["exit_signal_id"] = pos.exit_signal_id
    return out


def _protect(pf: Portfolio, pos: PositionState, day: str, at: str, ids: IdSource) -> None:
    """(Re-)arm a live position's protective stop/target exit (one OCO GTT for the shares it holds) when it
    has levels and no exit pending."""
    if pos.status != PositionStatus.OPEN or pos.exit_pending or (pos.stop_loss is None and pos.target is None):
        return
    pf.record_exit_signals(day, [pos.symbol], at, reasons={pos.symbol: PROTECTIVE_REASON}, ids=ids)


def _exit_result(pf: Portfolio, cmd: am.ReportSignalResult, at: str, day: str, ids: IdSource) -> dict[str, Any]:
    """An exit's result. A `replaced` exit is a protective OCO a manual close replaced: `failed` confirms
    it cancelled, `executed` means it sold first (the replacing close then fails: it was never sent). An
    executed exit for fewer shares than held reduces the position; the rest keeps (or regains) its
    protective exit for the shares left."""
    sid = cmd.signal_id
    pos = pf.exit_position(sid)
    state = pf.exit_state(sid)
    recorded = False
    if cmd.status == "placed":
        recorded = pf.record_broker_order(sid, cmd.order_id, cmd.gtt_id, at)
    elif cmd.status == "executed":
        if cmd.fill_price is None or cmd.fill_price <= 0:
            raise DomainError("an executed result needs a positive fill_price")
        done = pf.exit_results.get(sid)
        if state == "executed":
            price, qty = (done[0], done[1]) if done is not None else (pos.exit_price, pos.quantity)
            if not _same_price(price, cmd.fill_price) or cmd.filled_quantity not in (None, qty):
                raise Conflict(f"exit signal {sid} was already reported executed at {price} x {qty}")
        elif state not in ("pending", "replaced"):
            raise Conflict(f"exit signal {sid} is {state}; it cannot be executed now")
        else:
            if (cmd.order_id or cmd.gtt_id) and sid not in pf.exit_orders:
                pf.record_broker_order(sid, cmd.order_id, cmd.gtt_id, at)
            price = float(cmd.fill_price)
            reason = _exit_reason(pos, price, cmd.signal_reason)
            pf.record_exit_fill(sid, day, price, at, reason, cmd.filled_quantity, ids=ids)
            recorded = True
            _protect(pf, pos, day, at, ids)
    elif cmd.status == "failed":
        if state in ("failed", "cancelled"):
            pass
        elif state == "executed":
            raise Conflict(f"exit signal {sid} was already executed")
        elif state == "replaced":
            pf.record_exit_cancelled(sid, cmd.error or "cancelled at the broker", at)
            recorded = True
        elif state != "pending":
            raise InvalidTransition(f"exit signal {sid} is no longer pending")
        else:
            pf.record_exit_failure(sid, cmd.error or "refused by the broker", at)
            recorded = True
            if cmd.signal_reason != PROTECTIVE_REASON:  # a refused close: the position keeps its protection
                _protect(pf, pos, day, at, ids)
    else:
        raise DomainError("status must be placed, executed or failed (only entries expire)")
    state = pf.exit_state(sid)
    status = {"executed": "executed", "failed": "failed", "cancelled": "failed"}.get(state, "placed")
    out: dict[str, Any] = {"signal_id": sid, "kind": "exit", "status": status, "recorded": recorded,
                           "position_id": pos.position_id}
    if state == "executed" and sid in pf.exit_results:
        out["closed_position_id"] = pf.exit_results[sid][2]
    if pos.status == PositionStatus.OPEN:
        out["exit_signal_id"] = pos.exit_signal_id
    return out


HANDLERS: dict[type, Callable[[Any, UnitOfWork], Any]] = {
    am.SaveKiteCredentials: save_kite_credentials,
    am.RecordKiteLogin: record_kite_login,
    am.TakePendingToken: take_pending_token,
    am.ConnectBrokerSession: connect_broker_session,
    am.DisconnectBrokerSession: disconnect_broker_session,
    am.SyncBrokerHoldings: sync_broker_holdings,
    am.SyncBrokerPositions: sync_broker_positions,
    am.SyncBrokerOrders: sync_broker_orders,
    am.ReportSignalResult: report_signal_result,
}
