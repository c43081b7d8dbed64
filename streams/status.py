"""How the pipeline is doing, for `/api/health` and `/metrics`: per projection and per shard (the store,
or one Kafka partition) the applied position, the lag against the head, the age of the oldest event not
applied yet; the relay's lag; the workers' last errors (the projector and relay may run in other
processes: they record their errors in `worker_status`); the events set aside as dead letters."""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from infra.bootstrap import Platform
from projections.base import projection_dead_letters, projection_tracking
from projections.registry import all_projections
from streams.loop import worker_status
from streams.relay import relay_partitions, relay_positions
from streams.sources import STORE_SHARD, kafka_shard

if TYPE_CHECKING:
    from streams.runner import ProjectionRunner

OLDEST_SCAN = 2000  # events read after a lagging Kafka shard's position to find its oldest unapplied one


def _age(occurred_at: str, now: float) -> float:
    return round(max(0.0, now - datetime.fromisoformat(occurred_at).timestamp()), 3)


def pipeline_status(platform: Platform, runner: ProjectionRunner | None = None, ages: bool = True) -> dict[str, Any]:
    """`ages` False: skip the oldest-unapplied-event lookups (store reads), which the status does not
    depend on -- the public health answer, asked often by load balancers, stays a few small queries."""
    s = platform.settings
    out: dict[str, Any] = {"status": "ok", "reasons": []}
    reasons: list[str] = out["reasons"]
    try:
        head = platform.store.max_position()
    except Exception as exc:
        return {"status": "degraded", "reasons": ["the event store does not answer"],
                "store": {"ok": False, "error": type(exc).__name__}}
    out["store"] = {"ok": True, "position": head, "backend": "sqlite" if s.is_sqlite else "postgres"}
    names = [p.name for p in all_projections()]
    kafka = not s.embedded_transport
    with platform.db.read() as conn:
        tracking = conn.execute(sa.select(projection_tracking)).all()
        dl = projection_dead_letters
        dead_by = {str(r[0]): int(r[1]) for r in conn.execute(
            sa.select(dl.c.projection, sa.func.count()).group_by(dl.c.projection))}
        dead_count = sum(dead_by.values())
        dead = conn.execute(sa.select(projection_dead_letters).order_by(projection_dead_letters.c.position)
                            .limit(50)).all()
        relay_pos, published = None, {}
        workers: dict[str, dict[str, Any]] = {}
        if kafka:
            try:
                relay_pos = conn.execute(sa.select(relay_positions.c.position)
                                         .where(relay_positions.c.name == "kafka")).scalar_one_or_none()
                published = {int(r.partition): (int(r.kafka_offset), int(r.position)) for r in conn.execute(
                    sa.select(relay_partitions).where(relay_partitions.c.name == "kafka"))}
            except sa.exc.DBAPIError:  # no relay ever ran
                pass
        try:
            workers = {r.name: {"failures": int(r.failures), "last_error": r.last_error,
                                "last_error_at": r.last_error_at} for r in conn.execute(sa.select(worker_status))}
        except sa.exc.DBAPIError:  # no worker ever ran
            pass
    if runner is not None:  # the in-process projector knows better than its last written row
        loop = runner.loop
        workers["projector"] = {"failures": loop.failures, "last_error": loop.last_error,
                                "last_error_at": loop.last_error_at}
    # per shard: the shards this deployment reads (every Kafka partition, or the store)
    shards = [kafka_shard(p) for p in range(s.kafka_partitions)] if kafka else [STORE_SHARD]
    per: dict[str, dict[str, tuple[int, int | None]]] = {}
    for r in tracking:
        per.setdefault(r.shard, {})[r.projection] = (int(r.position), r.kafka_offset)
    projections: dict[str, dict[str, Any]] = {n: {"shards": {}} for n in names}
    shard_out: dict[str, dict[str, Any]] = {}
    now = time.time()
    for shard in shards:
        got = per.get(shard, {})
        part = int(shard.split(":")[1]) if kafka else None
        pub_offset = published.get(part, (None, 0))[0] if part is not None else None
        worst = 0
        for n in names:
            pos, off = got.get(n, (0, None))
            if kafka:
                lag = 0 if pub_offset is None else max(0, pub_offset - (-1 if off is None else off))
            else:
                lag = max(0, head - pos)
            projections[n]["shards"][shard] = {"position": pos, "kafka_offset": off, "lag": lag}
            worst = max(worst, lag)
        applied = min((got.get(n, (0, None))[0] for n in names), default=0)
        entry: dict[str, Any] = {"position": applied, "lag": worst, "oldest_unapplied_age_s": None}
        if kafka:
            entry["published_offset"] = pub_offset
        if worst and ages:
            entry["oldest_unapplied_age_s"] = _oldest_unapplied_age(platform, applied, part, now)
        shard_out[shard] = entry
        if worst > s.health_max_lag:
            reasons.append(f"{shard} is {worst} events behind (more than {s.health_max_lag})")
    for n in names:
        lags = [v["lag"] for v in projections[n]["shards"].values()]
        projections[n]["lag"] = max(lags, default=0)
    out["projections"] = projections
    out["shards"] = shard_out
    out["projection_lag"] = max((v["lag"] for v in shard_out.values()), default=0)
    if kafka:
        relay_lag = max(head - int(relay_pos or 0), 0)
        out["transport"] = {"kind": "kafka", "topic": s.kafka_topic, "relay_position": int(relay_pos or 0),
                            "relay_lag": relay_lag}
        if relay_lag > s.health_max_lag:
            reasons.append(f"the relay is {relay_lag} events behind the store (more than {s.health_max_lag})")
    else:
        out["transport"] = {"kind": "embedded"}
    out["workers"] = workers
    for name, w in workers.items():
        if w["failures"] >= s.health_max_failures:
            reasons.append(f"the {name} failed {w['failures']} steps in a row: {w['last_error']}")
    out["dead_letter_count"] = dead_count
    out["dead_letters_by_projection"] = dead_by
    out["dead_letters"] = [
        {"projection": d.projection, "position": int(d.position), "shard": d.shard, "event_id": d.event_id,
         "event_type": d.event_type, "account_id": d.account_id, "error": d.error, "attempts": int(d.attempts),
         "first_failed_at": d.first_failed_at} for d in dead]
    if dead_count:
        first = dead[0]
        reasons.append(f"{dead_count} event(s) set aside as failing to apply, first {first.event_type} at position "
                       f"{first.position} in projection {first.projection} (tradertape projections retry-failed)")
    if reasons:
        out["status"] = "degraded"
    return out


def _oldest_unapplied_age(platform: Platform, applied: int, partition: int | None, now: float) -> float | None:
    """Seconds since the first event after `applied` of this shard was stored; None if it is not among
    the next OLDEST_SCAN events (a partition whose accounts are quiet while others write)."""
    from streams.workers import partition_for

    after, seen = applied, 0
    while seen < OLDEST_SCAN:
        envs = platform.store.read_plain(after, 1000)
        if not envs:
            return None
        for env in envs:
            if partition is None or partition_for(env.account_id, platform.settings.kafka_partitions) == partition:
                return _age(env.occurred_at, now)
        seen += len(envs)
        after = envs[-1].position
    return None
