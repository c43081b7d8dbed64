"""Research jobs: many backtests at once -- parameter sweeps, walk-forward analysis, Monte Carlo and
look-ahead checks -- run by the same engine and domain as a single backtest.

The pieces:

- `jobs.py`: the framework. A job kind (`JobKind`) turns a request body into a `JobPlan` (validated,
  its size counted), then does its work in `run(ctx, plan)` through a `RunContext` that hands out the
  bars, maps a task function over items in the executor, reports progress and notices cancellation,
  and returns a `JobOutcome` (summary, result tables, combinations to record as ordinary backtests).
- `executors.py`: where tasks run -- a local process pool sized to the machine, or a Dask distributed
  cluster when `TRADERTAPE_DASK_SCHEDULER` is set. Either way the bars are shipped once per worker and
  tasks go in batches; results come back in item order, so both give identical answers.
- `worker.py`: what runs inside a worker: window views of the shipped bars and one indicator cache per
  distinct window, shared by every combination run there (an indicator is computed once per distinct
  period and window, not once per combination).
- `store.py`: result tables as immutable Parquet files in the analytics store, read with DuckDB.
- `service.py`: the job life cycle for the API: events on the account's `ResearchDesk` (submitted,
  started, progressed, completed/failed/cancelled, deleted), one background thread per job, the best
  combinations re-run and recorded as ordinary backtest runs.
- `sweeps.py`, `walkforward.py`: the sweep and walk-forward kinds; `kinds.py` imports every kind
  (registering it); `cli.py`: `tradertape research <route> BODY.json`.
- `montecarlo.py`, `lookahead.py`: the Monte Carlo and look-ahead libraries; `robustness.py` their kinds.

A kind may offer partial results while it runs: `ctx.map(fn, shared, items, partial)` calls
`partial({index: result})` for the items finished so far (at most every `PARTIAL_EVERY` seconds) and the
service keeps the tables it returns as the job's snapshot, which GET answers until the job ends.

How a job kind plugs in (Monte Carlo and look-ahead follow this)::

    class MonteCarlo:                      # any object with these attributes and methods
        name = "monte_carlo"               # recorded as the job's kind
        route = "monte-carlo"              # served under /api/research/monte-carlo
        request_model = MonteCarloRequest  # a pydantic model: the POST body (422 on schema errors)

        def plan(self, ctx: PlanContext, req: MonteCarloRequest) -> JobPlan:
            # validate against the stored data (DomainError -> 400 with its detail); count the work.
            # JobPlan(params=<JSON-ready, recorded in the event>, total=<work units, for progress and
            # the per-user limit ctx.max_combinations>, payload=<anything run() needs>)
            ...

        def run(self, ctx: RunContext, plan: JobPlan) -> JobOutcome:
            shared = ctx.data(plan.payload.data)          # DataSpec -> bars, loaded once, shipped once/worker
            rows = ctx.map(my_task, shared, items)        # my_task(shared, item) -> JSON-ready; module level
            ...                                           # (ctx.map advances progress, raises JobCancelled)
            return JobOutcome(summary={...}, tables={"results": rows_best_first, "paths": [...]},
                              record=[(strategy, config), ...])   # optional: ordinary backtest runs

        def present(self, tables: ResultTables, query: ResultQuery) -> dict[str, Any]:
            # extra fields of GET /api/research/<route>/{id} for a finished job, read from its tables
            ...

    register(MonteCarlo())                 # in backtest/research/kinds.py: routes and CLI follow

Task functions run in other processes (and on Dask workers): they must be module-level functions of
plain, picklable arguments, and deterministic (seeded), so a local run and a cluster run agree exactly.
`worker.run_combination(shared, (strategy, config))` runs one backtest with the shared indicator cache.
"""
