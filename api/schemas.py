"""Request and response schemas (separate per direction)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator, model_validator
from zxcvbn import zxcvbn

from api.public.base import OpenObject
from domain.strategies import SpecError, normalize_spec


class MagicLinkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an unknown field is a schema violation (422)

    email: EmailStr


class VerifyLinkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an unknown field is a schema violation (422)

    email: EmailStr
    token: str | None = Field(default=None, max_length=200)
    otp: str | None = Field(default=None, pattern=r"^\s*\d{6}\s*$")

    @model_validator(mode="after")
    def _one_of(self) -> VerifyLinkRequest:
        if not self.token and not self.otp:
            raise ValueError("give either 'token' (from the link) or 'otp' (the 6-digit code)")
        return self


class PasswordLoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an unknown field is a schema violation (422)

    email: EmailStr
    password: str = Field(min_length=1, max_length=1024)


MIN_PASSWORD = 10


def strong_password(password: str) -> str:
    """At least 10 characters and not easy to guess (zxcvbn score 3 or more: no common password, keyboard
    walk, repeat or dictionary word with obvious substitutions)."""
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"use at least {MIN_PASSWORD} characters")
    verdict = zxcvbn(password[:72])
    if verdict["score"] < 3:
        hint = verdict["feedback"].get("warning") or "it is easy to guess"
        raise ValueError(f"choose a harder password: {hint.rstrip('.')}. A few unrelated words work well")
    return password


class SetPasswordRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an unknown field is a schema violation (422)

    password: str = Field(max_length=1024, description="at least 10 characters, not easy to guess")
    otp: str | None = Field(default=None, pattern=r"^\s*\d{6}\s*$",
                            description="the code from POST /api/auth/password/code (required)")
    current_password: str | None = Field(default=None, max_length=1024)

    @field_validator("password")
    @classmethod
    def _strong(cls, v: str) -> str:
        return strong_password(v)


class PasswordCodeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr


class ResetPasswordRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    otp: str = Field(pattern=r"^\s*\d{6}\s*$")
    password: str = Field(max_length=1024, description="at least 10 characters, not easy to guess")

    @field_validator("password")
    @classmethod
    def _strong(cls, v: str) -> str:
        return strong_password(v)


class SessionPublic(BaseModel):
    id: str = Field(description="the session's id (not its token)")
    created_at: datetime
    expires_at: datetime
    current: bool = Field(description="the session of this request")


class BrokerStatus(BaseModel):
    connected: bool
    broker: str = "kite"
    user_id: str | None = None
    expires_at: datetime | None = None
    source: str | None = None


class UserPublic(BaseModel):
    id: int
    email: str
    name: str
    is_admin: bool
    created_at: datetime
    has_password: bool = False
    broker: BrokerStatus | None = None


class AgentKeyPublic(BaseModel):
    prefix: str
    created_at: datetime
    last_used_at: datetime | None


class AgentKeyCreated(BaseModel):
    key: str = Field(description="The full agent key. It is shown only this once; store it now.")
    prefix: str
    created_at: datetime


READ_ONLY_STRATEGY_FIELDS = frozenset({"id", "owner_id", "is_template", "is_public", "forked_from",
                                       "created_at", "updated_at"})


class StrategyCreate(BaseModel):
    """Create body. `entry_rules`/`exit_rules` default to the base model's; `params` fill defaults.
    The read-only fields of a strategy read back (`id`, `owner_id`, ...) are ignored, so a document from
    GET can be PUT back; any other unknown field is a schema violation (422)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _drop_read_only(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if k not in READ_ONLY_STRATEGY_FIELDS}
        return data

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    base_model: str
    entry_rules: dict[str, Any] | None = None
    exit_rules: dict[str, Any] | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    is_active: bool = True

    @model_validator(mode="after")
    def _valid_spec(self) -> StrategyCreate:
        try:
            spec = normalize_spec(self.base_model, self.entry_rules, self.exit_rules, self.params)
        except SpecError as exc:
            raise ValueError(str(exc)) from None
        self.entry_rules, self.exit_rules, self.params = spec.entry_rules, spec.exit_rules, spec.params
        return self


class StrategyUpdate(StrategyCreate):
    """Full replacement: every field is required."""

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(max_length=5000)
    base_model: str
    entry_rules: dict[str, Any]  # type: ignore[assignment]
    exit_rules: dict[str, Any]  # type: ignore[assignment]
    params: dict[str, Any]
    is_active: bool


class StrategyFork(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)


class StrategyPublic(BaseModel):
    id: int
    owner_id: int | None
    name: str
    description: str
    base_model: str
    entry_rules: OpenObject = Field(description="the entry rule tree (docs/STRATEGIES.md)")
    exit_rules: OpenObject = Field(description="stop, target, trailing stop, hold days and the exit rule tree")
    params: OpenObject = Field(description="the base model's parameters")
    is_active: bool
    is_template: bool
    is_public: bool
    forked_from: int | None
    created_at: datetime
    updated_at: datetime
