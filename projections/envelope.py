"""The event envelope: how a stored event travels to Kafka and into projections."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from domain.aggregate import SYSTEM_ACCOUNT_ID


@dataclass(frozen=True)
class Envelope:
    event_id: str
    type: str
    schema_version: int
    aggregate_type: str
    aggregate_id: str
    aggregate_version: int
    account_id: int | None
    occurred_at: str  # ISO 8601 with offset
    position: int  # the store's notification id
    data: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)
    prev_hash: str = ""  # the account's hash chain (infra/chain.py); empty until sealed
    hash: str = ""

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes | str) -> Envelope:
        obj = json.loads(raw)
        return cls(**obj)

    @property
    def kafka_key(self) -> bytes:
        return str(self.account_id if self.account_id is not None else SYSTEM_ACCOUNT_ID).encode()
