"""Broker imports: tradebook trades appended to one aggregate per account and trade date, ledger and CAS
records each an event on its own aggregate, the batch and its report on another, all saved in one
transaction (all or nothing). Records that already exist are duplicates, not errors; a trade id reused for a
different trade (in the upload, or against one imported before) is an error, and nothing is imported."""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from commands import imports_messages as im
from commands.uow import UnitOfWork
from domain.aggregate import Aggregate
from domain.errors import DomainError
from domain.imports import (
    TRADE_CONTENT,
    CasStatementImported,
    CorporateAction,
    CorporateActionRecorded,
    ImportBatch,
    ImportedCasStatement,
    ImportedLedgerEntry,
    ImportedMfTransaction,
    ImportedRecord,
    LedgerEntryImported,
    MfTransactionImported,
    TradebookDay,
    TradeIdConflict,
    classify_ledger,
    content_key,
    corporate_action_symbol,
    record_uuid,
    trade_differences,
    trade_key,
)
from domain.market_hours import IST
from domain.pnl import Fill, match_fifo


def _existing(uow: UnitOfWork, ids: list[uuid.UUID], cls: type[Aggregate]) -> set[uuid.UUID]:
    index = uow.deps.records
    if index is not None:
        return index.existing(ids)
    return {i for i in ids if uow.load(cls, i) is not None}  # fakes in unit tests


def _split_new(uow: UnitOfWork, cls: type[ImportedRecord], account_id: int,
               keyed: Iterable[tuple[str, Any]]) -> tuple[list[tuple[str, Any]], int]:
    """(new (key, item) pairs in order, how many were duplicates: within the upload or already stored)."""
    seen: set[str] = set()
    unique: list[tuple[str, Any]] = []
    dup = 0
    for key, item in keyed:
        if key in seen:
            dup += 1
            continue
        seen.add(key)
        unique.append((key, item))
    ids = [record_uuid(cls.kind, account_id, k) for k, _ in unique]
    stored = _existing(uow, ids, cls)
    fresh = [pair for pair, i in zip(unique, ids, strict=True) if i not in stored]
    return fresh, dup + len(unique) - len(fresh)


def _save(uow: UnitOfWork, batch: ImportBatch, records: Sequence[Aggregate]) -> None:
    uow.save(*records, batch)


def _now(uow: UnitOfWork) -> str:
    return uow.deps.clock.now().isoformat()


_PLAIN_ID = re.compile(r"[A-Za-z0-9._:/-]{1,40}")


def _content(t: im.ParsedTrade) -> tuple[Any, ...]:
    """The trade's `TRADE_CONTENT` values (symbol, side, quantity, price: as the import stores them)."""
    return tuple(getattr(t, name) for name in TRADE_CONTENT)


def _trade_id_conflict(t: im.ParsedTrade, first: im.ParsedTrade | None, fields: list[str]) -> DomainError:
    """The refusal of a row reusing a trade id for another trade: the file, the row, the trade id (when it is
    plain: digits, letters, . _ : / -) and which fields differ, never the other cells' values."""
    shown = f"trade id {t.trade_id}" if _PLAIN_ID.fullmatch(t.trade_id) else "its trade id"
    where = f"row {first.row} of {first.file}" if first is not None else "a trade imported earlier"
    which = ", ".join(fields)
    return DomainError(f"{t.file} row {t.row}: {shown} on that trade date is already used by {where} for a "
                       f"different trade (the {which} {'differs' if len(fields) == 1 else 'differ'}); a trade "
                       "id names one trade, so nothing was imported")


def import_tradebook(cmd: im.ImportTradebook, uow: UnitOfWork) -> dict[str, Any]:
    """Trades are grouped by trade date; each date's `TradebookDay` is loaded only when it exists already
    (one indexed query finds which), and appends the keys it does not hold. A key twice is a duplicate when
    it is the same trade (`TRADE_CONTENT`) and refuses the whole upload when it is not."""
    by_day: dict[str, dict[str, im.ParsedTrade]] = {}
    for t in cmd.trades:
        day_trades = by_day.setdefault(t.trade_date, {})
        key = trade_key(t.exchange, t.segment, t.trade_date, t.trade_id)
        first = day_trades.get(key)
        if first is None:
            day_trades[key] = t
        elif differ := trade_differences(_content(first), _content(t)):
            raise _trade_id_conflict(t, first, differ)
    ids = {day: TradebookDay.uuid_for(cmd.account_id, day) for day in by_day}
    stored = _existing(uow, list(ids.values()), TradebookDay)
    batch_id = uow.deps.ids.next_id("import_batch")
    days: list[TradebookDay] = []
    per_file: Counter[str] = Counter()
    imported = 0
    for day, trades in by_day.items():
        agg = uow.load(TradebookDay, ids[day]) if ids[day] in stored else None
        agg = agg if agg is not None else TradebookDay(ids[day])
        try:
            recorded = agg.record_trades(cmd.account_id, batch_id, day, [  # the day keeps the trades it holds
                [k, t.trade_id, t.order_id, t.symbol, t.isin, t.exchange, t.segment, t.series, t.executed_at,
                 t.side, t.quantity, t.price] for k, t in trades.items()])
        except TradeIdConflict as exc:
            raise _trade_id_conflict(trades[exc.key], None, exc.fields) from None
        if not recorded:
            continue
        imported += len(recorded)
        per_file.update(trades[r[0]].file for r in recorded)
        days.append(agg)
    report = im.ImportReport(batch_id, "tradebook", list(cmd.files), cmd.rows_read, imported,
                             len(cmd.trades) - imported, list(cmd.rejected),
                             {"per_file": {f: per_file.get(f, 0) for f in cmd.files},
                              "unmatched_sells": _oversold(by_day)}).to_dict()
    _save(uow, ImportBatch.record(batch_id, cmd.account_id, "tradebook", list(cmd.files), report, _now(uow)), days)
    return report


def _oversold(by_day: dict[str, dict[str, im.ParsedTrade]], limit: int = 100) -> dict[str, Any]:
    """Sells the uploaded files' own buys cannot cover (FIFO, corporate actions aside): a short sell, or
    buys that are not in these files -- perhaps in an earlier upload; `GET /api/analytics/summary`'s
    `unmatched_sells` is over everything imported."""
    fills = [Fill(k, t.symbol, day, f"{t.executed_at}|{t.trade_id:>24}", t.side, t.quantity, t.price)
             for day, trades in by_day.items() for k, t in trades.items()]
    if not any(f.side == "sell" for f in fills):
        return {"count": 0, "quantity": 0.0, "sells": []}
    trade = {k: t for trades in by_day.values() for k, t in trades.items()}
    left = match_fifo(fills).unmatched
    sells = [{"symbol": trade[k].symbol, "trade_date": trade[k].trade_date, "trade_id": trade[k].trade_id,
              "quantity": q} for k, q in left]
    return {"count": len(sells), "quantity": sum(q for _, q in left), "sells": sells[:limit]}


def import_ledger(cmd: im.ImportLedger, uow: UnitOfWork) -> dict[str, Any]:
    occurrences: Counter[tuple[Any, ...]] = Counter()
    keyed = []
    for e in cmd.entries:
        fields = (e.posting_date, e.particulars, e.voucher_type, e.cost_center, e.debit, e.credit, e.balance)
        occurrences[fields] += 1
        keyed.append((content_key(*fields, occurrences[fields]), e))
    fresh, dups = _split_new(uow, ImportedLedgerEntry, cmd.account_id, keyed)
    batch_id = uow.deps.ids.next_id("import_batch")
    records: list[Aggregate] = []
    categories: Counter[str] = Counter()
    for key, e in fresh:
        cat = classify_ledger(e.voucher_type, e.particulars, e.debit, e.credit)
        categories[cat] += 1
        event = LedgerEntryImported(cmd.account_id, batch_id, key, e.posting_date, e.particulars, e.voucher_type,
                                    e.cost_center, e.debit, e.credit, e.balance, cat)
        records.append(ImportedLedgerEntry.create(event, cmd.account_id, key))
    report = im.ImportReport(batch_id, "ledger", [cmd.file], cmd.rows_read, len(fresh), dups, list(cmd.rejected),
                             {"categories": dict(categories)}).to_dict()
    _save(uow, ImportBatch.record(batch_id, cmd.account_id, "ledger", [cmd.file], report, _now(uow)), records)
    return report


def import_cas(cmd: im.ImportCas, uow: UnitOfWork) -> dict[str, Any]:
    occurrences: Counter[tuple[Any, ...]] = Counter()
    keyed = []
    for t in cmd.transactions:
        fields = (t.folio, t.isin or t.scheme, t.date, t.description, t.amount, t.units, t.balance)
        occurrences[fields] += 1
        keyed.append((content_key(*fields, occurrences[fields]), t))
    fresh, dups = _split_new(uow, ImportedMfTransaction, cmd.account_id, keyed)
    statement_key = content_key(cmd.file_type, cmd.period_from, cmd.period_to,
                                json.dumps([cmd.valuations, cmd.holdings], sort_keys=True, default=str))
    new_statement, _ = _split_new(uow, ImportedCasStatement, cmd.account_id, [(statement_key, None)])
    batch_id = uow.deps.ids.next_id("import_batch")
    records: list[Aggregate] = []
    for key, t in fresh:
        event = MfTransactionImported(cmd.account_id, batch_id, key, t.folio, t.amc, t.scheme, t.isin, t.date,
                                      t.description, t.type, t.amount, t.units, t.nav, t.balance)
        records.append(ImportedMfTransaction.create(event, cmd.account_id, key))
    if new_statement and (cmd.valuations or cmd.holdings):
        records.append(ImportedCasStatement.create(CasStatementImported(
            cmd.account_id, batch_id, statement_key, cmd.file_type, cmd.period_from, cmd.period_to,
            list(cmd.valuations), list(cmd.holdings)), cmd.account_id, statement_key))
    rows = len(cmd.transactions) + len(cmd.valuations) + len(cmd.holdings)
    report = im.ImportReport(
        batch_id, "cas", [cmd.file], rows, len(fresh), dups, [],
        {"file_type": cmd.file_type, "period": {"from": cmd.period_from, "to": cmd.period_to}, "pages": cmd.pages,
         "transactions": len(cmd.transactions), "valuations": len(cmd.valuations), "holdings": len(cmd.holdings),
         "statement_imported": bool(new_statement) and bool(cmd.valuations or cmd.holdings)},
    ).to_dict()
    _save(uow, ImportBatch.record(batch_id, cmd.account_id, "cas", [cmd.file], report, _now(uow)), records)
    return report


def record_corporate_action(cmd: im.RecordCorporateAction, uow: UnitOfWork) -> dict[str, Any]:
    """Checked (`corporate_action_symbol`: kind, whole-number ratios 1..1000, ex-date 1990..today IST, an NSE
    symbol) before it can adjust any lot."""
    today = uow.deps.clock.now().astimezone(IST).date()
    symbol = corporate_action_symbol(cmd.symbol, cmd.ex_date, cmd.kind, cmd.ratio_new, cmd.ratio_old, today)
    key = content_key(symbol, cmd.ex_date, cmd.kind, cmd.ratio_new, cmd.ratio_old)
    out = {"symbol": symbol, "ex_date": cmd.ex_date, "kind": cmd.kind, "ratio_new": cmd.ratio_new,
           "ratio_old": cmd.ratio_old}
    fresh, _ = _split_new(uow, CorporateAction, cmd.account_id, [(key, None)])
    if fresh:
        uow.save(CorporateAction.create(CorporateActionRecorded(
            cmd.account_id, key, symbol, cmd.ex_date, cmd.kind, cmd.ratio_new, cmd.ratio_old), cmd.account_id, key))
    return {**out, "recorded": bool(fresh)}
