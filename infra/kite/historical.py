"""Importing daily bars from Kite Connect's historical API into the bar store, through the rows' checks of
`infra.bars.importers` (every candle validated; refused ones reported with their number).

Requests span at most `KITE_MAX_DAYS` days and are spaced `KITE_MIN_INTERVAL` seconds apart; the store is
written every few symbols, so a failure keeps what was imported. The client is anything with the two calls
of ``kiteconnect.KiteConnect`` used here, which this module does not import (it pulls in Twisted)."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from domain.calendar import TradingCalendar, nse_calendar
from infra.bars.importers import ImportBatch, ImportReport, Layout, Progress, parse_row
from infra.bars.store import BarStore
from infra.bars.universes import INDEX_NAMES, normalize_symbol

__all__ = ["KiteHistoricalClient", "KiteImportError", "import_kite", "resolve_tokens"]

KITE_MAX_DAYS = 2000  # Kite serves at most 2000 days of daily candles per request
KITE_MIN_INTERVAL = 0.35  # seconds between historical requests: Kite allows 3 per second
_FLUSH_EVERY = 10  # symbols per store write during a Kite import (progress survives a failure)


class KiteImportError(RuntimeError):
    """Kite refused the session or kept failing: the import stopped (rows so far are kept)."""


class KiteHistoricalClient(Protocol):
    """The two calls of ``kiteconnect.KiteConnect`` the importer uses."""

    def instruments(self, exchange: str | None = None) -> list[dict[str, Any]]: ...

    def historical_data(
        self,
        instrument_token: int,
        from_date: Any,
        to_date: Any,
        interval: str,
        continuous: bool = False,
        oi: bool = False,
    ) -> list[dict[str, Any]]: ...


def resolve_tokens(
    instruments: Iterable[Mapping[str, Any]], symbols: Iterable[str]
) -> tuple[dict[str, int], list[str]]:
    """Map our symbols to NSE instrument tokens: equities by tradingsymbol (instrument_type EQ,
    segment NSE), the bar store's index symbols (``NIFTY50``) via their exchange names
    (``NIFTY 50``, segment INDICES). Returns (tokens, unknown symbols)."""
    equities: dict[str, int] = {}
    indices: dict[str, int] = {}
    for ins in instruments:
        if str(ins.get("exchange", "")).upper() != "NSE":
            continue
        name = str(ins.get("tradingsymbol", "")).strip().upper()
        segment = str(ins.get("segment", "")).upper()
        if segment == "INDICES":
            indices[name] = int(ins["instrument_token"])
        elif segment == "NSE" and str(ins.get("instrument_type", "")).upper() == "EQ":
            equities[name] = int(ins["instrument_token"])
    tokens: dict[str, int] = {}
    unknown: list[str] = []
    for raw in symbols:
        symbol = normalize_symbol(raw)
        index_name = INDEX_NAMES.get(symbol, symbol)
        token = equities.get(symbol) or indices.get(index_name) or indices.get(symbol)
        if token is None:
            unknown.append(symbol)
        else:
            tokens[symbol] = token
    return tokens, unknown


def _chunks(start: date, end: date, max_days: int) -> Iterator[tuple[date, date]]:
    cursor = start
    while cursor <= end:
        stop = min(cursor + timedelta(days=max_days - 1), end)
        yield cursor, stop
        cursor = stop + timedelta(days=1)


def import_kite(  # noqa: PLR0913
    store: BarStore,
    kite_client: KiteHistoricalClient,
    symbols: Iterable[str],
    start: date,
    end: date,
    instruments: Iterable[Mapping[str, Any]] | None = None,
    *,
    calendar: TradingCalendar | None = None,
    progress: Progress | None = None,
    min_interval: float = KITE_MIN_INTERVAL,
    max_days: int = KITE_MAX_DAYS,
) -> ImportReport:
    """Download daily candles from Kite Connect and merge them into the store.

    Tokens come from `instruments` (a pre-fetched ``kite.instruments("NSE")``) or are fetched.
    Requests span at most `max_days` days and are spaced `min_interval` seconds apart (Kite's
    historical API allows 3 requests a second). A symbol Kite does not list, or whose download
    fails, is reported in `rejected` (row 0) and the others continue; a rejected session (token
    or permission error) or repeated failures stop the import with `KiteImportError`.
    """
    if end < start:
        raise ValueError("end must not be before start")
    wanted = list(dict.fromkeys(normalize_symbol(s) for s in symbols))
    if not wanted:
        raise ValueError("No symbols to import")
    batch = ImportBatch(calendar or nse_calendar())
    if instruments is not None:
        listing = list(instruments)
    else:
        try:
            listing = _kite_call(lambda: kite_client.instruments("NSE"))
        except KiteImportError:
            raise
        except Exception as exc:
            raise KiteImportError(f"Could not fetch the NSE instrument list from Kite: {exc}") from exc
    tokens, unknown = resolve_tokens(listing, wanted)
    for symbol in unknown:
        batch.reject(f"kite:{symbol}", 0, f"NSE instrument list has no equity or index {symbol}")

    last_request = 0.0
    failures_in_a_row = 0
    todo = [s for s in wanted if s in tokens]
    for n, symbol in enumerate(todo):
        if progress:
            progress(symbol, n, len(todo))
        label = f"kite:{symbol}"
        candles: list[dict[str, Any]] = []
        try:
            for chunk_start, chunk_end in _chunks(start, end, max_days):
                wait = min_interval - (time.monotonic() - last_request)
                if wait > 0:
                    time.sleep(wait)
                last_request = time.monotonic()
                candles.extend(
                    _kite_call(
                        functools.partial(
                            kite_client.historical_data,
                            tokens[symbol],
                            datetime(chunk_start.year, chunk_start.month, chunk_start.day, 0, 0, 0),
                            datetime(chunk_end.year, chunk_end.month, chunk_end.day, 23, 59, 59),
                            "day",
                        )
                    )
                )
        except KiteImportError:
            batch.flush(store)
            raise
        except Exception as exc:
            failures_in_a_row += 1
            batch.reject(label, 0, f"download failed: {exc}")
            if failures_in_a_row >= 3:
                batch.flush(store)
                raise KiteImportError(f"Kite failed for 3 symbols in a row, stopping (last error: {exc})") from exc
            continue
        failures_in_a_row = 0
        for i, candle in enumerate(candles, start=1):
            batch.report.rows_read += 1
            row = parse_row({**candle, "symbol": symbol}, _KITE_LAYOUT, symbol)
            if isinstance(row, str):
                batch.reject(label, i, row)
            else:
                batch.add(label, i, row)
        if (n + 1) % _FLUSH_EVERY == 0:
            batch.flush(store)
    if progress:
        progress("writing", len(todo), len(todo))
    batch.flush(store)
    return batch.report


_KITE_LAYOUT = Layout("kite", {k: k for k in ("symbol", "date", "open", "high", "low", "close", "volume")})


def _kite_call(call: Callable[[], Any]) -> Any:
    """Run a Kite call, turning a rejected session into `KiteImportError` (checked by class name so
    this module does not import kiteconnect, which pulls in Twisted)."""
    try:
        return call()
    except Exception as exc:
        names = {cls.__name__ for cls in type(exc).__mro__}
        if names & {"TokenException", "PermissionException"}:
            raise KiteImportError(
                f"Kite rejected the session ({exc}). Log in to Kite again and pass a fresh access token."
            ) from exc
        raise
