"""Backtest runs: parameters, summary metrics, trades, equity curve, monthly returns, diagnostics.

A run's documents were recorded by the engine of their day: every metric and counter is optional, so a run
recorded before a key existed still reads back (absent keys stay absent)."""

from __future__ import annotations

from pydantic import Field

from api.public.base import Number, OpenObject, OpenPublic, Public


class StrategySpecPublic(OpenPublic):
    """A strategy as run: its base model, rule trees and parameters (docs/STRATEGIES.md)."""

    base_model: str
    entry_rules: OpenObject = Field(description="the entry rule tree")
    exit_rules: OpenObject = Field(description="stop, target, trailing stop, hold days and the exit rule tree")
    params: OpenObject = Field(description="the base model's parameters")


class BacktestParamsPublic(Public):
    start_date: str
    end_date: str
    starting_capital: Number
    position_size_pct: Number
    max_positions: int
    max_per_sector: int | None = None
    slippage_bps: Number | None = None
    charges: str | None = None
    universe: str | None = None
    symbols: list[str] | None = None
    benchmark: str | None = None
    strategy: StrategySpecPublic
    strategy_id: int | None = None
    strategy_name: str | None = None
    research_job_id: int | None = Field(default=None, description="a run a research job recorded")


class SummaryPublic(Public):
    """Metrics in percent where the name says so (`*_pct`, returns, drawdown, win rate); money in INR."""

    total_return: Number | None = None
    cagr: Number | None = None
    final_equity: Number | None = None
    max_drawdown: Number | None = None
    max_drawdown_days: Number | None = None
    sharpe: Number | None = None
    sortino: Number | None = None
    calmar: Number | None = None
    volatility: Number | None = None
    total_trades: Number | None = None
    win_rate: Number | None = None
    profit_factor: Number | None = None
    expectancy: Number | None = None
    avg_win: Number | None = None
    avg_loss: Number | None = None
    best_trade: Number | None = None
    worst_trade: Number | None = None
    avg_holding_days: Number | None = None
    max_consecutive_wins: Number | None = None
    max_consecutive_losses: Number | None = None
    exposure_pct: Number | None = None
    total_charges: Number | None = None
    benchmark_return: Number | None = None
    alpha: Number | None = None
    beta: Number | None = None


class HeldPublic(Public):
    """What a trade and an open position share: the shares bought, when, at what price."""

    symbol: str
    sector: str | None = None
    entry_date: str
    entry_price: Number
    quantity: int
    charges: Number
    holding_days: int
    conviction: Number | None = None


class TradePublic(HeldPublic):
    exit_date: str
    exit_price: Number
    exit_reason: str
    pnl: Number = Field(description="net of charges, INR")
    pnl_pct: Number


class OpenPositionPublic(HeldPublic):
    last_price: Number
    unrealized_pnl: Number
    stop_loss: Number | None = None
    target: Number | None = None


class RefusedEntryPublic(Public):
    symbol: str
    sector: str | None = None
    signal_date: str
    date: str
    reason: str
    reason_code: str
    quantity: int
    reference_price: Number | None = None
    conviction: Number | None = None


class EquityPointPublic(Public):
    date: str
    equity: Number
    cash: Number
    drawdown_pct: Number


class DiagnosticsPublic(Public):
    """What the engine did: counts of signals, orders, fills, exits and the entries it skipped or refused."""

    bars_processed: int | None = None
    trading_days: int | None = None
    warmup_days: int | None = None
    signals_generated: int | None = None
    orders_placed: int | None = None
    entries_filled: int | None = None
    entries_expired: int | None = None
    exits: int | None = None
    stop_updates: int | None = None
    pending_at_end: int | None = None
    skipped_cash: int | None = None
    skipped_max_positions: int | None = None
    skipped_max_per_sector: int | None = None
    skipped_zero_quantity: int | None = None
    refused_entries: int | None = None
    refused_by_reason: dict[str, int] | None = None
    warnings: list[str] | None = None
    elapsed_ms: Number | None = None


class BacktestRunSummaryPublic(Public):
    id: int
    params: BacktestParamsPublic
    status: str = Field(description="completed")
    summary: SummaryPublic
    data_fingerprint: str | None = Field(description="the bar store's state the run read")
    created_at: str | None


class BacktestRunPublic(BacktestRunSummaryPublic):
    diagnostics: DiagnosticsPublic
    monthly_returns: dict[str, Number] = Field(description="YYYY-MM -> return in percent")
    open_positions: list[OpenPositionPublic] = Field(description="held at the end, marked at the last close")
    trades: list[TradePublic]
    refused_entries: list[RefusedEntryPublic] = Field(description="entries the engine could not fill, and why")
    equity_curve: list[EquityPointPublic]
