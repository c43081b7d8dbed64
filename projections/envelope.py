"""The event envelope: how a stored event travels to Kafka and into projections."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
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
    prev_hash: str = ""  # the account's hash chain (infra/store/chain.py); empty until sealed
    hash: str = ""

    def to_json(self) -> bytes:
        # (not dataclasses.asdict: it deep-copies `data` and `meta` only to serialise them)
        return json.dumps({name: getattr(self, name) for name in _FIELDS}, separators=(",", ":"),
                          sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes | str) -> Envelope:
        obj = json.loads(raw)
        return cls(**obj)

    @property
    def kafka_key(self) -> bytes:
        return str(self.account_id if self.account_id is not None else SYSTEM_ACCOUNT_ID).encode()


_FIELDS = tuple(f.name for f in fields(Envelope))
