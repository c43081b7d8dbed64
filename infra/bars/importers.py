"""Importing daily bars: CSV/Parquet files and NSE bhavcopies (Kite Connect's historical API: `infra.kite.historical`).

Every import validates each row and reports the ones it refuses with the file, the line and the
reason, instead of failing the whole batch: prices must be positive with low <= open, close <= high,
volume >= 0, the date a trading day of the calendar, and a (symbol, date) may appear once per
import. Valid rows are merged into the bar store idempotently: importing the same data again reports
every row as unchanged. A file whose layout is not recognised raises `ImportFormatError` before
anything is written.

Recognised file layouts (detected from the header, case-insensitive):

- long bars: ``symbol,date,open,high,low,close,volume[,adj_factor]``;
- one file per symbol: the same without ``symbol``; the symbol is the file name (``INFY.csv``,
  ``INFY.NS.csv``);
- NSE bhavcopy, classic: ``SYMBOL,SERIES,OPEN,HIGH,LOW,CLOSE,LAST,PREVCLOSE,TOTTRDQTY,...,TIMESTAMP``;
- NSE bhavcopy, full (``sec_bhavdata_full``): ``SYMBOL, SERIES, DATE1, ..., OPEN_PRICE, ...,
  TTL_TRD_QNTY``;
- NSE bhavcopy, UDiFF (from July 2024): ``TradDt,...,TckrSymb,SctySrs,OpnPric,HghPric,LwPric,
  ClsPric,...,TtlTradgVol``.

Bhavcopies keep series ``EQ`` only; other series are counted as skipped. Files may be ``.csv``,
``.parquet``, gzip (``.csv.gz``) or zip archives of CSVs (NSE ships bhavcopies zipped). Dates are
ISO (``2024-07-08``, a time part is ignored), ``08-Jul-2024``, ``08-07-2024``, ``08/07/2024`` (day
first, as Indian exports write them) or ``20240708``.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pyarrow.parquet as pq

from domain.calendar import TradingCalendar, nse_calendar
from infra.bars.frames import WriteResult
from infra.bars.store import BarStore
from infra.bars.universes import normalize_symbol

__all__ = [
    "ImportBatch",
    "ImportFormatError",
    "ImportReport",
    "Layout",
    "Rejection",
    "import_csv",
    "parse_row",
]

Progress = Callable[[str, int, int], None]

SUPPORTED_SUFFIXES = (".csv", ".parquet", ".zip", ".gz")


class ImportFormatError(ValueError):
    """A file is not one of the recognised layouts (nothing was imported)."""


class Rejection(NamedTuple):
    file: str
    row: int  # line number in the file (the header is line 1); candle number for Kite
    reason: str


@dataclass
class ImportReport:
    rows_read: int = 0
    imported: int = 0  # new or changed bars
    unchanged: int = 0  # bars already stored with the same values
    rejected: list[Rejection] = field(default_factory=list)
    skipped: int = 0  # rows deliberately ignored: bhavcopy series other than EQ
    updated: int = 0  # of `imported`, bars that replaced different stored values
    files: int = 0

    def add_write(self, result: WriteResult) -> None:
        self.imported += result.inserted + result.updated
        self.updated += result.updated
        self.unchanged += result.unchanged


class _Row(NamedTuple):
    symbol: str
    date: date
    open: float
    high: float
    low: float
    close: float
    volume: float
    adj_factor: float  # NaN when the source does not give one


# -------------------------------------------------------------------- CSV / Parquet / bhavcopy


def import_csv(
    store: BarStore,
    paths: Iterable[str | Path],
    *,
    calendar: TradingCalendar | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import bar files (see the module docstring for layouts); directories are searched recursively."""
    files = _expand(paths)
    if not files:
        raise ImportFormatError("No importable files found (expected .csv, .parquet, .zip or .gz)")
    batch = ImportBatch(calendar or nse_calendar())
    for n, path in enumerate(files):
        if progress:
            progress(path.name, n, len(files))
        for label, records in _open_sources(path):
            batch.report.files += 1
            _read_source(label, records, path.stem, batch)
    if progress:
        progress("writing", len(files), len(files))
    batch.flush(store)
    return batch.report


def _expand(paths: Iterable[str | Path]) -> list[Path]:
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            out.extend(sorted(p for p in path.rglob("*") if p.is_file() and _supported(p)))
        elif path.exists():
            out.append(path)
        else:
            raise ImportFormatError(f"{path}: no such file")
    return out


def _supported(path: Path) -> bool:
    return path.name.lower().endswith(SUPPORTED_SUFFIXES)


Records = Iterator[tuple[int, Mapping[str, Any]]]


def _open_sources(path: Path) -> Iterator[tuple[str, Records]]:
    """(label, records) per CSV inside `path`; records are (line number, row) with a normalised header."""
    name = path.name.lower()
    if name.endswith(".parquet"):
        yield path.name, _parquet_records(path)
    elif name.endswith(".zip"):
        try:
            archive = zipfile.ZipFile(path)
        except zipfile.BadZipFile as exc:
            raise ImportFormatError(f"{path.name}: not a valid zip archive") from exc
        with archive:
            members = [m for m in archive.namelist() if m.lower().endswith(".csv")]
            if not members:
                raise ImportFormatError(f"{path.name}: the archive holds no .csv file")
            for member in members:
                text = archive.read(member).decode("utf-8-sig", errors="replace")
                yield f"{path.name}:{member}", _csv_records(io.StringIO(text), f"{path.name}:{member}")
    elif name.endswith(".gz"):
        try:
            text = gzip.decompress(path.read_bytes()).decode("utf-8-sig", errors="replace")
        except OSError as exc:
            raise ImportFormatError(f"{path.name}: not a valid gzip file") from exc
        yield path.name, _csv_records(io.StringIO(text), path.name)
    else:
        with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
            text = handle.read()
        yield path.name, _csv_records(io.StringIO(text), path.name)


def _csv_records(handle: io.StringIO, label: str) -> Records:
    reader = csv.reader(handle)
    header: list[str] | None = None
    for fields in reader:
        if not any(f.strip() for f in fields):
            continue
        if header is None:
            header = [h.strip() for h in fields]
            if len(header) < 5:
                raise ImportFormatError(f"{label}: the first line is not a bar header ({','.join(header)})")
            yield reader.line_num, {"__header__": header}
            continue
        yield reader.line_num, {h: (fields[i].strip() if i < len(fields) else "") for i, h in enumerate(header) if h}
    if header is None:
        raise ImportFormatError(f"{label}: the file is empty")


def _parquet_records(path: Path) -> Records:
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise ImportFormatError(f"{path.name}: not a readable Parquet file ({exc})") from exc
    # Parquet has no lines: rows are numbered from 1 (the header record is not a row)
    yield 0, {"__header__": list(table.column_names)}
    yield from enumerate(table.to_pylist(), start=1)


@dataclass(frozen=True)
class Layout:
    name: str
    columns: dict[str, str]  # our field -> column name in the file
    series: str | None = None  # column that must equal "EQ"


_GENERIC_ALIASES = {
    "symbol": ("symbol", "tradingsymbol", "ticker"),
    "date": ("date", "timestamp", "datetime", "trade_date"),
    "open": ("open",),
    "high": ("high",),
    "low": ("low",),
    "close": ("close",),
    "volume": ("volume", "vol"),
    "adj_factor": ("adj_factor",),
}
_BHAV_LAYOUTS = (
    Layout(
        "bhavcopy",
        {
            "symbol": "SYMBOL",
            "date": "TIMESTAMP",
            "open": "OPEN",
            "high": "HIGH",
            "low": "LOW",
            "close": "CLOSE",
            "volume": "TOTTRDQTY",
        },
        series="SERIES",
    ),
    Layout(
        "bhavcopy-full",
        {
            "symbol": "SYMBOL",
            "date": "DATE1",
            "open": "OPEN_PRICE",
            "high": "HIGH_PRICE",
            "low": "LOW_PRICE",
            "close": "CLOSE_PRICE",
            "volume": "TTL_TRD_QNTY",
        },
        series="SERIES",
    ),
    Layout(
        "udiff",
        {
            "symbol": "TckrSymb",
            "date": "TradDt",
            "open": "OpnPric",
            "high": "HghPric",
            "low": "LwPric",
            "close": "ClsPric",
            "volume": "TtlTradgVol",
        },
        series="SctySrs",
    ),
)


def _detect(header: Sequence[str], label: str) -> Layout:
    by_upper = {h.upper(): h for h in header}
    for layout in _BHAV_LAYOUTS:
        needed = [*layout.columns.values(), *([layout.series] if layout.series else [])]
        if all(c.upper() in by_upper for c in needed):
            return Layout(
                layout.name,
                {k: by_upper[v.upper()] for k, v in layout.columns.items()},
                by_upper[layout.series.upper()] if layout.series else None,
            )
    by_lower = {h.lower(): h for h in header}
    columns: dict[str, str] = {}
    for ours, aliases in _GENERIC_ALIASES.items():
        for alias in aliases:
            if alias in by_lower:
                columns[ours] = by_lower[alias]
                break
    missing = [c for c in ("date", "open", "high", "low", "close", "volume") if c not in columns]
    if missing:
        raise ImportFormatError(
            f"{label}: unrecognised columns ({', '.join(header)}). Expected symbol,date,open,high,low,close,"
            f"volume[,adj_factor] (symbol optional for one file per symbol), or an NSE bhavcopy"
        )
    return Layout("bars" if "symbol" in columns else "per-symbol", columns)


def _read_source(label: str, records: Records, stem: str, batch: ImportBatch) -> None:
    layout: Layout | None = None
    file_symbol = _symbol_from_filename(stem)
    for line, record in records:
        if layout is None:
            layout = _detect(record["__header__"], label)
            continue
        batch.report.rows_read += 1
        if layout.series is not None and str(record.get(layout.series) or "").strip().upper() != "EQ":
            batch.report.skipped += 1
            continue
        row = parse_row(record, layout, file_symbol)
        if isinstance(row, str):
            batch.reject(label, line, row)
        else:
            batch.add(label, line, row)


def _symbol_from_filename(stem: str) -> str:
    s = normalize_symbol(stem)
    for suffix in (".NS", ".NSE", ".CSV"):
        if s.endswith(suffix):
            s = s[: -len(suffix)]
    return s


def parse_row(record: Mapping[str, Any], layout: Layout, file_symbol: str) -> _Row | str:
    """A validated-for-syntax row, or the reason it cannot be read."""
    cols = layout.columns
    symbol = normalize_symbol(str(record.get(cols["symbol"]) or "")) if "symbol" in cols else file_symbol
    if not symbol:
        return "missing symbol"
    day = _parse_date(record.get(cols["date"]))
    if day is None:
        return f"unreadable date {record.get(cols['date'])!r}"
    values: dict[str, float] = {}
    for name in ("open", "high", "low", "close", "volume", "adj_factor"):
        if name not in cols:
            continue
        raw = record.get(cols[name])
        if name == "adj_factor" and (raw is None or str(raw).strip() == ""):
            continue
        number = _parse_number(raw)
        if number is None:
            return f"unreadable {name} {raw!r}"
        values[name] = number
    return _Row(
        symbol=symbol,
        date=day,
        open=values["open"],
        high=values["high"],
        low=values["low"],
        close=values["close"],
        volume=values["volume"],
        adj_factor=values.get("adj_factor", float("nan")),
    )


_DATE_FORMATS = ("%d-%b-%Y", "%d-%m-%Y", "%d/%m/%Y", "%Y%m%d", "%d-%b-%y", "%Y/%m/%d")


def _parse_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        pass
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


def _parse_number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    text = str(value or "").strip().replace(",", "")
    if not text or text == "-":
        return None
    try:
        return float(text)
    except ValueError:
        return None


# -------------------------------------------------------------------- validation and batching


@dataclass
class ImportBatch:
    """Rows of one import: validated, de-duplicated, then written in one merge."""

    calendar: TradingCalendar
    report: ImportReport = field(default_factory=ImportReport)
    rows: list[_Row] = field(default_factory=list)
    seen: dict[tuple[str, date], str] = field(default_factory=dict)

    def reject(self, label: str, line: int, reason: str) -> None:
        self.report.rejected.append(Rejection(label, line, reason))

    def add(self, label: str, line: int, row: _Row) -> None:
        reason = _check(row, self.calendar)
        if reason is None:
            key = (row.symbol, row.date)
            first = self.seen.get(key)
            if first is not None:
                reason = f"duplicate {row.symbol} {row.date.isoformat()} (first at {first})"
            else:
                self.seen[key] = f"{label} line {line}"
        if reason is not None:
            self.reject(label, line, reason)
        else:
            self.rows.append(row)

    def flush(self, store: BarStore) -> None:
        if not self.rows:
            return
        rows, self.rows = self.rows, []
        columns = list(zip(*rows, strict=True))
        result = store.write(
            {
                "symbol": np.array(columns[0], dtype=np.str_),
                "date": np.array(columns[1], dtype="datetime64[D]"),
                "open": np.array(columns[2], dtype=np.float64),
                "high": np.array(columns[3], dtype=np.float64),
                "low": np.array(columns[4], dtype=np.float64),
                "close": np.array(columns[5], dtype=np.float64),
                "volume": np.rint(np.array(columns[6], dtype=np.float64)).astype(np.int64),
                "adj_factor": np.array(columns[7], dtype=np.float64),
            }
        )
        self.report.add_write(result)
        store.mark_real(columns[0], real=True, dates=columns[1])


def _check(row: _Row, calendar: TradingCalendar) -> str | None:
    o, h, lo, c, v = row.open, row.high, row.low, row.close, row.volume
    if not all(math.isfinite(x) for x in (o, h, lo, c, v)):
        return "non-numeric price or volume"
    if min(o, h, lo, c) <= 0:
        return "non-positive price"
    if lo > min(o, c):
        return f"low {lo:g} is above open/close ({o:g}/{c:g})"
    if h < max(o, c):
        return f"high {h:g} is below open/close ({o:g}/{c:g})"
    if v < 0:
        return f"negative volume {v:g}"
    if not math.isnan(row.adj_factor) and not (math.isfinite(row.adj_factor) and row.adj_factor > 0):
        return f"adj_factor {row.adj_factor:g} is not positive"
    if not calendar.is_trading_day(row.date):
        kind = row.date.strftime("%A") if row.date.weekday() >= 5 else "an exchange holiday"
        return f"{row.date.isoformat()} is not a trading day ({kind})"
    return None
