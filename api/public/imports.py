"""Import reports (tradebook, ledger, CAS) and the batch list."""

from __future__ import annotations

from pydantic import Field

from api.public.base import Number, OpenPublic, Public


class RejectedRow(OpenPublic):
    """A row the parser refused (its keys depend on the file kind)."""

    file: str | None = None
    row: int | None = None
    reason: str | None = None


class UnmatchedTrade(Public):
    symbol: str
    trade_date: str
    trade_id: str | None
    quantity: Number


class UnmatchedTrades(Public):
    """Sells FIFO could not match (more sold than held): they make no P&L."""

    count: int
    quantity: Number
    sells: list[UnmatchedTrade] = Field(description="the first of them")


class Period(Public):
    from_: str | None = Field(alias="from")
    to: str | None


class ImportReportPublic(Public):
    """What an import did; the keys after `rejected_count` belong to one kind of file."""

    batch_id: int
    kind: str = Field(description="tradebook, ledger or cas")
    files: list[str]
    rows_read: int
    imported: int
    duplicates: int = Field(description="rows already imported (idempotent: a file twice imports once)")
    rejected: list[RejectedRow] = Field(description="the first rejected rows, with the reason")
    rejected_count: int
    per_file: dict[str, int] | None = Field(default=None, description="tradebook: trades read per file")
    unmatched_sells: UnmatchedTrades | None = Field(default=None, description="tradebook: sells FIFO cannot match")
    categories: dict[str, int] | None = Field(default=None, description="ledger: entries per category")
    opening_balance: Number | None = Field(default=None, description="ledger")
    closing_balance: Number | None = Field(default=None, description="ledger")
    file_type: str | None = Field(default=None, description="cas: CAMS/KFintech or NSDL/CDSL")
    period: Period | None = Field(default=None, description="cas: the statement's period")
    pages: int | None = Field(default=None, description="cas")
    transactions: int | None = Field(default=None, description="cas")
    valuations: int | None = Field(default=None, description="cas")
    holdings: int | None = Field(default=None, description="cas")
    statement_imported: bool | None = Field(default=None, description="cas: false when the same statement was "
                                                                       "imported before")


class ImportBatchPublic(ImportReportPublic):
    created_at: str | None = None
