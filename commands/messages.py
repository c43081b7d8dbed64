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
    """Needs a fresh code (`RequestPasswordCode`); signs out every other session of the account."""

    account_id: int
    password: str
    current_password: str | None = None
    otp: str | None = None
    keep_session_hash: str | None = None  # the caller's own session stays signed in


@dataclass(frozen=True)
class RequestPasswordCode:
    """Email a 6-digit code that sets or resets the password (the answer never says whether the email is
    known)."""

    email: str
    client_ip: str = ""


@dataclass(frozen=True)
class ResetPassword:
    """Set a new password with the emailed code, signed out; every session of the account is signed out."""

    email: str
    otp: str
    password: str
    client_ip: str = ""


@dataclass(frozen=True)
class RevokeSessions:
    """Sign out sessions of the account: those whose id starts `session_ids`, or all but `keep_session_hash`."""

    account_id: int
    session_ids: tuple[str, ...] | None = None
    keep_session_hash: str | None = None


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
    is_public: bool | None = None  # None: toggle


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


# ------------------------------------------------------------------ model portfolios


@dataclass(frozen=True)
class DeployPortfolio:
    account_id: int
    strategy_id: int
    name: str
    mode: str
    capital: float
    universe: str
    position_size_pct: float
    max_positions: int
    max_per_sector: int | None = None
    auto_approve: bool = False
    slippage_bps: float = 0.0
    charges: str = "zerodha_delivery"


@dataclass(frozen=True)
class ChangePortfolioStatus:
    account_id: int
    portfolio_id: int
    action: str  # pause | resume | retire | reset


@dataclass(frozen=True)
class RunPortfolioDay:
    """The market clock's step for one portfolio and one stored trading day: fills and exits on the
    day's bars (paper), marks, exit signals, then the after-close scan."""

    portfolio_id: int
    day: str
    scan: bool = True


@dataclass(frozen=True)
class CheckDailyLoss:
    """After a day's steps: engage the kill switch where the day's loss reached a max_daily_loss rule."""

    account_id: int
    day: str


@dataclass(frozen=True)
class DecideSignal:
    account_id: int | None  # None: the system (the expiry sweep)
    portfolio_id: int
    signal_id: int
    action: str  # approve | reject | expire
    reason: str = ""


@dataclass(frozen=True)
class PlaceCart:
    account_id: int
    items: tuple[tuple[int, int], ...] = ()  # (portfolio_id, signal_id), in the order to place
    # with no items: every in-cart signal of the account's portfolios (or of this one), by signal id
    portfolio_id: int | None = None


@dataclass(frozen=True)
class ClosePosition:
    account_id: int
    portfolio_id: int
    position_id: int
    quantity: int | None = None  # a partial close: this many shares (None: all)


@dataclass(frozen=True)
class ApplyTicks:
    """Paper portfolios while a tick feed runs: the latest tick prices of `day` ({symbol: ltp}) against the
    portfolio's working GTTs (limit entries, stop/target)."""

    portfolio_id: int
    day: str
    prices: tuple[tuple[str, float], ...]
    tick_time: str | None = None  # when they traded (ISO, with offset); None: no session rules (demo feed)


# ------------------------------------------------------------------ risk rules


@dataclass(frozen=True)
class RiskRuleBody:
    rule_type: str
    portfolio_id: int | None = None
    value: float | None = None
    unit: str | None = None
    symbols: tuple[str, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class CreateRiskRule:
    account_id: int
    body: RiskRuleBody


@dataclass(frozen=True)
class UpdateRiskRule:
    account_id: int
    rule_id: int
    body: RiskRuleBody


@dataclass(frozen=True)
class DeleteRiskRule:
    account_id: int
    rule_id: int


@dataclass(frozen=True)
class SetWatchlist:
    """Replace the account's watchlist (domain.watchlist: normalized, at most 50 symbols)."""

    account_id: int
    symbols: tuple[str, ...]


@dataclass(frozen=True)
class WatchlistAnswer:
    symbols: list[str]
    updated_at: str
