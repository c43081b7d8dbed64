"""The broker connection of one account: Kite app credentials saved, login requests, the broker session
(connected / disconnected), and the holdings/positions snapshots the agent pushes; plus the pure
reconciliation of live portfolio positions against the broker's holdings.

Secrets never enter these events: the api_secret, request tokens and access tokens live encrypted in
a plain table (`infra.auth.secrets`); the events record that something happened and its public parts
(api_key, a masked secret, Kite user id, expiry).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from domain.aggregate import Aggregate, aggregate_uuid
from domain.events import DomainEvent
from domain.ticks import tick_size


@dataclass(frozen=True)
class KiteCredentialsSaved(DomainEvent):
    api_key: str
    api_secret_masked: str
    at: str


@dataclass(frozen=True)
class KiteLoginCompleted(DomainEvent):
    """Kite redirected back with a request token (kept encrypted, not here) for the agent to exchange."""

    status: str
    at: str


@dataclass(frozen=True)
class BrokerSessionConnected(DomainEvent):
    broker: str
    user_id: str | None
    expires_at: str
    source: str  # "agent"
    at: str


@dataclass(frozen=True)
class BrokerSessionDisconnected(DomainEvent):
    reason: str
    at: str


@dataclass(frozen=True)
class HoldingsSynced(DomainEvent):
    """A holdings snapshot (Kite holdings shape, reduced to what reconciliation and the audit need)."""

    holdings: list[dict[str, Any]]
    digest: str
    at: str


@dataclass(frozen=True)
class PositionsSynced(DomainEvent):
    net: list[dict[str, Any]]
    day: list[dict[str, Any]]
    digest: str
    at: str


@dataclass(frozen=True)
class BrokerOrdersSynced(DomainEvent):
    """What the agent last saw of the account's GTTs at the broker (reduced by `reduce_gtts`) and the fills
    it could not resolve (a triggered GTT's order found nowhere at Kite: `unresolved`)."""

    gtts: list[dict[str, Any]]
    unresolved: list[dict[str, Any]]
    digest: str
    at: str


HOLDING_FIELDS = ("tradingsymbol", "exchange", "instrument_token", "isin", "product", "quantity", "t1_quantity",
                  "used_quantity", "average_price", "last_price", "close_price", "pnl")
POSITION_FIELDS = ("tradingsymbol", "exchange", "instrument_token", "product", "quantity", "overnight_quantity",
                   "average_price", "last_price", "pnl", "buy_quantity", "sell_quantity")


def reduce_rows(rows: Iterable[Mapping[str, Any]], fields: tuple[str, ...]) -> list[dict[str, Any]]:
    """Keep the fields of `fields` with JSON-friendly scalar values, sorted by exchange and symbol."""
    out = []
    for row in rows:
        item = {k: row.get(k) for k in fields if isinstance(row.get(k), str | int | float | bool | type(None))}
        item["tradingsymbol"] = str(row.get("tradingsymbol") or "")
        item["exchange"] = str(row.get("exchange") or "NSE")
        out.append(item)
    return sorted(out, key=lambda r: (r["exchange"], r["tradingsymbol"], str(r.get("product"))))


def reduce_gtts(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Kite GTT objects reduced to what reconciliation needs: id, status, instrument, the GTT's last price
    when set, its triggers and each leg's side, quantity and limit price; sorted by id."""
    out = []
    for g in rows:
        cond = g.get("condition") or {}
        out.append({"id": str(g.get("id")), "status": str(g.get("status") or ""),
                    "exchange": str(cond.get("exchange") or "NSE"),
                    "tradingsymbol": str(cond.get("tradingsymbol") or ""),
                    "last_price": float(cond.get("last_price") or 0),
                    "trigger_values": [float(t) for t in cond.get("trigger_values") or []],
                    "orders": [{"transaction_type": str(o.get("transaction_type") or ""),
                                "quantity": int(o.get("quantity") or 0), "price": float(o.get("price") or 0)}
                               for o in g.get("orders") or []]})
    return sorted(out, key=lambda g: (len(g["id"]), g["id"]))


def digest_of(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def mask_secret(secret: str) -> str:
    """What the API shows of a secret: its length hidden, at most the last 4 characters."""
    tail = secret[-4:] if len(secret) >= 12 else ""
    return "*" * 8 + tail


class BrokerConnection(Aggregate):
    """One per account (uuid5 over "broker:<account_id>")."""

    aggregate_type: ClassVar[str] = "BrokerConnection"

    def __init__(self, aggregate_id: uuid.UUID) -> None:
        super().__init__(aggregate_id)
        self.api_key: str | None = None
        self.connected = False
        self.user_id: str | None = None
        self.expires_at: str | None = None
        self.holdings_digest: str | None = None
        self.positions_digest: str | None = None
        self.orders_digest: str | None = None

    @staticmethod
    def uuid_for(account_id: int) -> uuid.UUID:
        return aggregate_uuid("broker", account_id)

    @classmethod
    def open(cls, account_id: int) -> BrokerConnection:
        obj = cls(cls.uuid_for(account_id))
        obj.account_id = account_id
        return obj

    def save_credentials(self, api_key: str, api_secret: str, at: str) -> None:
        """New app credentials; a live session of another api_key ends with them."""
        if self.connected and self.api_key not in (None, api_key):
            self._record(BrokerSessionDisconnected(reason="Kite app credentials changed", at=at))
        self._record(KiteCredentialsSaved(api_key=api_key, api_secret_masked=mask_secret(api_secret), at=at))

    def login_completed(self, status: str, at: str) -> None:
        self._record(KiteLoginCompleted(status=status, at=at))

    def connect(self, user_id: str | None, expires_at: str, at: str, source: str = "agent") -> None:
        self._record(BrokerSessionConnected(broker="kite", user_id=user_id, expires_at=expires_at, source=source,
                                            at=at))

    def disconnect(self, reason: str, at: str) -> bool:
        """Mark the session disconnected (no-op when it is not connected); True when recorded."""
        if not self.connected:
            return False
        self._record(BrokerSessionDisconnected(reason=reason, at=at))
        return True

    def sync_holdings(self, rows: Iterable[Mapping[str, Any]], at: str) -> bool:
        """Record a holdings snapshot if it differs from the last one; True when recorded."""
        holdings = reduce_rows(rows, HOLDING_FIELDS)
        digest = digest_of([(h["exchange"], h["tradingsymbol"], h.get("product"), h.get("quantity"),
                             h.get("t1_quantity"), h.get("average_price")) for h in holdings])
        if digest == self.holdings_digest:
            return False
        self._record(HoldingsSynced(holdings=holdings, digest=digest, at=at))
        return True

    def sync_positions(self, net: Iterable[Mapping[str, Any]], day: Iterable[Mapping[str, Any]], at: str) -> bool:
        n, d = reduce_rows(net, POSITION_FIELDS), reduce_rows(day, POSITION_FIELDS)
        digest = digest_of([(p["exchange"], p["tradingsymbol"], p.get("product"), p.get("quantity"),
                             p.get("average_price")) for p in n + d])
        if digest == self.positions_digest:
            return False
        self._record(PositionsSynced(net=n, day=d, digest=digest, at=at))
        return True

    def sync_orders(self, gtts: Iterable[Mapping[str, Any]], unresolved: Iterable[Mapping[str, Any]],
                    at: str) -> bool:
        """Record the agent's view of the broker's GTTs and its unresolved fills if it differs from the
        last one; True when recorded."""
        reduced = reduce_gtts(gtts)
        pending = sorted((dict(u) for u in unresolved), key=lambda u: (int(u.get("signal_id") or 0),
                                                                       str(u.get("order_id") or "")))
        digest = digest_of(reduced, [{k: v for k, v in u.items() if k != "since"} for u in pending])
        if digest == self.orders_digest:
            return False
        self._record(BrokerOrdersSynced(gtts=reduced, unresolved=pending, digest=digest, at=at))
        return True

    # mutators
    def when_KiteCredentialsSaved(self, e: KiteCredentialsSaved) -> None:
        self.api_key = e.api_key

    def when_KiteLoginCompleted(self, e: KiteLoginCompleted) -> None:
        pass

    def when_BrokerSessionConnected(self, e: BrokerSessionConnected) -> None:
        self.connected = True
        self.user_id = e.user_id
        self.expires_at = e.expires_at

    def when_BrokerSessionDisconnected(self, e: BrokerSessionDisconnected) -> None:
        self.connected = False

    def when_HoldingsSynced(self, e: HoldingsSynced) -> None:
        self.holdings_digest = e.digest

    def when_PositionsSynced(self, e: PositionsSynced) -> None:
        self.positions_digest = e.digest

    def when_BrokerOrdersSynced(self, e: BrokerOrdersSynced) -> None:
        self.orders_digest = e.digest


# ---------------------------------------------------------------------------------------------- reconciliation


@dataclass(frozen=True)
class Drift:
    """One difference between what the live portfolios hold and what the broker reports."""

    kind: str  # "missing" (model holds more than the broker) | "extra" (broker holds it, no model does) | "quantity"
    exchange: str
    symbol: str
    model_quantity: int
    broker_quantity: int

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "exchange": self.exchange, "symbol": self.symbol,
                "model_quantity": self.model_quantity, "broker_quantity": self.broker_quantity,
                "difference": self.broker_quantity - self.model_quantity}


def held_quantity(holding: Mapping[str, Any]) -> int:
    """Shares a Kite holding row holds: settled `quantity` plus `t1_quantity` (bought, delivery pending);
    today's sales show as negative CNC net positions, so `used_quantity` is not subtracted here."""
    return int(holding.get("quantity") or 0) + int(holding.get("t1_quantity") or 0)


def reconcile(model: Mapping[tuple[str, str], int], holdings: Iterable[Mapping[str, Any]],
              net_positions: Iterable[Mapping[str, Any]] = (),
              isins: Mapping[str, str] | None = None) -> list[Drift]:
    """Compare model quantities per (exchange, symbol), summed over the account's live portfolios, with
    the broker's delivery quantity: holdings (`held_quantity`) plus today's CNC net positions.

    Rows are matched by ISIN, then by symbol, never by exchange: Kite may report shares bought on NSE
    under BSE (`exchange: "BSE"`, same ISIN). A model symbol's ISIN comes from `isins` (symbol -> ISIN,
    e.g. the universes' constituent lists) or from a holding row of the same symbol. Symbols neither side
    holds are ignored; a drift names the model's exchange and symbol (the broker's for an `extra`); the
    result is sorted by symbol."""
    holdings = list(holdings)
    by_symbol: dict[str, str] = {}
    for h in holdings:
        isin = str(h.get("isin") or "").strip().upper()
        if isin:
            by_symbol.setdefault(str(h.get("tradingsymbol")), isin)
    known = isins or {}

    def key(symbol: str, isin: str = "") -> str:
        isin = isin or by_symbol.get(symbol) or known.get(symbol, "")
        return f"isin:{isin.strip().upper()}" if isin else f"symbol:{symbol}"

    broker: dict[str, int] = {}
    names: dict[str, tuple[str, str]] = {}
    for h in holdings:
        symbol = str(h.get("tradingsymbol"))
        k = key(symbol, str(h.get("isin") or ""))
        broker[k] = broker.get(k, 0) + held_quantity(h)
        names.setdefault(k, (str(h.get("exchange") or "NSE"), symbol))
    for p in net_positions:
        if str(p.get("product") or "CNC") != "CNC":
            continue
        symbol = str(p.get("tradingsymbol"))
        k = key(symbol)
        broker[k] = broker.get(k, 0) + int(p.get("quantity") or 0)
        names.setdefault(k, (str(p.get("exchange") or "NSE"), symbol))
    mine: dict[str, int] = {}
    for (exchange, symbol), qty in model.items():
        k = key(symbol)
        mine[k] = mine.get(k, 0) + int(qty)
        names[k] = (exchange, symbol)
    drifts: list[Drift] = []
    for k in sorted(set(mine) | set(broker), key=lambda k: (names[k][1], names[k][0])):
        m, b = mine.get(k, 0), broker.get(k, 0)
        if m == b:
            continue
        if m > 0 and b <= 0:
            kind = "missing"
        elif m <= 0 and b > 0:
            kind = "extra"
        else:
            kind = "quantity"
        drifts.append(Drift(kind, names[k][0], names[k][1], m, b))
    return drifts


# ---------------------------------------------------------------------------------------------- protection


@dataclass(frozen=True)
class Protection:
    """What the model wants at the broker for one open live position: its stop and target (either may be
    None), its quantity, and the exit signal that protects it -- `gtt_id` is that signal's GTT when the
    agent placed it (None: not at the broker yet)."""

    exchange: str
    symbol: str
    position_id: int
    signal_id: int | None
    quantity: int
    stop: float | None
    target: float | None
    gtt_id: str | None


@dataclass(frozen=True)
class ProtectionDrift:
    """One difference between a position's protection in the model and the protective GTT at the broker:
    `gtt_missing` (not placed, or no longer active there: `broker_status`), `stop_drift`, `target_drift`
    (the GTT's trigger is more than half a tick from the model's level), `gtt_quantity`."""

    kind: str
    exchange: str
    symbol: str
    position_id: int
    signal_id: int | None
    gtt_id: str | None
    values: tuple[tuple[str, Any], ...]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "exchange": self.exchange, "symbol": self.symbol, "position_id": self.position_id,
                "signal_id": self.signal_id, "gtt_id": self.gtt_id, **dict(self.values)}


def _gtt_levels(p: Protection, gtt: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """(stop, target) triggers of a protective GTT: an OCO's are [stop, target]; a single leg is the one
    level the model has (with both, the side of the GTT's last price tells)."""
    triggers = [float(t) for t in gtt.get("trigger_values") or []]
    if len(triggers) >= 2:
        return triggers[0], triggers[-1]
    if not triggers:
        return None, None
    only = triggers[0]
    if p.stop is not None and p.target is not None:
        last = float(gtt.get("last_price") or 0)
        return (only, None) if last and only < last else (None, only)
    return (only, None) if p.stop is not None else (None, only)


def protection_drift(protections: Iterable[Protection], gtts: Iterable[Mapping[str, Any]],
                     on_date: str) -> list[ProtectionDrift]:
    """Compare each open live position's stop, target and quantity with its protective GTT at the broker
    (`gtts`: reduced Kite GTTs, `reduce_gtts`). Triggers sit on the tick grid the agent rounds to: a level
    within half a tick (the coarsest tick of the levels compared, on `on_date`) is in step. A position with
    neither a stop nor a target needs no GTT. Sorted by symbol, then position."""
    by_id = {str(g.get("id")): g for g in gtts}
    out: list[ProtectionDrift] = []
    for p in sorted(protections, key=lambda p: (p.symbol, p.position_id)):
        if p.stop is None and p.target is None:
            continue
        p = replace(p, stop=None if p.stop is None else round(p.stop, 2),
                    target=None if p.target is None else round(p.target, 2))  # in rupees and paise
        base = (p.exchange, p.symbol, p.position_id, p.signal_id, p.gtt_id)
        gtt = by_id.get(p.gtt_id) if p.gtt_id else None
        status = "not placed" if not p.gtt_id else "not found" if gtt is None else str(gtt.get("status") or "")
        if gtt is None or status != "active":
            out.append(ProtectionDrift("gtt_missing", *base, (("broker_status", status), ("model_stop", p.stop),
                                                               ("model_target", p.target))))
            continue
        stop, target = _gtt_levels(p, gtt)
        levels = [v for v in (p.stop, p.target, stop, target) if v is not None]
        half = max(tick_size(v, on_date) for v in levels) / 2 + 1e-6
        for kind, model, broker in (("stop", p.stop, stop), ("target", p.target, target)):
            if model is None and broker is None:
                continue
            if model is None or broker is None or abs(model - broker) > half:
                out.append(ProtectionDrift(f"{kind}_drift", *base, ((f"model_{kind}", model),
                                                                     (f"broker_{kind}", broker))))
        quantities = {int(o.get("quantity") or 0) for o in gtt.get("orders") or []}
        if quantities != {p.quantity}:
            out.append(ProtectionDrift("gtt_quantity", *base, (("model_quantity", p.quantity),
                                                                ("broker_quantity", max(quantities, default=0)))))
    return out
