"""Sign-in, sessions and passwords: the answers that are only words and counts."""

from __future__ import annotations

from pydantic import Field

from api.public.base import Public


class MessagePublic(Public):
    detail: str = Field(description="what happened, in words")


class SignedOutPublic(Public):
    detail: str | None = None
    sessions_signed_out: int
