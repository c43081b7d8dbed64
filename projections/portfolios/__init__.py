"""The model-portfolio read models: portfolios, their signals and positions, the daily equity curve and
the activity timeline (`tables.py`, private to this package); the projector that keeps them (`projector.py`),
the timeline's text (`activity.py`), and every query of them the rest of the house calls (`queries.py`,
signals included; what joins them with the broker or risk read models is `projections/joined.py`).

Every Portfolio event but PortfolioDeployed names its portfolio only through the aggregate id, so
`rm_portfolios.aggregate_id` is kept (unique) and looked up. The rows follow the aggregate's `when_*`
mutators exactly: cash moves with fills (qty x price + charges) and closes (qty x exit price - exit
charges), rounded as the aggregate rounds; `DayClosed` carries the authoritative cash, equity and the
closes of the held symbols; `invested`/`equity` are recomputed from the open positions after every
change, in entry order, so they equal the aggregate's own `equity` to the paisa.

Resets: `PortfolioReset` keeps every row (history) but bumps the portfolio's `reset_seq`; equity-curve
rows carry the `reset_seq` of their day, and `equity_curve` serves only the current one. Open positions
become `reset`, live signals (pending_approval, in_cart, placed -- exit signals included) `expired`
with failure_reason "portfolio reset".

Activity: one row per Portfolio event (DayClosed left out: the equity curve shows the closes, and 250
of them would bury everything else) and per RiskBreached that names a portfolio; keyed by the store
position, read newest first through the (portfolio_id, position) index.
"""
