"""Where research tasks run: a local process pool (the default) or a Dask distributed cluster.

Both take a task function `fn(shared, item)`, the job's `SharedBars` and the items, ship the bars once per
worker (the local pool's initializer; Dask's `scatter(..., broadcast=True)`), send the items in batches,
and return the results in item order -- so the answer does not depend on where, or in which order, the
batches ran. `on_batch(done, finished)` is told after each batch: the items done so far and the batch's
`(index, result)` pairs (partial results); `cancelled()` is asked between batches, and a
cancelled map stops its pending batches and raises `JobCancelled`.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Protocol

from backtest.research.worker import SharedBars

__all__ = ["DaskExecutor", "Executor", "JobCancelled", "LocalExecutor", "OnBatch", "batches", "make_executor"]

Task = Callable[[SharedBars, Any], Any]
OnBatch = Callable[[int, list[tuple[int, Any]]], None]  # (items done so far, the batch's (index, result) pairs)
MAX_BATCH = 16


class JobCancelled(Exception):
    """The job was cancelled while it ran."""


class Executor(Protocol):
    name: str

    @property
    def workers(self) -> int: ...

    def map(self, fn: Task, shared: SharedBars, items: Sequence[Any], on_batch: OnBatch,
            cancelled: Callable[[], bool]) -> list[Any]: ...

    def close(self) -> None: ...


def batches(n: int, workers: int) -> list[range]:
    """Index ranges of about four batches per worker (at most MAX_BATCH items each): big enough that the
    per-task overhead vanishes, small enough that progress moves and the workers stay evenly loaded."""
    if n <= 0:
        return []
    size = max(1, min(MAX_BATCH, math.ceil(n / (max(1, workers) * 4))))
    return [range(lo, min(n, lo + size)) for lo in range(0, n, size)]


def _run_batch(fn: Task, shared: SharedBars, items: list[Any]) -> list[Any]:
    return [fn(shared, item) for item in items]


# ---------------------------------------------------------------- the local process pool

_LOCAL: dict[str, SharedBars] = {}


def _install(shared: SharedBars, parent: int) -> None:
    """Pool initializer: keep the job's bars in this worker; leave when the parent process is gone."""
    _LOCAL[shared.key] = shared

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _local_batch(fn: Task, key: str, items: list[Any]) -> list[Any]:
    return _run_batch(fn, _LOCAL[key], items)


class LocalExecutor:
    """A pool of `workers` processes (default: one per CPU), started per map with the bars installed."""

    def __init__(self, workers: int | None = None) -> None:
        self._workers = max(1, workers or os.cpu_count() or 1)
        self.name = f"local:{self._workers}"

    @property
    def workers(self) -> int:
        return self._workers

    def map(self, fn: Task, shared: SharedBars, items: Sequence[Any], on_batch: OnBatch,
            cancelled: Callable[[], bool]) -> list[Any]:
        out: list[Any] = [None] * len(items)
        parts = batches(len(items), self._workers)
        if not parts:
            return out
        ctx = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(min(self._workers, len(parts)), mp_context=ctx, initializer=_install,
                                   initargs=(shared, os.getpid()))
        try:
            pending: dict[Future[list[Any]], range] = {
                pool.submit(_local_batch, fn, shared.key, [items[i] for i in r]): r for r in parts}
            done = 0
            while pending:
                finished, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                if cancelled():
                    raise JobCancelled()
                for fut in finished:
                    r = pending.pop(fut)
                    pairs = list(zip(r, fut.result(), strict=True))
                    for i, value in pairs:
                        out[i] = value
                    done += len(r)
                    on_batch(done, pairs)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return out

    def close(self) -> None:
        pass


# ---------------------------------------------------------------- Dask distributed


def _dask_batch(fn: Task, shared: SharedBars, items: list[Any]) -> list[Any]:
    return _run_batch(fn, shared, items)


class DaskExecutor:
    """The tasks on a Dask distributed scheduler (`tcp://host:8786`): the bars scattered to every worker
    once (broadcast), the batches submitted as tasks that refer to them."""

    def __init__(self, address: str, timeout: float = 30.0) -> None:
        from distributed import Client

        self.address = address
        self.client = Client(address, timeout=timeout, set_as_default=False)
        self.name = f"dask:{address}"

    @property
    def workers(self) -> int:
        return max(1, sum(self.client.nthreads().values()))

    def map(self, fn: Task, shared: SharedBars, items: Sequence[Any], on_batch: OnBatch,
            cancelled: Callable[[], bool]) -> list[Any]:
        out: list[Any] = [None] * len(items)
        parts = batches(len(items), self.workers)
        if not parts:
            return out
        data = self.client.scatter(shared, broadcast=True, hash=False)
        futures = {self.client.submit(_dask_batch, fn, data, [items[i] for i in r], pure=False): r for r in parts}
        done = 0
        try:
            for fut, r in futures.items():  # in submission order: the cluster runs them meanwhile
                while True:
                    try:
                        batch = fut.result(timeout=0.5)
                        break
                    except TimeoutError:
                        if cancelled():
                            raise JobCancelled() from None
                if cancelled():
                    raise JobCancelled()
                pairs = list(zip(r, batch, strict=True))
                for i, value in pairs:
                    out[i] = value
                done += len(r)
                on_batch(done, pairs)
        finally:
            self.client.cancel(list(futures))
            self.client.cancel([data])
        return out

    def close(self) -> None:
        self.client.close()


def make_executor(dask_scheduler: str | None, workers: int | None) -> Executor:
    """Dask when a scheduler address is configured, else the local pool."""
    if dask_scheduler:
        return DaskExecutor(dask_scheduler)
    return LocalExecutor(workers)
