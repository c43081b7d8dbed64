"""The research job framework: job kinds, their plans and outcomes, and the context a job runs in.

See the package docstring (`backtest/research/__init__.py`) for how a kind plugs in. A kind is
registered once (`register`) and then served by the API under `/api/research/<route>` and run by the
CLI; the service (`service.py`) records its life cycle as events.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

from backtest.requests import BacktestRequest, StrategyLookup, resolve_universe, strategy_body
from backtest.research.executors import Executor, JobCancelled, Task
from backtest.research.store import ResultTables
from backtest.research.worker import SharedBars, warm_start_for
from backtest.runner import plan_run
from domain.errors import DomainError
from infra.bars.store import BarStore

__all__ = ["KINDS", "PARTIAL_EVERY", "DataSpec", "JobCancelled", "JobKind", "JobOutcome", "JobPlan", "PartialSink",
           "PlanContext", "ResultQuery", "ResultsTable", "RunContext", "Tables", "base_plan", "kind_for_route",
           "load_shared", "register"]

PARTIAL_EVERY = 2.0  # seconds between two snapshots of a running job's partial results

Tables = dict[str, list[dict[str, Any]]]
PartialSink = Callable[[Tables], None]


@dataclass(frozen=True)
class DataSpec:
    """Which bars a job reads: the symbols (and benchmark) from the earliest warm-up day to the last day."""

    data_dir: str
    symbols: tuple[str, ...]
    sectors: tuple[str, ...]
    benchmark: str | None
    first_start: str  # the earliest window start of any run in the job
    end: str

    def to_json(self) -> dict[str, Any]:
        return {"symbols": list(self.symbols), "benchmark": self.benchmark, "first_start": self.first_start,
                "end": self.end}


def load_shared(spec: DataSpec) -> SharedBars:
    """Read the job's bars once (in the coordinating process); the executor ships them to its workers."""
    store = BarStore(Path(spec.data_dir))
    first = store.first_date()
    if first is None:
        raise DomainError("No bar history is stored yet; import or generate bars first")
    warm = warm_start_for(spec.first_start, first.isoformat())
    names = list(spec.symbols) + ([spec.benchmark] if spec.benchmark else [])
    sectors = list(spec.sectors) + (["Index"] if spec.benchmark else [])
    matrix = store.read(names, warm, spec.end, sectors=sectors)
    bench = None
    if spec.benchmark:
        bench = matrix.close[-1]
        k = len(spec.symbols)
        matrix = type(matrix)(
            symbols=matrix.symbols[:k], dates=matrix.dates, open=matrix.open[:k], high=matrix.high[:k],
            low=matrix.low[:k], close=matrix.close[:k], volume=matrix.volume[:k], sectors=matrix.sectors[:k],
        )
    key = hashlib.sha256(json.dumps([spec.to_json(), warm, store.fingerprint()]).encode()).hexdigest()[:32]
    return SharedBars(key, matrix, bench, first.isoformat())


@dataclass(frozen=True)
class PlanContext:
    """What a kind's `plan` may consult: the data directory, the caller, saved strategies, the limits."""

    data_dir: Path
    account_id: int
    lookup: StrategyLookup
    max_combinations: int
    # the caller's recorded backtest run by id, with its trades and equity curve (None: not theirs, or none)
    load_run: Callable[[int], dict[str, Any] | None] | None = None


@dataclass
class JobPlan:
    """A validated job: `params` (JSON-ready, recorded in the `ResearchJobSubmitted` event), `total`
    (units of work: progress counts them and the per-user limit bounds them), `payload` (anything
    `run` needs; not recorded) and `data` (the universe and benchmark of the runs to record)."""

    params: dict[str, Any]
    total: int
    payload: Any = None
    data: DataSpec | None = None  # the bars of the runs `JobOutcome.record` asks to record


@dataclass
class JobOutcome:
    """What a finished job leaves: `summary` (recorded in `ResearchJobCompleted`), `tables` (written to
    the analytics store; `results` is the main table, best first) and `record`: combinations
    (strategy body, engine config) to re-run and record as ordinary backtest runs, best first (the first
    is the job's `best_run_id`, unless `runs` names runs already recorded, which come first)."""

    summary: dict[str, Any]
    tables: dict[str, list[dict[str, Any]]]
    record: list[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=list)
    runs: list[int] = field(default_factory=list)  # recorded runs the job is about (before `record`'s)


@dataclass(frozen=True)
class TextTable:
    """A table in a kind's printed outcome (`render`): the CLI lays it out to fit the terminal."""

    title: str
    headers: list[str]
    rows: list[list[str]]
    caption: str | None = None


@dataclass(frozen=True)
class ResultQuery:
    """Paging of a GET's `results` (None: every row)."""

    limit: int | None = None
    offset: int = 0


class RunContext:
    """Hands a running job its bars and executor, counts its progress, notices cancellation.

    `progress(done, total)` is called with the units done so far (a sink the service throttles into
    events, the CLI draws as a bar); `partial(tables)`, when given, receives snapshots of the results
    finished so far (at most every `partial_every` seconds), built by the `partial` function a kind
    passes to `map`."""

    def __init__(self, executor: Executor, progress: Callable[[int, int], None],
                 cancelled: Callable[[], bool] = lambda: False, partial: PartialSink | None = None,
                 partial_every: float | None = None) -> None:
        self.executor = executor
        self._progress = progress
        self._cancelled = cancelled
        self._partial = partial
        self._partial_every = PARTIAL_EVERY if partial_every is None else partial_every
        self._partial_at = float("-inf")
        self.total = 0
        self.done = 0
        self._shared: dict[DataSpec, SharedBars] = {}

    def cancelled(self) -> bool:
        return self._cancelled()

    def check(self) -> None:
        if self._cancelled():
            raise JobCancelled()

    def data(self, spec: DataSpec) -> SharedBars:
        found = self._shared.get(spec)
        if found is None:
            found = self._shared[spec] = load_shared(spec)
        return found

    def advance(self, n: int) -> None:
        self.done += n
        self._progress(self.done, self.total)

    def publish(self, tables: Tables) -> None:
        """Offer a snapshot of partial results now (a kind between two maps)."""
        if self._partial is not None:
            self._partial_at = time.monotonic()
            self._partial(tables)

    def map(self, fn: Task, shared: SharedBars, items: Sequence[Any],
            partial: Callable[[dict[int, Any]], Tables] | None = None) -> list[Any]:
        """`fn(shared, item)` for every item, in the executor; results in item order. Each finished item
        advances the progress by one unit. `partial({index: result})` turns the items finished so far
        into result tables (best first), offered as partial results while the map runs."""
        self.check()
        start = self.done
        got: dict[int, Any] = {}

        def on_batch(finished: int, pairs: list[tuple[int, Any]]) -> None:
            self.done = start + finished
            self._progress(self.done, self.total)
            if partial is not None and self._partial is not None:
                got.update(pairs)
                if finished < len(items) and time.monotonic() - self._partial_at >= self._partial_every:
                    self.publish(partial(dict(got)))

        return self.executor.map(fn, shared, items, on_batch, self._cancelled)


class JobKind(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def route(self) -> str: ...

    @property
    def request_model(self) -> type[BaseModel]: ...

    def plan(self, ctx: PlanContext, req: Any) -> JobPlan: ...

    def run(self, ctx: RunContext, plan: JobPlan) -> JobOutcome: ...

    def present(self, tables: ResultTables, ref: str, query: ResultQuery) -> dict[str, Any]: ...


class ResultsTable:
    """`present` of a kind whose answer is its `results` table, paged (sweeps, Monte Carlo)."""

    def present(self, tables: ResultTables, ref: str, query: ResultQuery) -> dict[str, Any]:
        return {"results": tables.rows(ref, "results", query.limit, query.offset),
                "results_total": tables.count(ref, "results")}


KINDS: dict[str, JobKind] = {}


K = TypeVar("K", bound="JobKind")


def register(kind: K) -> K:
    if kind.name in KINDS and KINDS[kind.name] is not kind:
        raise ValueError(f"research job kind {kind.name!r} registered twice")
    KINDS[kind.name] = kind
    return kind


def kind_for_route(route: str) -> JobKind:
    for kind in KINDS.values():
        if kind.route == route:
            return kind
    raise KeyError(route)


@dataclass(frozen=True)
class BasePlan:
    """A backtest body resolved: the strategy body, the engine config, the data, the recorded params."""

    strategy: dict[str, Any]
    config: dict[str, Any]
    data: DataSpec
    params: dict[str, Any]


def base_plan(ctx: PlanContext, req: BacktestRequest, first_start: str | None = None) -> BasePlan:
    """Resolve and check a request's backtest part as `POST /api/backtest/run` does (strategy visible to
    the caller, universe known, dates inside the stored history, benchmark stored)."""
    strategy, name = strategy_body(req, ctx.lookup, ctx.account_id)
    universe = resolve_universe(req)
    config = req.config()
    plan = plan_run(ctx.data_dir, universe, req.start_date, req.end_date, strategy, config, req.benchmark)
    data = DataSpec(str(ctx.data_dir), tuple(universe.symbols), tuple(universe.sectors), plan.benchmark,
                    first_start or config["start_date"], config["end_date"])
    params = {"strategy_id": req.strategy_id, "strategy_name": name, "strategy": strategy,
              "universe": universe.name if req.symbols is None else None,
              "symbols": list(universe.symbols) if req.symbols is not None else None,
              "benchmark": plan.benchmark, **config}
    return BasePlan(strategy, config, data, params)
