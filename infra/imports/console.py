"""Zerodha Console exports: tradebooks (XLSX or CSV) and ledgers (XLSX or CSV), read defensively.

- A file is recognised by its bytes, never by its name: an XLSX is a ZIP holding `xl/workbook.xml`; a
  CSV is UTF-8 text without NUL bytes. Anything else (a renamed executable, a PDF) is refused.
- Before openpyxl opens an XLSX, the archive's directory is checked: entry count, total uncompressed
  size and compression ratio (a zip bomb is refused without inflating anything). openpyxl parses the
  XML through defusedxml (installed), so entity expansion (an XML bomb) is refused too.
- The header row is found by its column names within the first rows (the preamble length varies
  between exports; data may start in column B); Title Case and snake_case headers are both accepted.
- Rows: blank rows and footer/summary rows (no trade id, no trade type) are ignored; rows of other
  segments (F&O, currency, commodity) are reported as rejected; a row that claims to be a trade but
  cannot be read makes the whole upload fail, naming the file, the row, the column and the reason, never
  the cell's value (nothing is imported).
"""

from __future__ import annotations

import csv
import functools
import io
import math
import operator
import re
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from commands.imports_messages import ParsedLedgerEntry, ParsedTrade
from domain.errors import DomainError

HEADER_SCAN_ROWS = 40
MAX_ZIP_ENTRIES = 500
MAX_UNCOMPRESSED = 400 * 1024 * 1024
MAX_RATIO = 250  # uncompressed / compressed, for entries over 1 MB
EXCEL_EPOCH = date(1899, 12, 30)


class UploadError(DomainError):
    """A file that is not what it claims, too large or malformed (400, nothing imported)."""


# ---------------------------------------------------------------------------------------------- sniffing


def sniff(data: bytes) -> str:
    """'xlsx', 'pdf', 'csv' or 'unknown', from the content."""
    head = data[:8]
    if head.startswith(b"PK\x03\x04"):
        return "xlsx"
    if b"%PDF-" in data[:1024]:
        return "pdf"
    if head.startswith((b"MZ", b"\x7fELF", b"\xca\xfe\xba\xbe", b"\xcf\xfa\xed\xfe", b"#!")):
        return "unknown"
    sample = data[:65536]
    if b"\x00" in sample:
        return "unknown"
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(sample) - 4:  # a multi-byte character cut at the end of the sample is fine
            return "unknown"
    return "csv"


def check_xlsx_archive(name: str, data: bytes) -> None:
    """Refuse an archive that is not a workbook or would inflate beyond the limits."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError) as exc:
        raise UploadError(f"{name}: not a valid XLSX file (the archive cannot be read)") from exc
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_ZIP_ENTRIES:
            raise UploadError(f"{name}: refused: the archive holds {len(infos)} entries (at most {MAX_ZIP_ENTRIES})")
        total = sum(i.file_size for i in infos)
        if total > MAX_UNCOMPRESSED:
            raise UploadError(f"{name}: refused: the archive would inflate to {total // 2**20} MB "
                              f"(at most {MAX_UNCOMPRESSED // 2**20} MB)")
        for i in infos:
            if i.file_size > 2**20 and i.file_size > MAX_RATIO * max(i.compress_size, 1):
                ratio = i.file_size // max(i.compress_size, 1)
                raise UploadError(f"{name}: refused: {i.filename} is compressed {ratio} times (a zip bomb?)")
        names = {i.filename for i in infos}
        if "xl/workbook.xml" not in names:
            raise UploadError(f"{name}: not an XLSX workbook (no xl/workbook.xml in the archive)")


def _refusal(name: str, exc: Exception) -> UploadError:
    from defusedxml import DefusedXmlException

    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, DefusedXmlException):
        cause = cause.__cause__ or cause.__context__
    if cause is not None:
        return UploadError(f"{name}: refused: the workbook's XML declares entities or a DTD (an XML bomb?)")
    return UploadError(f"{name}: not a valid XLSX workbook ({type(exc).__name__}: {str(exc)[:120]})")


def _refuse_dtds(name: str, zf: zipfile.ZipFile) -> None:
    """Refuse any XML part that declares a DTD (entities: an XML bomb). A DTD can only come before the root
    element, so defusedxml parses each part up to its first element and no further."""
    from defusedxml import DefusedXmlException
    from defusedxml import ElementTree as SafeET

    for info in zf.infolist():
        if not info.filename.endswith((".xml", ".rels", ".vml")):
            continue
        with zf.open(info) as fh:
            try:
                for _ in SafeET.iterparse(fh, events=("start",), forbid_dtd=True):
                    break
            except DefusedXmlException as exc:
                raise UploadError(f"{name}: refused: the workbook's XML declares entities or a DTD "
                                  "(an XML bomb?)") from exc


def _xlsx_rows(name: str, data: bytes) -> Iterator[tuple[int, list[Any]]]:
    """The first sheet's rows as plain values (row numbers as Excel shows them), read with calamine (a Rust
    reader: ~2 s for a 100,000-row tradebook, where openpyxl took 49 s). Its XML reader does not expand
    entities, and the archive and DTD checks run first."""
    from python_calamine import CalamineWorkbook

    check_xlsx_archive(name, data)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            _refuse_dtds(name, zf)
        wb = CalamineWorkbook.from_filelike(io.BytesIO(data))
        if not wb.sheet_names:
            raise UploadError(f"{name}: the workbook has no sheet")
        rows = wb.get_sheet_by_index(0).to_python(skip_empty_area=False)
    except UploadError:
        raise
    except Exception as exc:  # a broken or hostile workbook raises many types
        raise _refusal(name, exc) from exc
    return ((n, cells) for n, cells in enumerate(rows, start=1))


def _csv_rows(name: str, data: bytes) -> Iterator[tuple[int, list[Any]]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UploadError(f"{name}: not UTF-8 text (export the tradebook as CSV or XLSX from Console)") from exc
    reader = csv.reader(io.StringIO(text))
    try:
        for n, row in enumerate(reader, start=1):
            yield n, list(row)
    except csv.Error as exc:
        raise UploadError(f"{name}: not a valid CSV file ({exc})") from exc


def table_rows(name: str, data: bytes, what: str) -> Iterator[tuple[int, list[Any]]]:
    kind = sniff(data)
    if kind == "xlsx":
        return _xlsx_rows(name, data)
    if kind == "csv":
        return _csv_rows(name, data)
    raise UploadError(f"{name}: not a {what} (expected an XLSX or CSV export from Zerodha Console)")


# ---------------------------------------------------------------------------------------------- values


def canon(value: Any) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(value or "").strip().lower()).strip("_")


def text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def number(value: Any) -> float | None:
    """A number from a cell: numbers, '1,234.50', '(12.00)' for negatives; None when empty."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError("is not a number")
    if isinstance(value, int | float):
        v = float(value)
    else:
        s = str(value).strip().replace(",", "").replace("\u20b9", "").replace("INR", "").strip()
        if not s or s in ("-", "--"):
            return None
        neg = s.startswith("(") and s.endswith(")")
        try:
            v = float(s.strip("()"))
        except ValueError:
            raise ValueError("is not a number") from None  # float()'s message would repeat the cell
        v = -v if neg else v
    if not math.isfinite(v):
        raise ValueError("is not a finite number")
    return v


# Value errors say what is wrong, never what the cell held (the caller names the column and the row).
_NOT_A_DATE = "is not a date (day first: 2024-07-08, 08-07-2024, 08/07/2024 or 08-Jul-2024)"
_DATE_FORMATS = ("%Y-%m-%d", "%d-%m-%Y", "%d/%m/%Y", "%Y/%m/%d", "%d-%b-%Y", "%d %b %Y", "%d-%b-%y", "%d.%m.%Y")


def to_date(value: Any) -> str:
    """ISO date from a datetime, an Excel serial number or a string (ISO, dd-mm-yyyy, dd/mm/yyyy, dd-Mon-yyyy)."""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int | float) and not isinstance(value, bool):
        if 1 <= value < 2958466:
            return (EXCEL_EPOCH + timedelta(days=int(value))).isoformat()
        raise ValueError(_NOT_A_DATE)
    s = str(value or "").strip()
    if not s:
        raise ValueError("is empty")
    return _date_text(s)


@functools.lru_cache(maxsize=4096)
def _date_text(s: str) -> str:
    """(Cached: a tradebook repeats each date many times.)"""
    head = re.split(r"[T ]\d{1,2}:\d{2}", s, maxsplit=1)[0].strip()
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(head, fmt).date().isoformat()
        except ValueError:
            continue
    raise ValueError(_NOT_A_DATE)


def to_timestamp(value: Any, day: str) -> str:
    """ISO timestamp (no offset, IST) from a datetime, a string or a time of day."""
    if value is None or value == "":
        return ""
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat(timespec="seconds")
    if hasattr(value, "hour") and hasattr(value, "minute"):  # a time
        return f"{day}T{value.isoformat()}"[:19]
    if isinstance(value, int | float) and not isinstance(value, bool):  # an Excel serial (date + time fraction)
        whole = int(value)
        secs = round((value - whole) * 86400)
        d = (EXCEL_EPOCH + timedelta(days=whole)).isoformat() if whole >= 1 else day
        return f"{d}T{secs // 3600:02d}:{secs % 3600 // 60:02d}:{secs % 60:02d}"
    s = str(value).strip().replace(" ", "T", 1)
    try:  # ISO, the usual case (a bare time of day is not ISO here: it raises)
        return datetime.fromisoformat(s[:19]).isoformat(timespec="seconds")
    except ValueError:
        pass
    if re.fullmatch(r"\d{2}:\d{2}(:\d{2})?", s.replace("T", "")):
        return f"{day}T{s}"
    try:
        return datetime.strptime(s[:19], "%d-%m-%YT%H:%M:%S").isoformat(timespec="seconds")
    except ValueError:
        raise ValueError("is not a timestamp (2024-07-08T09:15:32, 08-07-2024 09:15:32 or 09:15:32)") from None


# ---------------------------------------------------------------------------------------------- header detection


@dataclass
class Header:
    row: int
    columns: dict[str, int]  # canonical name -> column index


_TRADE_ALIASES = {
    "symbol": "symbol", "tradingsymbol": "symbol", "scrip": "symbol", "isin": "isin", "trade_date": "trade_date",
    "date": "trade_date", "exchange": "exchange", "segment": "segment", "series": "series",
    "trade_type": "trade_type", "type": "trade_type", "buy_sell": "trade_type", "auction": "auction",
    "quantity": "quantity", "qty": "quantity", "price": "price", "trade_price": "price", "trade_id": "trade_id",
    "order_id": "order_id", "order_execution_time": "order_execution_time", "execution_time": "order_execution_time",
    "expiry_date": "expiry_date",
}
_LEDGER_ALIASES = {
    "particulars": "particulars", "posting_date": "posting_date", "date": "posting_date",
    "cost_center": "cost_center", "voucher_type": "voucher_type", "debit": "debit", "credit": "credit",
    "net_balance": "balance", "balance": "balance", "closing_balance": "balance",
}


def find_header(rows: Iterator[tuple[int, list[Any]]], aliases: dict[str, str], required: Sequence[str],
                name: str, what: str) -> Header:
    for n, cells in rows:
        if n > HEADER_SCAN_ROWS:
            break
        cols: dict[str, int] = {}
        for i, c in enumerate(cells):
            key = aliases.get(canon(c))
            if key is not None and key not in cols:
                cols[key] = i
        if all(r in cols for r in required):
            return Header(n, cols)
    raise UploadError(f"{name}: no {what} header row found in the first {HEADER_SCAN_ROWS} rows "
                      f"(expected columns {', '.join(required)})")


def _cell(cells: list[Any], h: Header, key: str) -> Any:
    i = h.columns.get(key)
    return cells[i] if i is not None and i < len(cells) else None


def _blank(cells: list[Any]) -> bool:
    return all(c is None or (isinstance(c, str) and not c.strip()) for c in cells)


# ---------------------------------------------------------------------------------------------- tradebook


@dataclass
class TradebookFile:
    rows_read: int
    trades: list[ParsedTrade]
    rejected: list[dict[str, Any]]
    ignored: int


_EQUITY_SEGMENTS = {"", "EQ", "EQUITY", "NSE_EQ", "BSE_EQ"}


_TRADE_FIELDS = ("trade_id", "trade_type", "segment", "symbol", "trade_date", "quantity", "price",
                 "order_execution_time", "exchange", "order_id", "isin", "series")


def _picker(h: Header, keys: Sequence[str]) -> Callable[[list[Any]], tuple[Any, ...]]:
    """A function giving a row's cells of `keys` in that order (None for columns the file lacks or a row
    is too short for)."""
    width = max(h.columns.values()) + 1
    getter = operator.itemgetter(*[h.columns.get(k, width) for k in keys])  # index `width`: always None
    pad = [None] * (width + 1)

    def pick(cells: list[Any]) -> tuple[Any, ...]:
        return getter([*cells[:width], *pad[min(len(cells), width):]])  # type: ignore[no-any-return]

    return pick


def parse_tradebook(name: str, data: bytes) -> TradebookFile:
    rows = table_rows(name, data, "tradebook")
    h = find_header(rows, _TRADE_ALIASES, ("symbol", "trade_date", "trade_type", "quantity", "price", "trade_id"),
                    name, "tradebook")
    pick = _picker(h, _TRADE_FIELDS)
    out = TradebookFile(0, [], [], 0)
    for n, cells in rows:
        values = pick(cells)
        trade_id = text(values[0])
        side_raw = text(values[1]).lower()
        if not trade_id and not side_raw:
            if not _blank(cells):
                out.ignored += 1  # a footer or summary row
            continue
        out.rows_read += 1
        segment = text(values[2]).upper()
        if segment not in _EQUITY_SEGMENTS:
            out.rejected.append({"file": name, "row": n,
                                 "reason": f"segment {segment}: only equity trades are imported"})
            continue
        try:
            out.trades.append(_trade(name, n, values, trade_id, side_raw, segment or "EQ"))
        except ValueError as exc:
            raise UploadError(f"{name} row {n}: {exc}; nothing was imported") from None
    return out


_SIDES = {"buy": "buy", "b": "buy", "sell": "sell", "s": "sell"}


def _column(column: str, read: Callable[..., Any], *args: Any) -> Any:
    """`read(*args)`, its ValueError prefixed with the column it read (the message never holds the cell)."""
    try:
        return read(*args)
    except ValueError as exc:
        raise ValueError(f"{column} {exc}") from None


def _trade(name: str, n: int, values: tuple[Any, ...], trade_id: str, side_raw: str, segment: str) -> ParsedTrade:
    """One trade row; a ValueError names the column that is wrong and why, never the cell's value."""
    _, _, _, raw_symbol, raw_date, raw_qty, raw_price, raw_time, raw_exchange, order_id, isin, series = values
    symbol = text(raw_symbol).upper()
    if not symbol:
        raise ValueError("symbol is empty")
    if not trade_id:
        raise ValueError("trade_id is empty")
    side = _SIDES.get(side_raw)
    if side is None:
        raise ValueError("trade_type is neither buy nor sell (buy, b, sell or s)")
    day = _column("trade_date", to_date, raw_date)
    qty = _column("quantity", number, raw_qty)
    if qty is None or qty <= 0:
        raise ValueError("quantity is not a positive number")
    price = _column("price", number, raw_price)
    if price is None or price < 0:
        raise ValueError("price is not a number >= 0")
    executed = _column("order_execution_time", to_timestamp, raw_time, day)
    exchange = text(raw_exchange).upper() or "NSE"
    return ParsedTrade(name, n, trade_id, text(order_id), symbol, text(isin).upper(), exchange, segment,
                       text(series).upper(), day, executed, side, qty, price)


# ---------------------------------------------------------------------------------------------- ledger


@dataclass
class LedgerFile:
    rows_read: int
    entries: list[ParsedLedgerEntry]
    rejected: list[dict[str, Any]]
    opening_balance: float | None
    closing_balance: float | None


def parse_ledger(name: str, data: bytes) -> LedgerFile:
    rows = table_rows(name, data, "ledger")
    h = find_header(rows, _LEDGER_ALIASES, ("particulars", "posting_date", "debit", "credit"), name, "ledger")
    out = LedgerFile(0, [], [], None, None)
    for n, cells in rows:
        if _blank(cells):
            continue
        particulars = text(_cell(cells, h, "particulars"))
        low = particulars.lower()
        try:
            balance = number(_cell(cells, h, "balance"))
        except ValueError:
            raise UploadError(f"{name} row {n}: the balance is not a number; nothing was imported") from None
        if low.startswith("opening balance"):
            out.opening_balance = balance
            continue
        if low.startswith("closing balance"):
            out.closing_balance = balance
            continue
        raw_date = _cell(cells, h, "posting_date")
        if raw_date in (None, "") and not particulars:
            continue  # a footer line
        out.rows_read += 1
        try:
            day = _column("posting_date", to_date, raw_date)
            debit = _column("debit", number, _cell(cells, h, "debit")) or 0.0
            credit = _column("credit", number, _cell(cells, h, "credit")) or 0.0
        except ValueError as exc:
            raise UploadError(f"{name} row {n}: {exc}; nothing was imported") from None
        if debit < 0 or credit < 0:
            raise UploadError(f"{name} row {n}: debit and credit must not be negative; nothing was imported")
        out.entries.append(ParsedLedgerEntry(n, day, particulars, text(_cell(cells, h, "voucher_type")),
                                             text(_cell(cells, h, "cost_center")), round(debit, 2), round(credit, 2),
                                             None if balance is None else round(balance, 2)))
    return out
