"""Imported broker records: tradebook trades, ledger entries, CAS transactions and statements.

Tradebook trades are recorded per account and trade date: a `TradebookDay` aggregate whose events
(`TradesImported`) each carry up to `TRADES_PER_EVENT` trades, and whose state is the set of trade keys
it holds. An upload appends only keys the day does not hold yet, with optimistic concurrency on the
day's version: two uploads racing on the same day cannot both append (the store refuses the second
version N+1; the retry sees the first upload's trades and reports them as duplicates). A 100,000-trade
tradebook is a few hundred events rather than 100,000.

Ledger entries, CAS transactions and statements (files of hundreds or thousands of rows) are each their
own aggregate with exactly one event (version 1), whose id is derived from the record's natural key; the
store refuses a second version 1 of the same aggregate. An `ImportBatch` aggregate records each upload
and its report; it is saved in the same transaction as the records, so an upload lands entirely or not
at all.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any, ClassVar

from domain.aggregate import Aggregate, aggregate_uuid
from domain.events import DomainEvent

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
    """An account's imported trades of one trade date: which trade keys it holds."""

    aggregate_type = "TradebookDay"
    # Its events carry hundreds of trades each: the event store does not keep them decoded in memory
    # (a re-upload of 100,000 trades would otherwise pin ~80 MB in its cache).
    cache_events: ClassVar[bool] = False

    keys: set[str]

    def __init__(self, aggregate_id: uuid.UUID) -> None:
        super().__init__(aggregate_id)
        self.keys = set()

    @staticmethod
    def uuid_for(account_id: int, trade_date: str) -> uuid.UUID:
        return uuid.uuid5(_RECORDS, f"trade_day:{account_id}:{trade_date}")

    def record_trades(self, account_id: int, batch_id: int, trade_date: str,
                      rows: list[list[Any]]) -> list[list[Any]]:
        """Append the rows (values of `TRADE_COLUMNS`) whose keys this day does not hold yet (the first of
        rows sharing a key), in events of at most `TRADES_PER_EVENT` trades; returns the rows appended."""
        new: set[str] = set()
        fresh = []
        for r in rows:
            if r[0] not in self.keys and r[0] not in new:
                new.add(r[0])
                fresh.append(r)
        for i in range(0, len(fresh), TRADES_PER_EVENT):
            self._record(TradesImported(account_id, batch_id, trade_date, list(TRADE_COLUMNS),
                                        fresh[i:i + TRADES_PER_EVENT]))
        return fresh

    def when_TradesImported(self, e: TradesImported) -> None:
        self.account_id = e.account_id
        k = e.columns.index("trade_key")
        self.keys.update(r[k] for r in e.rows)


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
