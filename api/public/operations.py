"""Health and the Telegram link."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from api.public.base import OpenObject, OpenPublic, Public


class HealthPublic(OpenPublic):
    """Everyone gets `status` and `version`; a signed-in admin (or the metrics token) also the pipeline's detail,
    whose parts depend on the transport (the store, or Kafka with its relay) -- docs/API-NOTES.md, "Health"."""

    status: Literal["ok", "degraded"]
    version: str = Field(description="the release, as in the OpenAPI document")
    reasons: list[str] | None = Field(default=None, description="why it is degraded")
    store: OpenObject | None = Field(default=None, description="position, backend")
    transport: OpenObject | None = None
    shards: OpenObject | None = Field(default=None, description="per shard: applied position, lag, oldest age")
    projections: OpenObject | None = Field(default=None, description="per projection and shard: position, lag")
    projection_lag: int | None = Field(default=None, description="the largest, in events")
    workers: OpenObject | None = Field(default=None, description="projector/relay: failures in a row, last error")
    dead_letter_count: int | None = None
    dead_letters: list[OpenObject] | None = Field(default=None, description="the first 50 events set aside")
    scheduler: OpenObject | None = None


class TelegramLinkPublic(Public):
    configured: bool = Field(description="the server has a bot token")
    linked: bool
    username: str | None
    linked_at: str | None


class TelegramCodePublic(Public):
    code: str = Field(description="one-time, 15 minutes: send /start CODE to the bot")
    url: str = Field(description="the bot's deep link with the code")
    expires_at: str
    bot: str = Field(description="the bot's @username")
