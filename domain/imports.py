"""Imported broker records: tradebook trades, ledger entries, CAS transactions and statements.

Tradebook trades are recorded per account and trade date: a `TradebookDay` aggregate whose events
(`TradesImported`) each carry up to `TRADES_PER_EVENT` trades, and whose state is the set of trade keys
it holds. An upload appends only keys the day does not hold yet, with optimistic concurrency on the
day's version: two uploads racing on the same day cannot both append (the store refuses the second
version N+1; the retry sees the first upload's trades and reports them as duplicates). A 100,000-trade
tradebook is a few hundred events rather than 100,000. A trade key is one trade: a row with a key already
held is a duplicate when it is the same trade (`TRADE_CONTENT`: symbol, side, quantity, price) and refused
(`TradeIdConflict`) when it is not.

Ledger entries, CAS transactions and statements (files of hundreds or thousands of rows) are each their
own aggregate with exactly one event (version 1), whose id is derived from the record's natural key; the
store refuses a second version 1 of the same aggregate. An `ImportBatch` aggregate records each upload
and its report; it is saved in the same transaction as the records, so an upload lands entirely or not
at all.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any, ClassVar

from domain.aggregate import Aggregate, aggregate_uuid
from domain.errors import DomainError
from domain.events import DomainEvent
from domain.text import NSE_SYMBOL

_RECORDS = uuid.UUID("0b7d3c52-5f0e-4d8e-9d0f-6c1a2b3e4f51")

IMPORT_KINDS = ("tradebook", "ledger", "cas")
LEDGER_CATEGORIES = ("funds_added", "funds_withdrawn", "charges", "dp_charges", "settlement", "other")


def record_uuid(kind: str, account_id: int, key: str) -> uuid.UUID:
    """The aggregate id of an imported record of `kind` with natural key `key` in one account."""
    return uuid.uuid5(_RECORDS, f"{kind}:{account_id}:{key}")


def content_key(*parts: Any) -> str:
    """A stable key over a record's fields (for records without an id of their own)."""
    text = "\x1f".join("" if p is None else str(p) for p in parts)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


# ---------------------------------------------------------------------------------------------- events


class _FlatEvent(DomainEvent):
    """Events whose fields are already JSON values: serialised without `dataclasses.asdict`'s deep copy
    (an upload records up to hundreds of thousands of them)."""

    def to_data(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class ImportBatchRecorded(_FlatEvent):
    batch_id: int
    account_id: int
    kind: str  # tradebook | ledger | cas
    files: list[str]
    report: dict[str, Any]
    at: str


TRADES_PER_EVENT = 500  # keeps an event well under Kafka's default 1 MB message size
TRADE_COLUMNS = ("trade_key", "trade_id", "order_id", "symbol", "isin", "exchange", "segment", "series",
                 "executed_at", "side", "quantity", "price")
# What makes two rows with one trade key (exchange, segment, trade date, trade id) the same trade, as stored:
# the same rows in two overlapping exports are a duplicate; the same key with any of these different is an
# error (which of them is the trade?). The execution time, order id, ISIN and series are not compared.
TRADE_CONTENT = ("symbol", "side", "quantity", "price")
_CONTENT_AT = tuple(TRADE_COLUMNS.index(c) for c in TRADE_CONTENT)


def trade_content(row: list[Any] | tuple[Any, ...], at: tuple[int, ...] = _CONTENT_AT) -> tuple[Any, ...]:
    """A trade row's values of `TRADE_CONTENT` (`at`: their places in the row, `TRADE_COLUMNS`' by default)."""
    return tuple(row[i] for i in at)


def trade_differences(held: tuple[Any, ...], other: tuple[Any, ...]) -> list[str]:
    """The `TRADE_CONTENT` fields in which two trades differ (quantities and prices as stored floats, equal
    within 1e-9 relative: an XLSX cell and a CSV text of one price are one price)."""
    out = []
    for name, a, b in zip(TRADE_CONTENT, held, other, strict=True):
        if name in ("quantity", "price"):
            same = math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)
        else:
            same = a == b
        if not same:
            out.append(name)
    return out


class TradeIdConflict(DomainError):
    """A trade key already held (or earlier in the same rows) for a different trade: nothing is recorded."""

    def __init__(self, key: str, fields: list[str]) -> None:
        super().__init__(f"a trade id is already used for a different trade (its {', '.join(fields)} differ)")
        self.key = key
        self.fields = fields


@dataclass(frozen=True)
class TradesImported(_FlatEvent):
    """Trades of one account and trade date imported by one batch: `rows` hold the values of `columns`
    (`TRADE_COLUMNS`) in that order. `executed_at` is an ISO timestamp (IST, no offset) or ""; `side` is
    buy or sell."""

    account_id: int
    batch_id: int
    trade_date: str  # YYYY-MM-DD
    columns: list[str]
    rows: list[list[Any]]


@dataclass(frozen=True)
class LedgerEntryImported(_FlatEvent):
    account_id: int
    batch_id: int
    entry_key: str
    posting_date: str
    particulars: str
    voucher_type: str
    cost_center: str
    debit: float
    credit: float
    balance: float | None
    category: str


@dataclass(frozen=True)
class MfTransactionImported(_FlatEvent):
    account_id: int
    batch_id: int
    txn_key: str
    folio: str
    amc: str
    scheme: str
    isin: str
    date: str
    description: str
    txn_type: str  # PURCHASE, PURCHASE_SIP, REDEMPTION, SWITCH_IN, SWITCH_OUT, DIVIDEND_PAYOUT, ...
    amount: float | None
    units: float | None
    nav: float | None
    balance: float | None


@dataclass(frozen=True)
class CasStatementImported(_FlatEvent):
    """A statement's closing position: mutual-fund valuations (CAMS/KFintech) or demat holdings
    (NSDL/CDSL), as of the statement date."""

    account_id: int
    batch_id: int
    statement_key: str
    file_type: str  # CAMS | KFINTECH | NSDL | CDSL
    period_from: str
    period_to: str
    valuations: list[dict[str, Any]]  # {folio, amc, scheme, isin, date, units, nav, cost, value}
    holdings: list[dict[str, Any]]  # {isin, symbol, name, quantity, price, value, date}


@dataclass(frozen=True)
class CorporateActionRecorded(_FlatEvent):
    account_id: int
    action_key: str
    symbol: str
    ex_date: str
    kind: str  # split | bonus
    ratio_new: float
    ratio_old: float


# ---------------------------------------------------------------------------------------------- aggregates


class ImportBatch(Aggregate):
    aggregate_type = "ImportBatch"

    batch_id: int
    kind: str
    report: dict[str, Any]

    @staticmethod
    def uuid_for(batch_id: int) -> uuid.UUID:
        return aggregate_uuid("import_batch", batch_id)

    @classmethod
    def record(cls, batch_id: int, account_id: int, kind: str, files: list[str], report: dict[str, Any],
               at: str) -> ImportBatch:
        batch = cls(cls.uuid_for(batch_id))
        batch._record(ImportBatchRecorded(batch_id, account_id, kind, files, report, at))
        return batch

    def when_ImportBatchRecorded(self, e: ImportBatchRecorded) -> None:
        self.batch_id = e.batch_id
        self.account_id = e.account_id
        self.kind = e.kind
        self.report = e.report


class TradebookDay(Aggregate):
    """An account's imported trades of one trade date: the trade keys it holds, each with its
    `TRADE_CONTENT`."""

    aggregate_type = "TradebookDay"
    # Its events carry hundreds of trades each: the event store does not keep them decoded in memory
    # (a re-upload of 100,000 trades would otherwise pin ~80 MB in its cache).
    cache_events: ClassVar[bool] = False

    trades: dict[str, tuple[Any, ...]]

    def __init__(self, aggregate_id: uuid.UUID) -> None:
        super().__init__(aggregate_id)
        self.trades = {}

    @staticmethod
    def uuid_for(account_id: int, trade_date: str) -> uuid.UUID:
        return uuid.uuid5(_RECORDS, f"trade_day:{account_id}:{trade_date}")

    def record_trades(self, account_id: int, batch_id: int, trade_date: str,
                      rows: list[list[Any]]) -> list[list[Any]]:
        """Append the rows (values of `TRADE_COLUMNS`) whose keys this day does not hold yet (the first of
        rows sharing a key), in events of at most `TRADES_PER_EVENT` trades; returns the rows appended. A row
        whose key is held (or comes earlier in `rows`) with another `TRADE_CONTENT` raises `TradeIdConflict`
        before anything is recorded."""
        new: dict[str, tuple[Any, ...]] = {}
        fresh = []
        for r in rows:
            content = trade_content(r)
            held = self.trades.get(r[0])
            if held is None:
                held = new.get(r[0])
            if held is None:
                new[r[0]] = content
                fresh.append(r)
            elif differ := trade_differences(held, content):
                raise TradeIdConflict(r[0], differ)
        for i in range(0, len(fresh), TRADES_PER_EVENT):
            self._record(TradesImported(account_id, batch_id, trade_date, list(TRADE_COLUMNS),
                                        fresh[i:i + TRADES_PER_EVENT]))
        return fresh

    def when_TradesImported(self, e: TradesImported) -> None:
        self.account_id = e.account_id
        k = e.columns.index("trade_key")
        at = tuple(e.columns.index(c) for c in TRADE_CONTENT)
        self.trades.update((r[k], trade_content(r, at)) for r in e.rows)


class ImportedRecord(Aggregate):
    """Base of the one-event record aggregates: created with their single event, never changed."""

    kind: ClassVar[str] = "record"

    @classmethod
    def create(cls, event: DomainEvent, account_id: int, key: str) -> ImportedRecord:
        rec = cls(record_uuid(cls.kind, account_id, key))
        rec._record(event)
        return rec

    def _set_account(self, e: Any) -> None:
        self.account_id = e.account_id


class ImportedLedgerEntry(ImportedRecord):
    aggregate_type = "ImportedLedgerEntry"
    kind = "ledger"

    def when_LedgerEntryImported(self, e: LedgerEntryImported) -> None:
        self._set_account(e)


class ImportedMfTransaction(ImportedRecord):
    aggregate_type = "ImportedMfTransaction"
    kind = "mf_txn"

    def when_MfTransactionImported(self, e: MfTransactionImported) -> None:
        self._set_account(e)


class ImportedCasStatement(ImportedRecord):
    aggregate_type = "ImportedCasStatement"
    kind = "cas_statement"

    def when_CasStatementImported(self, e: CasStatementImported) -> None:
        self._set_account(e)


class CorporateAction(ImportedRecord):
    aggregate_type = "CorporateAction"
    kind = "corporate_action"

    def when_CorporateActionRecorded(self, e: CorporateActionRecorded) -> None:
        self._set_account(e)


CORPORATE_ACTION_KINDS = ("split", "bonus")  # a consolidation is a split with ratio_new < ratio_old
MAX_RATIO_TERM = 1000  # NSE ratios are small whole numbers (1:10, 1:1, 3:2); new/old stays within 1/1000..1000
EARLIEST_EX_DATE = date(1990, 1, 1)
# An NSE trading symbol as a tradebook names it (INFY, M&M, BAJAJ-AUTO), as the alert receiver and the risk
# rules read one.


def corporate_action_symbol(symbol: str, ex_date: str, kind: str, ratio_new: float, ratio_old: float,
                            today: date) -> str:
    """Check a split or bonus before it adjusts lots, and return its symbol as recorded (trimmed, upper
    case). DomainError says what to change, never repeating what was sent:
    - kind `split` (ratio_new new shares for ratio_old old: 2:1, 1:10, a consolidation 1:10 as new 1, old 10) or
      `bonus` (ratio_new bonus shares per ratio_old held: 1:1, 3:2);
    - ratio_new and ratio_old whole numbers from 1 to `MAX_RATIO_TERM` (a ratio of 1e-300 would turn every
      holding into dust and every value into null);
    - ex_date from `EARLIEST_EX_DATE` to `today` (IST): a future ex-date is not yet an action;
    - symbol an NSE trading symbol (letters, digits, & . _ -, at most 30)."""
    if kind not in CORPORATE_ACTION_KINDS:
        raise DomainError("kind must be 'split' or 'bonus'")
    for name, value in (("ratio_new", ratio_new), ("ratio_old", ratio_old)):
        v = float(value)
        if not (v.is_integer() and 1 <= v <= MAX_RATIO_TERM):
            raise DomainError(f"{name} must be a whole number from 1 to {MAX_RATIO_TERM} (a 1:10 split is "
                              "ratio_new 10, ratio_old 1; a 10:1 consolidation ratio_new 1, ratio_old 10)")
    try:
        day = date.fromisoformat(ex_date)
    except ValueError:
        raise DomainError("ex_date must be a date (YYYY-MM-DD)") from None
    if day < EARLIEST_EX_DATE:
        raise DomainError(f"ex_date must not be before {EARLIEST_EX_DATE.isoformat()}")
    if day > today:
        raise DomainError("ex_date must not be after today (IST): record an action once it is effective")
    clean = symbol.strip().upper()
    if not NSE_SYMBOL.fullmatch(clean):
        raise DomainError("symbol must be an NSE trading symbol as the tradebook names it (letters, digits, "
                          "& . _ -, at most 30, like INFY or M&M)")
    return clean


def trade_key(exchange: str, segment: str, trade_date: str, trade_id: str) -> str:
    """Trade ids are the exchange's: unique per exchange and segment on a trading day."""
    return f"{exchange.upper()}:{segment.upper()}:{trade_date}:{trade_id}"


def classify_ledger(voucher_type: str, particulars: str, debit: float, credit: float) -> str:
    """The category of a ledger entry: funds in and out (XIRR cash flows), charges, DP fees, settlements."""
    v = voucher_type.strip().lower()
    p = particulars.strip().lower()
    if v == "bank receipts" or (v == "" and "funds added" in p) or "payin" in p.replace(" ", "").replace("-", ""):
        return "funds_added"
    if v == "bank payments" or "payout" in p.replace(" ", "").replace("-", "") or "withdraw" in p:
        return "funds_withdrawn"
    if "dp charges" in p or "dp charge" in p:
        return "dp_charges"
    if "settlement" in p:
        return "settlement"
    charge_words = ("charges", "charge", "gst", "amc", "interest", "brokerage", "stamp", "penalty", "fee")
    if any(w in p for w in charge_words):
        return "charges"
    return "other"
