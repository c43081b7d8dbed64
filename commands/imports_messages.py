"""Commands (and the one port) of broker imports, corporate actions and family groups."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol


class RecordIndex(Protocol):
    """Which aggregates already exist in the event store (a fast pre-check before saving imported
    records; the store's own uniqueness of (aggregate id, version) is what guarantees no duplicate)."""

    def existing(self, aggregate_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]: ...


@dataclass(frozen=True)
class ParsedTrade:
    file: str
    row: int
    trade_id: str
    order_id: str
    symbol: str
    isin: str
    exchange: str
    segment: str
    series: str
    trade_date: str
    executed_at: str
    side: str
    quantity: float
    price: float


@dataclass(frozen=True)
class ImportTradebook:
    account_id: int
    files: tuple[str, ...]
    rows_read: int
    trades: tuple[ParsedTrade, ...]
    rejected: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class ParsedLedgerEntry:
    row: int
    posting_date: str
    particulars: str
    voucher_type: str
    cost_center: str
    debit: float
    credit: float
    balance: float | None


@dataclass(frozen=True)
class ImportLedger:
    account_id: int
    file: str
    rows_read: int
    entries: tuple[ParsedLedgerEntry, ...]
    rejected: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class ParsedMfTransaction:
    page: int
    folio: str
    amc: str
    scheme: str
    isin: str
    date: str
    description: str
    type: str
    amount: float | None
    units: float | None
    nav: float | None
    balance: float | None


@dataclass(frozen=True)
class ImportCas:
    account_id: int
    file: str
    file_type: str
    period_from: str
    period_to: str
    transactions: tuple[ParsedMfTransaction, ...]
    valuations: tuple[dict[str, Any], ...] = ()
    holdings: tuple[dict[str, Any], ...] = ()
    pages: int = 0


@dataclass(frozen=True)
class RecordCorporateAction:
    account_id: int
    symbol: str
    ex_date: str
    kind: str
    ratio_new: float
    ratio_old: float


# ------------------------------------------------------------------ family groups


@dataclass(frozen=True)
class CreateFamilyGroup:
    account_id: int
    email: str
    name: str


@dataclass(frozen=True)
class InviteFamilyMember:
    account_id: int
    group_id: int
    email: str


@dataclass(frozen=True)
class AcceptFamilyInvitation:
    account_id: int
    email: str
    group_id: int
    token: str | None = None


@dataclass(frozen=True)
class LeaveFamilyGroup:
    account_id: int
    group_id: int


@dataclass(frozen=True)
class RemoveFamilyMember:
    account_id: int
    group_id: int
    member_id: int


# A wrong file (an F&O tradebook sent as equity) can reject every row: listing 100,000 of them would make
# the batch's event megabytes long (over Kafka's default message size).
MAX_LISTED_REJECTIONS = 1000


@dataclass(frozen=True)
class ImportReport:
    batch_id: int
    kind: str
    files: list[str]
    rows_read: int
    imported: int
    duplicates: int
    rejected: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The report (recorded in the batch's event, so rejected rows are listed up to
        `MAX_LISTED_REJECTIONS`; `rejected_count` counts them all)."""
        return {"batch_id": self.batch_id, "kind": self.kind, "files": self.files, "rows_read": self.rows_read,
                "imported": self.imported, "duplicates": self.duplicates,
                "rejected": self.rejected[:MAX_LISTED_REJECTIONS], "rejected_count": len(self.rejected),
                **self.details}
