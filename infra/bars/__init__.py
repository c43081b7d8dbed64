"""Bar data for live and backtest code alike: the Parquet bar store, the stock universes, importers (files,
bhavcopies, Kite's historical API), synthetic history, and `BarStoreMarket` (the `MarketData` port)."""
