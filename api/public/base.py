"""Shared pieces of the response models."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Response
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel, ConfigDict, TypeAdapter, WithJsonSchema
from pydantic_core import PydanticSerializationError

# A JSON number the code may make as an int or a float: kept as it was made (pydantic would turn an int into a
# float for a `float` field), documented as a number.
Number = Annotated[int | float, WithJsonSchema({"type": "number"})]
# A genuinely open JSON object (an event's data, a strategy's rules, Kite's payloads): documented as an object of
# any values, marked `x-open` (the contract test accepts no other untyped object).
OpenObject = Annotated[dict[str, Any], WithJsonSchema({"type": "object", "additionalProperties": True,
                                                       "x-open": True})]


class Public(BaseModel):
    """A response model: the keys the route answers, in its types."""

    model_config = ConfigDict(extra="forbid")


class OpenPublic(BaseModel):
    """A response model whose payload is genuinely open: the named keys are typed, others pass through."""

    model_config = ConfigDict(extra="allow")


def answers(model: Any) -> dict[str, Any]:
    """A route's response model, keeping the answer's keys as the route built them (a key the route leaves out
    stays out instead of appearing as its default)."""
    return {"response_model": model, "response_model_exclude_unset": True}


_AS_BUILT = TypeAdapter(Any)


def as_built(doc: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A large answer (a backtest run's trades and curve) sent as the route built it, serialised exactly as a
    `dict[str, Any]` answer is, without validating it row by row against its response model (measured: 5-10x
    the serialisation time for a 442-trade run). The model still documents it, and the Schemathesis run and the
    tests hold the answer to it. The encoding is total: text holding a lone surrogate (stored before the edge
    refused them, api/textguard.py) is sent as its JSON escape (`"\\ud800"`), as the hash chain encodes it."""
    try:
        body = _AS_BUILT.dump_json(doc)
    except PydanticSerializationError:
        body = json.dumps(jsonable_encoder(doc), ensure_ascii=True, separators=(",", ":")).encode()
    return Response(body, status_code=status_code, media_type="application/json", headers=headers)
