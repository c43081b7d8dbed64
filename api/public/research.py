"""Research jobs (sweeps, walk-forward, Monte Carlo, look-ahead checks). The job's own fields are typed; its
`params` (the kind's request, normalised), `summary` and results are the kind's (docs/API-NOTES.md), open here."""

from __future__ import annotations

from pydantic import Field

from api.public.base import Number, OpenObject, OpenPublic, Public

Scalar = bool | int | float | str | None


class JobQueuedPublic(Public):
    id: int
    status: str = Field(description="queued")


class ResearchJobPublic(OpenPublic):
    """A job; `GET /api/research/<kind>/{id}` adds the kind's results (`results`, `results_total`, and e.g. a
    walk-forward's `windows` and `oos_equity`) and `partial` (true: the results finished so far)."""

    id: int
    kind: str
    url: str | None = Field(default=None, description="where this job's results are read: "
                            "`/api/research/<route>/{id}` (the kind `walk_forward` is at `walk-forward`)")
    status: str = Field(description="queued, running, done, failed or cancelled")
    progress: Number = Field(description="0-1")
    done: int = Field(description="backtests finished")
    total: int = Field(description="backtests planned")
    params: OpenObject = Field(description="the kind's request, normalised")
    summary: OpenObject | None = Field(default=None, description="the kind's summary once done")
    error: str | None = None
    executor: str | None = None
    best_run_id: int | None = None
    run_ids: list[int] = Field(default_factory=list, description="backtest runs it recorded")
    created_at: str | None = None
    updated_at: str | None = None
    results: list[OpenObject] | None = None
    results_total: int | None = None
    partial: bool | None = None


class HeatmapPublic(Public):
    x: str
    y: str
    metric: str
    x_values: list[Scalar] = Field(description="the columns")
    y_values: list[Scalar] = Field(description="the rows")
    values: list[list[Number | None]] = Field(description="rows of cells: the metric of the best combination")


class SweepParameterPublic(Public):
    name: str = Field(description="the key to give in `grid` or `random`, e.g. entry_rules.all.1.right")
    label: str = Field(description="the parameter in words, e.g. `entry: rsi(14) < x`")
    value: Scalar | None = Field(description="the strategy's own value (null: a portfolio setting, or an exit not set)")
