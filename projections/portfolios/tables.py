"""The tables of the model-portfolio read models: private to `projections.portfolios` (every other module reads
them through `projections.portfolios.queries`; an import-linter contract in pyproject.toml holds it)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

portfolios = sa.Table(
    "rm_portfolios", metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("aggregate_id", sa.String(36), nullable=False, unique=True),
    sa.Column("account_id", sa.BigInteger, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("mode", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("strategy_id", sa.BigInteger, index=True),
    sa.Column("strategy", sa.JSON, nullable=False),
    sa.Column("universe", sa.String(200), nullable=False),
    sa.Column("capital", sa.Float, nullable=False),
    sa.Column("cash", sa.Float, nullable=False),
    sa.Column("invested", sa.Float, nullable=False),
    sa.Column("equity", sa.Float, nullable=False),
    sa.Column("realized_pnl", sa.Float, nullable=False),
    sa.Column("day_pnl", sa.Float, nullable=False),
    # the aggregate's close_equity / prev_close_equity: day_pnl = equity - prev_close_equity
    sa.Column("close_equity", sa.Float, nullable=False),
    sa.Column("prev_close_equity", sa.Float, nullable=False),
    sa.Column("position_size_pct", sa.Float, nullable=False),
    sa.Column("max_positions", sa.Integer, nullable=False),
    sa.Column("max_per_sector", sa.Integer),
    sa.Column("auto_approve", sa.Boolean, nullable=False),
    sa.Column("slippage_bps", sa.Float, nullable=False),
    sa.Column("charges", sa.String(32), nullable=False),
    sa.Column("deployed_on", sa.String(10), nullable=False),
    sa.Column("last_day", sa.String(10)),
    sa.Column("reset_seq", sa.Integer, nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
)

signals = sa.Table(
    "rm_signals", metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("portfolio_id", sa.BigInteger, nullable=False),
    sa.Column("account_id", sa.BigInteger),
    sa.Column("strategy_id", sa.BigInteger),
    sa.Column("exchange", sa.String(16), nullable=False),
    sa.Column("symbol", sa.String(32), nullable=False),
    sa.Column("sector", sa.String(100), nullable=False),
    sa.Column("side", sa.String(4), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("conviction", sa.Float),
    sa.Column("reference_price", sa.Float),
    sa.Column("limit_price", sa.Float),
    sa.Column("stop_loss", sa.Float),
    sa.Column("target", sa.Float),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("day", sa.String(10), nullable=False),
    sa.Column("entry_order", sa.String(16)),
    sa.Column("validity_days", sa.Integer, nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("expires_at", sa.String(40), nullable=False),  # ISO, +05:30 (the market close)
    sa.Column("expires_epoch", sa.Float, nullable=False),  # the same instant, UTC epoch seconds
    sa.Column("updated_at", sa.String(40), nullable=False),
    sa.Column("gtt_id", sa.String(64)),
    sa.Column("order_id", sa.String(64)),
    sa.Column("fill_price", sa.Float),
    sa.Column("filled_quantity", sa.Integer),
    sa.Column("failure_reason", sa.Text),
    sa.Column("position_id", sa.BigInteger),
    sa.Index("ix_rm_signals_account_id_id", "account_id", "id"),
    sa.Index("ix_rm_signals_portfolio_id_id", "portfolio_id", "id"),
    sa.Index("ix_rm_signals_status_expires", "status", "expires_epoch"),
)

positions = sa.Table(
    "rm_positions", metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("portfolio_id", sa.BigInteger, nullable=False),
    sa.Column("account_id", sa.BigInteger),
    sa.Column("signal_id", sa.BigInteger),
    sa.Column("exchange", sa.String(16), nullable=False),
    sa.Column("symbol", sa.String(32), nullable=False),
    sa.Column("sector", sa.String(100), nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("avg_price", sa.Float, nullable=False),
    sa.Column("entry_date", sa.String(10), nullable=False),
    sa.Column("entry_charges", sa.Float, nullable=False),
    sa.Column("stop_loss", sa.Float),
    sa.Column("stop_reason", sa.String(20), nullable=False),
    sa.Column("trail", sa.Float),
    sa.Column("target", sa.Float),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("last_price", sa.Float, nullable=False),
    sa.Column("unrealized_pnl", sa.Float),
    sa.Column("exit_price", sa.Float),
    sa.Column("exit_date", sa.String(10)),
    sa.Column("exit_reason", sa.String(20)),
    sa.Column("exit_charges", sa.Float, nullable=False),
    sa.Column("realized_pnl", sa.Float),
    sa.Column("charges", sa.Float, nullable=False),
    sa.Column("conviction", sa.Float),
    sa.Column("exit_pending", sa.Boolean, nullable=False),
    sa.Column("exit_signal_id", sa.BigInteger),
    sa.Column("updated_at", sa.String(40), nullable=False),
    sa.Index("ix_rm_positions_portfolio_status", "portfolio_id", "status"),
    sa.Index("ix_rm_positions_account_id_id", "account_id", "id"),
)

portfolio_equity = sa.Table(
    "rm_portfolio_equity", metadata,
    sa.Column("portfolio_id", sa.BigInteger, primary_key=True),
    sa.Column("day", sa.String(10), primary_key=True),
    sa.Column("reset_seq", sa.Integer, nullable=False),
    sa.Column("cash", sa.Float, nullable=False),
    sa.Column("equity", sa.Float, nullable=False),
)

activity_log = sa.Table(
    "rm_activity", metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),  # the envelope's position
    sa.Column("portfolio_id", sa.BigInteger, nullable=False),
    sa.Column("account_id", sa.BigInteger),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("at", sa.String(40), nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Index("ix_rm_activity_portfolio_position", "portfolio_id", "position"),
)
