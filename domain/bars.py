"""Daily bars as symbols x days matrices: the one shape every strategy computation reads."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatMatrix = npt.NDArray[np.float64]

# Trading days of history read before a run's first day (a backtest's start, a paper portfolio's deployment),
# so indicators are warm on that day: the backtest and the live scan both start here, which parity depends on.
WARMUP_TRADING_DAYS = 300


@dataclass(frozen=True)
class BarMatrix:
    """OHLCV for `symbols` (rows) over trading `dates` (columns, numpy datetime64[D], ascending).

    Missing bars (a symbol not yet listed, a suspended day) are NaN in every price field and 0 volume.
    Prices are split/bonus-adjusted when the store applies `adj_factor`.
    """

    symbols: tuple[str, ...]
    dates: npt.NDArray[np.datetime64]
    open: FloatMatrix
    high: FloatMatrix
    low: FloatMatrix
    close: FloatMatrix
    volume: FloatMatrix
    sectors: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        shape = (len(self.symbols), len(self.dates))
        for name in ("open", "high", "low", "close", "volume"):
            arr = getattr(self, name)
            if arr.shape != shape:
                raise ValueError(f"{name} has shape {arr.shape}, expected {shape}")
        if self.sectors and len(self.sectors) != len(self.symbols):
            raise ValueError("sectors must have one entry per symbol")

    @property
    def n_symbols(self) -> int:
        return len(self.symbols)

    @property
    def n_days(self) -> int:
        return len(self.dates)

    def field(self, name: str) -> FloatMatrix:
        """The matrix of one price field by name (open, high, low, close, volume)."""
        if name not in ("open", "high", "low", "close", "volume"):
            raise KeyError(name)
        arr: FloatMatrix = getattr(self, name)
        return arr

    def sector_of(self, i: int) -> str:
        return self.sectors[i] if self.sectors else "Unknown"

    def index_of(self, symbol: str) -> int:
        return self.symbols.index(symbol)
