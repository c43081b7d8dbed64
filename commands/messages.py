"""Commands: small frozen dataclasses named in the imperative."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RequestLoginLink:
    email: str
    client_ip: str


@dataclass(frozen=True)
class VerifyLogin:
    email: str
    token: str | None = None
    otp: str | None = None
    client_ip: str = ""


@dataclass(frozen=True)
class PasswordLogin:
    email: str
    password: str
    client_ip: str = ""


@dataclass(frozen=True)
class SetPassword:
    account_id: int
    password: str
    current_password: str | None = None


@dataclass(frozen=True)
class Logout:
    session_token: str


@dataclass(frozen=True)
class IssueAgentKey:
    account_id: int


@dataclass(frozen=True)
class RevokeAgentKey:
    account_id: int


@dataclass(frozen=True)
class GrantAdmin:
    account_id: int


@dataclass(frozen=True)
class StrategyBody:
    name: str
    description: str
    base_model: str
    entry_rules: dict[str, Any] | None
    exit_rules: dict[str, Any] | None
    params: dict[str, Any] | None
    is_active: bool


@dataclass(frozen=True)
class CreateStrategy:
    account_id: int
    body: StrategyBody


@dataclass(frozen=True)
class UpdateStrategy:
    account_id: int
    strategy_id: int
    body: StrategyBody


@dataclass(frozen=True)
class DeleteStrategy:
    account_id: int
    strategy_id: int


@dataclass(frozen=True)
class ForkStrategy:
    account_id: int
    strategy_id: int
    name: str | None = None


@dataclass(frozen=True)
class ToggleShareStrategy:
    account_id: int
    strategy_id: int


@dataclass(frozen=True)
class SeedTemplates:
    pass


@dataclass(frozen=True)
class RecordBacktestRun:
    account_id: int
    params: dict[str, Any]
    summary: dict[str, Any]
    diagnostics: dict[str, Any]
    monthly_returns: dict[str, Any]
    open_positions: list[dict[str, Any]]
    data_fingerprint: str
    detail_ref: str


@dataclass(frozen=True)
class DeleteBacktestRun:
    account_id: int
    run_id: int
