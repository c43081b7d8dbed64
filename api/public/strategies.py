"""Strategies' base models (the strategies themselves: api/schemas.py, StrategyPublic)."""

from __future__ import annotations

from pydantic import Field

from api.public.base import OpenObject, Public


class ParamSchemaPublic(Public):
    type: str = Field(description="integer, number, string or boolean")
    default: bool | int | float | str | None
    description: str
    minimum: int | float | None = None
    maximum: int | float | None = None
    enum: list[str] | None = None


class BaseModelDefaults(Public):
    entry_rules: OpenObject = Field(description="the entry rule tree")
    exit_rules: OpenObject = Field(description="stop, target, trailing stop, hold days and the exit rule tree")
    params: OpenObject = Field(description="parameter -> default")


class BaseModelPublic(Public):
    name: str = Field(description="what a strategy's `base_model` takes")
    title: str
    description: str
    conviction: str = Field(description="how the 0-100 conviction score is computed, in words")
    params: dict[str, ParamSchemaPublic]
    defaults: BaseModelDefaults
