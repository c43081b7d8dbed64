"""Stock universes: the NSE index constituent lists the product ships, and user-chosen symbol lists.

The lists are NSE Indices' ``ind_nifty50list.csv`` / ``ind_nifty100list.csv`` snapshots, packaged
under ``infra/bars/data/universes/`` (the product never reads the shared reference copies at run
time). ``Industry`` is the sector every sector limit and sector factor uses.

Index series live in the bar store under space-free symbols, ``NIFTY50`` and ``NIFTY100``, so
they are valid path segments (``/api/market/bars/NIFTY50``) and never collide with an equity
symbol. `Universe.index_symbol` is that bar-store symbol; `Universe.index_name` is the exchange's
own name (``NIFTY 50``), which is also the Kite ``tradingsymbol`` of the index.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources

__all__ = [
    "INDEX_NAMES",
    "MAX_NAMED",
    "SYMBOL_PATTERN",
    "Member",
    "Universe",
    "custom_universe",
    "is_symbol",
    "list_universes",
    "load_universe",
    "normalize_symbol",
]

UNKNOWN_SECTOR = "Unknown"
# An NSE trading symbol as Kite names it (the watchlist's pattern, domain/watchlist.py, without the exchange):
# capitals, digits and `&`, `-`, `_` (M&M, BAJAJ-AUTO), at most 30. Only a name of this form is ever shown
# back in an error; anything else is "not a valid symbol" by its place.
SYMBOL_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9&_-]{0,29}$")
SYMBOL_HINT = "an NSE trading symbol such as INFY or M&M: capitals, digits, &, - and _, at most 30"
MAX_NAMED = 10  # unknown symbols named in one error, at most


@dataclass(frozen=True)
class Member:
    symbol: str
    company: str
    sector: str
    isin: str


@dataclass(frozen=True)
class Universe:
    name: str
    members: tuple[Member, ...]
    index_symbol: str
    index_name: str = ""

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(m.symbol for m in self.members)

    @property
    def sectors(self) -> tuple[str, ...]:
        return tuple(m.sector for m in self.members)

    def sector_of(self, symbol: str) -> str:
        return self.member(symbol).sector

    def member(self, symbol: str) -> Member:
        for m in self.members:
            if m.symbol == symbol:
                return m
        raise KeyError(f"{symbol} is not a member of {self.name}")

    def __contains__(self, symbol: object) -> bool:
        return any(m.symbol == symbol for m in self.members)

    def __len__(self) -> int:
        return len(self.members)


# name -> (packaged CSV, bar-store index symbol, exchange index name)
_BUILT_IN: dict[str, tuple[str, str, str]] = {
    "nifty_50": ("ind_nifty50list.csv", "NIFTY50", "NIFTY 50"),
    "nifty_100": ("ind_nifty100list.csv", "NIFTY100", "NIFTY 100"),
}

# bar-store index symbol -> exchange name (what Kite's instrument dump calls it)
INDEX_NAMES: dict[str, str] = {store: name for _, store, name in _BUILT_IN.values()}


def normalize_symbol(symbol: str) -> str:
    """``" nse:reliance "`` -> ``"RELIANCE"``: users paste symbols in every form."""
    s = symbol.strip().upper()
    if s.startswith("NSE:"):
        s = s[4:].strip()
    return s


def is_symbol(symbol: str) -> bool:
    """True for a (normalised) name of the strict symbol form: the only kind an error may name."""
    return SYMBOL_PATTERN.fullmatch(symbol) is not None


@cache
def load_universe(name: str) -> Universe:
    """A built-in universe by name (``nifty_50``, ``nifty_100``); unknown name -> ValueError."""
    try:
        filename, index_symbol, index_name = _BUILT_IN[name]
    except KeyError:
        known = ", ".join(_BUILT_IN)
        raise ValueError(f"Unknown universe; choose one of: {known}") from None  # never the name sent
    text = resources.files("infra.bars").joinpath("data", "universes", filename).read_text(encoding="utf-8")
    return Universe(name=name, members=_parse_constituents(text), index_symbol=index_symbol, index_name=index_name)


def list_universes() -> list[Universe]:
    """Every built-in universe, smallest first."""
    return [load_universe(name) for name in _BUILT_IN]


def custom_universe(
    symbols: Iterable[str],
    known: Universe | Iterable[Member | str] | None = None,
    *,
    name: str = "custom",
) -> Universe:
    """A universe from a user's symbol list, each symbol checked against `known`.

    `known` defaults to every built-in universe; it may be a `Universe`, `Member`s, or plain
    symbols (e.g. what the bar store holds; their sector is then ``Unknown``). Symbols are
    normalised (``nse:infy`` -> ``INFY``) and de-duplicated in order. A symbol not of the strict symbol
    form is a ValueError naming its place (``symbols[2]``, from 1), never its text; unknown symbols of that
    form are named (at most `MAX_NAMED` of them).
    """
    by_symbol: dict[str, Member] = {}
    index_symbol = "NIFTY100"
    if known is None:
        for universe in list_universes():
            by_symbol.update({m.symbol: m for m in universe.members})
    elif isinstance(known, Universe):
        by_symbol = {m.symbol: m for m in known.members}
        index_symbol = known.index_symbol
    else:
        for item in known:
            member = item if isinstance(item, Member) else Member(normalize_symbol(item), "", UNKNOWN_SECTOR, "")
            by_symbol[member.symbol] = member

    chosen: list[str] = []
    for n, raw in enumerate(symbols, start=1):
        s = normalize_symbol(raw)
        if not s:
            continue
        if s not in by_symbol and not is_symbol(s):
            raise ValueError(f"symbols[{n}] is not a valid symbol: give {SYMBOL_HINT}")
        if s not in chosen:
            chosen.append(s)
    if not chosen:
        raise ValueError("A custom universe needs at least one symbol")
    unknown = [s for s in chosen if s not in by_symbol]  # each of the symbol form: safe to name
    if unknown:
        listed = ", ".join(unknown[:MAX_NAMED])
        more = f" and {len(unknown) - MAX_NAMED} more" if len(unknown) > MAX_NAMED else ""
        raise ValueError(f"Unknown symbol(s): {listed}{more}. Use NSE trading symbols of the available universe.")
    index_name = INDEX_NAMES.get(index_symbol, index_symbol)
    return Universe(
        name=name,
        members=tuple(by_symbol[s] for s in chosen),
        index_symbol=index_symbol,
        index_name=index_name,
    )


def _parse_constituents(text: str) -> tuple[Member, ...]:
    members: list[Member] = []
    seen: set[str] = set()
    for row in csv.DictReader(io.StringIO(text)):
        symbol = normalize_symbol(row.get("Symbol") or "")
        # NSE's lists briefly carried placeholder rows (DUMMYTATAM during the Tata Motors demerger)
        if not symbol or symbol.startswith("DUMMY") or symbol in seen:
            continue
        seen.add(symbol)
        members.append(
            Member(
                symbol=symbol,
                company=(row.get("Company Name") or "").strip(),
                sector=(row.get("Industry") or "").strip() or UNKNOWN_SECTOR,
                isin=(row.get("ISIN Code") or "").strip(),
            )
        )
    return tuple(members)


@cache
def known_isins() -> dict[str, str]:
    """Symbol -> ISIN of every built-in universe's constituents: reconciliation matches by ISIN first."""
    out: dict[str, str] = {}
    for universe in list_universes():
        out.update({m.symbol: m.isin for m in universe.members if m.isin})
    return out
