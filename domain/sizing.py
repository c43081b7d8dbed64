"""Ranking a day's candidates and sizing the ones that fit the portfolio's free slots.

Rules (the Portfolio aggregate applies them; the backtest and the live scanner share them):
- candidates are ranked by conviction descending, ties by symbol ascending;
- walking the ranking, a candidate is skipped for ``max_positions`` when no slot is free (slots =
  max_positions - open positions - signals waiting for approval, approved or placed), else for
  ``max_per_sector`` when its sector already holds that many open + pending, else for zero quantity
  when the size rounds to less than one share; an accepted candidate takes a slot and a sector place;
- quantity = floor(position_size_pct % x equity at the signal day's close / expected price), where
  the expected price is the limit price for limit entries and the signal day's close for next_open
  entries. (A 1e-9 share tolerance keeps 10,000.0 shares from becoming 9,999 through binary noise.)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from domain.errors import DomainError
from domain.fills import limit_price
from domain.ticks import DateLike


class Candidate(NamedTuple):
    """A symbol whose entry rules held at a close."""

    symbol: str
    sector: str
    conviction: float
    close: float
    reason: str = ""


class Sized(NamedTuple):
    """An accepted candidate with its order: quantity, expected price and limit (None for market)."""

    candidate: Candidate
    quantity: int
    expected_price: float
    limit_price: float | None


@dataclass
class Selection:
    """The outcome of `select_candidates`: accepted orders and what was skipped, by reason."""

    accepted: list[Sized] = field(default_factory=list)
    skipped_max_positions: int = 0
    skipped_max_per_sector: int = 0
    skipped_zero_quantity: int = 0


def rank_candidates(candidates: Iterable[Candidate]) -> list[Candidate]:
    """Conviction descending, then symbol ascending (a deterministic order for equal scores)."""
    return sorted(candidates, key=lambda c: (-c.conviction, c.symbol))


def position_quantity(equity: float, position_size_pct: float, expected_price: float) -> int:
    """floor(position_size_pct % of `equity` / `expected_price`); 0 when nothing sensible fits."""
    if expected_price <= 0 or equity <= 0 or position_size_pct <= 0:
        return 0
    return max(0, math.floor(equity * position_size_pct / 100.0 / expected_price + 1e-9))


def expected_entry_price(
    close: float, entry_order: str, limit_offset_pct: float, on_date: DateLike
) -> tuple[float, float | None]:
    """(expected price, limit price or None) of an entry signalled at `close` on `on_date`."""
    if entry_order == "limit":
        limit = limit_price(close, limit_offset_pct, on_date)
        return limit, limit
    return close, None


def select_candidates(  # noqa: PLR0913
    ranked: Iterable[Candidate],
    *,
    free_slots: int,
    sector_counts: Mapping[str, int],
    max_per_sector: int | None,
    equity: float,
    position_size_pct: float,
    entry_order: str,
    limit_offset_pct: float,
    on_date: DateLike,
) -> Selection:
    """Walk `ranked` candidates and accept those that fit (see the module docstring)."""
    out = Selection()
    counts = dict(sector_counts) if max_per_sector is not None else {}  # only that limit reads them
    for cand in ranked:
        if free_slots <= 0:
            out.skipped_max_positions += 1
            continue
        if max_per_sector is not None and counts.get(cand.sector, 0) >= max_per_sector:
            out.skipped_max_per_sector += 1
            continue
        expected, limit = expected_entry_price(cand.close, entry_order, limit_offset_pct, on_date)
        qty = position_quantity(equity, position_size_pct, expected)
        if qty < 1:
            out.skipped_zero_quantity += 1
            continue
        out.accepted.append(Sized(cand, qty, expected, limit))
        free_slots -= 1
        if max_per_sector is not None:
            counts[cand.sector] = counts.get(cand.sector, 0) + 1
    return out


def check_limits(
    capital: float, position_size_pct: float, max_positions: int, max_per_sector: int | None
) -> None:
    """Raise DomainError, saying what to change, when capital or slot limits make no sense.

    Shared by portfolio deployment and the backtest configuration."""
    if isinstance(capital, bool) or not isinstance(capital, int | float) or not capital > 0:
        raise DomainError(f"starting_capital must be a positive amount of rupees, got {capital!r}")
    if not 0 < position_size_pct <= 100:
        raise DomainError(
            f"position_size_pct must be above 0 and at most 100 (percent of equity per position), "
            f"got {position_size_pct!r}"
        )
    if isinstance(max_positions, bool) or not isinstance(max_positions, int) or max_positions < 1:
        raise DomainError(f"max_positions must be a whole number of at least 1, got {max_positions!r}")
    if max_per_sector is not None and (
        isinstance(max_per_sector, bool) or not isinstance(max_per_sector, int) or max_per_sector < 1
    ):
        raise DomainError(
            f"max_per_sector must be a whole number of at least 1, or null for no limit, got {max_per_sector!r}"
        )
