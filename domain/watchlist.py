"""The Watchlist aggregate: the symbols a trader follows on the Market page (one list per account, kept with
the account so the phone and the desktop show the same list).

A symbol is `EXCHANGE:TRADINGSYMBOL` on NSE or BSE (a bare symbol means NSE), as Kite names instruments:
capitals, digits and `&`, `-`, `_` (M&M, BAJAJ-AUTO). At most `MAX_SYMBOLS`, in the trader's order, each once.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import ClassVar

from domain.aggregate import Aggregate, aggregate_uuid
from domain.errors import DomainError
from domain.events import DomainEvent

MAX_SYMBOLS = 50
STARTER = ("NSE:RELIANCE", "NSE:INFY", "NSE:HDFCBANK")  # shown until the trader changes the list
_SYMBOL = re.compile(r"^(NSE|BSE):[A-Z0-9][A-Z0-9&_-]{0,29}$")


def normalize_symbols(symbols: list[str]) -> list[str]:
    """The list as kept: trimmed, upper-cased, `NSE:` where no exchange is named, each once, in order.
    Raises DomainError naming the first symbol that is not a symbol (by its place, not its text)."""
    if len(symbols) > MAX_SYMBOLS:
        raise DomainError(f"A watchlist holds at most {MAX_SYMBOLS} symbols")
    out: list[str] = []
    for n, raw in enumerate(symbols, start=1):
        s = raw.strip().upper()
        if ":" not in s:
            s = f"NSE:{s}"
        if not _SYMBOL.match(s):
            raise DomainError(f"symbols[{n}] is not an NSE or BSE symbol (for example NSE:INFY or BSE:M&M)")
        if s not in out:
            out.append(s)
    return out


@dataclass(frozen=True)
class WatchlistSet(DomainEvent):
    symbols: list[str]
    at: str


class Watchlist(Aggregate):
    aggregate_type: ClassVar[str] = "Watchlist"

    def __init__(self, aggregate_id: uuid.UUID) -> None:
        super().__init__(aggregate_id)
        self.symbols: list[str] = list(STARTER)
        self.saved = False  # False: never changed (the starter list)
        self.updated_at = ""

    @staticmethod
    def uuid_for(account_id: int) -> uuid.UUID:
        return aggregate_uuid("watchlist", account_id)

    @classmethod
    def open(cls, account_id: int) -> Watchlist:
        wl = cls(cls.uuid_for(account_id))
        wl.account_id = account_id
        return wl

    def replace(self, symbols: list[str], at: str) -> bool:
        """Keep `symbols` (normalized) as the list; False when that is the list already (nothing recorded)."""
        kept = normalize_symbols(symbols)
        if self.saved and kept == self.symbols:
            return False
        self._record(WatchlistSet(kept, at))
        return True

    def when_WatchlistSet(self, e: WatchlistSet) -> None:
        self.symbols = list(e.symbols)
        self.saved = True
        self.updated_at = e.at
