"""Bars in memory, between Parquet and `BarMatrix`: the columnar `Frame` (rows sorted by (symbol code, day)),
its checks and merge (an idempotent upsert by (symbol, date)), conversions from tables and row mappings, and
the adjusted `View` reads are served from. Pure functions over numpy and pyarrow arrays; the files, the
manifest and the cache are `infra.bars.store`'s."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["SCHEMA", "DateLike", "Frame", "View", "WriteResult", "as_date"]


DateLike = date | datetime | str | np.datetime64


SCHEMA = pa.schema(
    [
        ("symbol", pa.string()),
        ("date", pa.date32()),
        ("open", pa.float64()),
        ("high", pa.float64()),
        ("low", pa.float64()),
        ("close", pa.float64()),
        ("volume", pa.int64()),
        ("adj_factor", pa.float64()),
    ]
)


PRICE_COLUMNS = ("open", "high", "low", "close")


EPOCH = date(1970, 1, 1)


# (symbol code, day) packed in one sortable int64; the offset keeps pre-1970 days non-negative
DAY_OFFSET = 1 << 31


I32 = npt.NDArray[np.int32]


I64 = npt.NDArray[np.int64]


F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class WriteResult:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.inserted or self.updated or self.deleted)


@dataclass
class Frame:
    """Columnar bars sorted by (symbol code, day); `symbols` is the sorted code -> name table."""

    symbols: npt.NDArray[np.str_]
    code: I32
    day: I32
    open: F64
    high: F64
    low: F64
    close: F64
    volume: I64
    adj: F64

    def __len__(self) -> int:
        return int(self.code.size)

    @classmethod
    def empty(cls) -> Frame:
        f = np.empty(0, dtype=np.float64)
        return cls(
            symbols=np.empty(0, dtype=np.str_),
            code=np.empty(0, dtype=np.int32),
            day=np.empty(0, dtype=np.int32),
            open=f,
            high=f,
            low=f,
            close=f,
            volume=np.empty(0, dtype=np.int64),
            adj=f,
        )

    def keys(self) -> I64:
        return pack(self.code, self.day)

    def take(self, idx: npt.NDArray[np.intp] | npt.NDArray[np.bool_]) -> Frame:
        return Frame(
            symbols=self.symbols,
            code=self.code[idx],
            day=self.day[idx],
            open=self.open[idx],
            high=self.high[idx],
            low=self.low[idx],
            close=self.close[idx],
            volume=self.volume[idx],
            adj=self.adj[idx],
        )

    def recode(self, symbols: npt.NDArray[np.str_]) -> Frame:
        """The same rows against a larger sorted symbol table."""
        if len(self.symbols) == len(symbols) and bool(np.all(self.symbols == symbols)):
            return self
        mapping = np.searchsorted(symbols, self.symbols).astype(np.int32)
        out = self.take(np.arange(len(self)))
        out.symbols = symbols
        out.code = mapping[self.code] if len(self) else self.code
        return out

    def sorted(self) -> Frame:
        order = np.argsort(self.keys(), kind="stable")
        return self.take(order)


@dataclass
class View:
    """What reads need, derived once per dataset version: adjusted float arrays and an index."""

    frame: Frame
    key: I64
    index: dict[str, int]
    adj_open: F64
    adj_high: F64
    adj_low: F64
    adj_close: F64
    adj_volume: F64
    raw_volume: F64


def pack(code: npt.NDArray[Any], day: npt.NDArray[Any]) -> I64:
    return (code.astype(np.int64) << 32) + (day.astype(np.int64) + DAY_OFFSET)


def pack_one(code: int, day: int) -> int:
    return (code << 32) + day + DAY_OFFSET


def to_day(value: DateLike) -> int:
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        return (value - EPOCH).days
    if isinstance(value, str):
        return (date.fromisoformat(value.strip()[:10]) - EPOCH).days
    if isinstance(value, np.datetime64):
        return int(value.astype("datetime64[D]").astype(np.int64))
    raise TypeError(f"Not a date: {value!r}")


def from_day(day: int) -> date:
    return EPOCH + timedelta(days=day)


def as_date(value: DateLike) -> date:
    """A date from a `date`, `datetime`, ISO string or numpy datetime64."""
    return from_day(to_day(value))


def years_of(days: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    return days.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970


def select_rows(
    key: I64, codes: npt.NDArray[np.int64], lo_day: int | None, hi_day: int | None
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Row indices of `codes` within [lo_day, hi_day], and the output row each belongs to."""
    lo_off = (lo_day if lo_day is not None else -DAY_OFFSET) + DAY_OFFSET
    hi_off = (hi_day if hi_day is not None else DAY_OFFSET - 1) + DAY_OFFSET
    valid = codes >= 0
    base = np.where(valid, codes, 0) << 32
    lo = np.searchsorted(key, base + lo_off, side="left")
    hi = np.searchsorted(key, base + hi_off, side="right")
    lengths = np.where(valid, hi - lo, 0).astype(np.int64)
    total = int(lengths.sum())
    row_of = np.repeat(np.arange(codes.size, dtype=np.int64), lengths)
    # consecutive runs lo[i] .. hi[i]-1, concatenated without a Python loop
    run_start = np.cumsum(lengths) - lengths
    idx = np.arange(total, dtype=np.int64) + np.repeat(lo.astype(np.int64) - run_start, lengths)
    return idx, row_of


def sector_tuple(names: Sequence[str], sectors: Mapping[str, str] | Sequence[str] | None) -> tuple[str, ...]:
    if sectors is None:
        return ()
    if isinstance(sectors, Mapping):
        return tuple(sectors.get(s, "Unknown") for s in names)
    out = tuple(sectors)
    if len(out) != len(names):
        raise ValueError("sectors must have one entry per symbol")
    return out


def build_view(frame: Frame) -> View:
    raw_volume = frame.volume.astype(np.float64)
    if bool(np.all(frame.adj == 1.0)):
        adj = (frame.open, frame.high, frame.low, frame.close, raw_volume)
    else:
        adj = (
            frame.open * frame.adj,
            frame.high * frame.adj,
            frame.low * frame.adj,
            frame.close * frame.adj,
            raw_volume / frame.adj,
        )
    return View(
        frame=frame,
        key=frame.keys(),
        index={str(s): i for i, s in enumerate(frame.symbols.tolist())},
        adj_open=adj[0],
        adj_high=adj[1],
        adj_low=adj[2],
        adj_close=adj[3],
        adj_volume=adj[4],
        raw_volume=raw_volume,
    )


def frame_from_input(data: Any) -> Frame:
    if isinstance(data, pa.RecordBatch):
        table = pa.Table.from_batches([data])
    elif isinstance(data, pa.Table):
        table = data
    elif isinstance(data, Mapping):
        table = pa.table({k: as_column(v) for k, v in data.items()})
    else:
        table = rows_to_table(data)
    return frame_from_table(table, validate=True)


def rows_to_table(rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    columns: dict[str, list[Any]] = {}
    for n, row in enumerate(rows):
        for key, value in row.items():
            name = key.lower()
            if name == "date" and value is not None:
                value = from_day(to_day(value))
            columns.setdefault(name, [None] * n).append(value)
        for values in columns.values():
            if len(values) <= n:
                values.append(None)
    typed = {
        name: pa.array(values, pa.date32() if name == "date" else (pa.string() if name == "symbol" else None))
        for name, values in columns.items()
    }
    if not typed:
        return SCHEMA.empty_table()
    return pa.table(typed)


def as_column(values: Any) -> pa.Array:
    if isinstance(values, pa.Array | pa.ChunkedArray):
        return values
    if isinstance(values, np.ndarray):
        if values.dtype.kind in "US":
            return pa.array(values.astype(str).tolist(), pa.string())
        return pa.array(values)
    return pa.array(list(values))


def frame_from_table(table: pa.Table, *, validate: bool) -> Frame:
    """Columns -> a sorted `Frame`; adj_factor NaN marks "not given" (see `merge_frames`)."""
    names = {n.lower(): n for n in table.column_names}
    required = ("symbol", "date", *PRICE_COLUMNS, "volume")
    missing = [c for c in required if c not in names]
    if missing:
        raise ValueError(f"Bars need columns {', '.join(required)}; missing {', '.join(missing)}")
    n = table.num_rows
    if n == 0:
        return Frame.empty()

    def col(name: str) -> pa.Array:
        c = table.column(names[name]).combine_chunks()
        if validate and c.null_count and name != "adj_factor":
            raise ValueError(f"Column {name} has {c.null_count} empty value(s)")
        return c

    symbol_col = col("symbol")
    if pa.types.is_dictionary(symbol_col.type):
        encoded = symbol_col.dictionary_decode() if not pa.types.is_string(symbol_col.type.value_type) else symbol_col
        if encoded is not symbol_col:
            encoded = pc.dictionary_encode(encoded.cast(pa.string()))
    else:
        encoded = pc.dictionary_encode(symbol_col.cast(pa.string()))
    dictionary = np.array(encoded.dictionary.to_pylist(), dtype=np.str_)
    order = np.argsort(dictionary, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    codes = rank[encoded.indices.to_numpy(zero_copy_only=False)].astype(np.int32)
    symbols = dictionary[order]

    date_col = col("date")
    if not pa.types.is_date32(date_col.type):
        if pa.types.is_timestamp(date_col.type) and date_col.type.tz is not None:
            # the trading day is the exchange-local date: 00:00+05:30 is still that day in India
            date_col = pc.local_timestamp(date_col).cast(pa.date32())
        elif pa.types.is_timestamp(date_col.type) or pa.types.is_date64(date_col.type):
            date_col = date_col.cast(pa.date32())
        else:
            date_col = pc.cast(pc.utf8_slice_codeunits(date_col.cast(pa.string()), 0, 10), pa.date32())
    day = date_col.cast(pa.int32()).to_numpy(zero_copy_only=False).astype(np.int32)

    def floats(name: str) -> F64:
        return np.asarray(col(name).cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)

    o, h, lo, c = (floats(name) for name in PRICE_COLUMNS)
    vol_f = floats("volume")
    adj = floats("adj_factor") if "adj_factor" in names else np.full(n, np.nan)
    if validate:
        check_rows(symbols, codes, day, o, h, lo, c, vol_f, adj)
    frame = Frame(
        symbols=symbols,
        code=codes,
        day=day,
        open=o,
        high=h,
        low=lo,
        close=c,
        volume=np.rint(vol_f).astype(np.int64),
        adj=adj,
    ).sorted()
    if validate:
        keys = frame.keys()
        dup = np.flatnonzero(keys[1:] == keys[:-1])
        if dup.size:
            i = int(dup[0])
            raise ValueError(
                f"Duplicate bar for {frame.symbols[frame.code[i]]} on {from_day(int(frame.day[i])).isoformat()}"
            )
    return frame


def check_rows(  # noqa: PLR0913
    symbols: npt.NDArray[np.str_], codes: I32, day: I32, o: F64, h: F64, lo: F64, c: F64, v: F64, adj: F64
) -> None:
    if any(not str(s).strip() for s in symbols):
        raise ValueError("Empty symbol in bars")
    problems = (
        (~np.isfinite(o) | ~np.isfinite(h) | ~np.isfinite(lo) | ~np.isfinite(c), "non-numeric price"),
        ((o <= 0) | (h <= 0) | (lo <= 0) | (c <= 0), "non-positive price"),
        ((lo > np.minimum(o, c)) | (h < np.maximum(o, c)) | (lo > h), "low/high inconsistent with open/close"),
        (~np.isfinite(v) | (v < 0), "negative or missing volume"),
        (~np.isnan(adj) & (~np.isfinite(adj) | (adj <= 0)), "adj_factor must be positive"),
    )
    for bad, reason in problems:
        hits = np.flatnonzero(bad)
        if hits.size:
            i = int(hits[0])
            raise ValueError(
                f"Invalid bar for {symbols[codes[i]]} on {from_day(int(day[i])).isoformat()}: {reason} "
                f"({hits.size} row(s) affected)"
            )


def merge_frames(existing: Frame, incoming: Frame, *, replace: bool) -> tuple[Frame, WriteResult, set[int]]:
    if len(incoming) == 0:
        return existing, WriteResult(), set()
    symbols = np.union1d(existing.symbols, incoming.symbols).astype(np.str_)
    ex = existing.recode(symbols)
    new = incoming.recode(symbols)
    ex_key, new_key = ex.keys(), new.keys()
    n_ex = len(ex)
    pos = np.searchsorted(ex_key, new_key)
    pos_c = np.minimum(pos, max(n_ex - 1, 0))
    found = (ex_key[pos_c] == new_key) if n_ex else np.zeros(len(new), dtype=np.bool_)
    # an adj_factor that was not given keeps the stored one (re-imports never undo a split)
    kept = np.where(found, ex.adj[pos_c], 1.0) if n_ex else np.ones(len(new))
    adj = np.where(np.isnan(new.adj), kept, new.adj)
    if n_ex:
        same = (
            found
            & (ex.open[pos_c] == new.open)
            & (ex.high[pos_c] == new.high)
            & (ex.low[pos_c] == new.low)
            & (ex.close[pos_c] == new.close)
            & (ex.volume[pos_c] == new.volume)
            & (ex.adj[pos_c] == adj)
        )
    else:
        same = np.zeros(len(new), dtype=np.bool_)
    updated = found & ~same
    inserted = ~found
    new.adj = adj

    merged = ex
    if updated.any():
        merged = ex.take(np.arange(n_ex))
        at = pos_c[updated]
        for name in ("open", "high", "low", "close", "volume", "adj"):
            column = getattr(merged, name).copy()
            column[at] = getattr(new, name)[updated]
            setattr(merged, name, column)
    deleted = np.zeros(n_ex, dtype=np.bool_)
    if replace and n_ex:
        matched = np.zeros(n_ex, dtype=np.bool_)
        matched[pos_c[found]] = True
        deleted = np.isin(ex.code, np.unique(new.code)) & ~matched
        if deleted.any():
            merged = merged.take(~deleted)
    if inserted.any():
        add = new.take(inserted)
        merged = concat_frames(merged, add).sorted()
    touched = set(years_of(new.day[updated | inserted]).tolist()) | set(years_of(ex.day[deleted]).tolist())
    result = WriteResult(
        inserted=int(inserted.sum()),
        updated=int(updated.sum()),
        unchanged=int(same.sum()),
        deleted=int(deleted.sum()),
    )
    if result.changed:
        merged = compact_symbols(merged)
    return merged, result, touched


def concat_frames(a: Frame, b: Frame) -> Frame:
    return Frame(
        symbols=a.symbols,
        code=np.concatenate([a.code, b.code]),
        day=np.concatenate([a.day, b.day]),
        open=np.concatenate([a.open, b.open]),
        high=np.concatenate([a.high, b.high]),
        low=np.concatenate([a.low, b.low]),
        close=np.concatenate([a.close, b.close]),
        volume=np.concatenate([a.volume, b.volume]),
        adj=np.concatenate([a.adj, b.adj]),
    )


def compact_symbols(frame: Frame) -> Frame:
    """Drop symbol-table entries that no longer have rows (after a replace)."""
    used = np.unique(frame.code)
    if used.size == len(frame.symbols):
        return frame
    out = frame.take(np.arange(len(frame)))
    out.symbols = frame.symbols[used]
    out.code = np.searchsorted(used, frame.code).astype(np.int32)
    return out
