"""Every research job kind, registered by importing its module (the API and the CLI import this)."""

from __future__ import annotations

from backtest.research import robustness, sweeps, walkforward
from backtest.research.jobs import KINDS

__all__ = ["KINDS", "robustness", "sweeps", "walkforward"]
