"""Research tools built on the backtest engine (Monte Carlo, look-ahead checks, sweeps)."""
