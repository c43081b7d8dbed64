"""Analytics: the backtest archive (Parquet per run) and the per-account DuckDB store over imported and model
data, with its read-only `tradertape analytics` CLI."""
