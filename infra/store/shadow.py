"""Read-model rows rebuilt from the event store, for a command's answer while the projections are behind.

A command's answer must show what the command did. When read-your-writes times out (projector down,
rebuild running) the shared read model may not hold the command's events yet, so the answer is built
from a throwaway in-memory read model instead: the same projection applied to every stored event of the
aggregates the answer is about (their own events say everything their rows hold). The same query
functions then read it, so the answer has exactly the shape the caught-up read model would give.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.pool import StaticPool

from infra.store.eventstore import SqlEventStore
from projections.base import Projection

log = logging.getLogger(__name__)


@contextmanager
def replayed(store: SqlEventStore, projection: Projection, aggregate_ids: Iterable[uuid.UUID]) -> Iterator[Connection]:
    """A connection to an in-memory database holding `projection`'s rows for these aggregates only."""
    engine = sa.create_engine("sqlite://", poolclass=StaticPool)
    try:
        with engine.begin() as conn:
            projection.create(conn)
            for env in store.envelopes_of(list(aggregate_ids)):
                try:
                    with conn.begin_nested():
                        projection.apply(conn, env)
                except Exception:  # as the projector does: an event that cannot be applied is set aside
                    log.warning("answer replay: %s at position %s not applied", env.type, env.position,
                                exc_info=True)
            yield conn
    finally:
        engine.dispose()
