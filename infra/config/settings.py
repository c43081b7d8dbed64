"""Typed settings (environment variables prefixed TRADERTAPE_, or a .env file)."""

from __future__ import annotations

import os
import secrets
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = {"", "change-me", "changeme", "secret", "please-change-me"}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRADERTAPE_", env_file=".env", extra="ignore")

    env: Literal["development", "production", "test"] = "development"
    var_dir: Path = Path("./var")
    database_url: str = "sqlite:///./var/tradertape.db"
    kafka_bootstrap: str | None = None
    kafka_topic: str = "tradertape.events"
    kafka_partitions: int = Field(default=3, ge=1, le=256)
    duckdb_path: Path = Path("./var/analytics.duckdb")
    data_dir: Path = Path("./var/data")
    # Comma-separated; the first signs/encrypts, the others are still accepted (rotation).
    secret_keys: str = ""
    smtp_url: str | None = None  # smtp://user:pass@host:port, smtps://..., ?starttls=1
    mail_from: str = "TraderTape <no-reply@tradertape.local>"
    # The session cookie's Secure flag: unset = on in production (served over HTTPS), off otherwise
    cookie_secure: bool = False
    session_days: int = 30
    # The address emailed links point at (https://trade.example.com behind a proxy). Unset: derived from the
    # listening address, http://HOST:PORT (127.0.0.1 when HOST is a wildcard); see `public_base_url`.
    base_url: str | None = None
    host: str = "127.0.0.1"
    # Comma-separated addresses (or CIDR networks) of reverse proxies whose X-Forwarded-For/-Proto are
    # believed; empty: the connecting address is the client's (security logs, rate limits)
    trusted_proxies: str = Field(default="", description=(
        "Comma-separated addresses or networks of reverse proxies whose X-Forwarded-For/-Proto are believed; "
        "empty: the connecting address is the client's (security log, rate limits)"))
    port: int = Field(default=8000, ge=0, le=65535)
    admin_emails: str = ""  # comma-separated emails that become admins
    otp_failures_per_day: int = Field(default=20, ge=1, description=(
        "Wrong emailed 6-digit codes (sign-in or password) one address may send in 24 hours; then codes are "
        "refused (429) while the emailed link still signs in"))
    invitations_per_day: int = Field(default=20, ge=1, description=(
        "Family invitations one account may send in 24 hours (then 429)"))
    sign_in_emails_per_address: int = Field(default=5, ge=1, le=10_000, description=(
        "Sign-in and password emails one address may ask for per `TRADERTAPE_SIGN_IN_WINDOW_SECONDS` (then 429)"))
    sign_in_emails_per_ip: int = Field(default=30, ge=1, le=100_000, description=(
        "Sign-in and password emails one client address may ask for per window (then 429); raise it when many "
        "people sign in from behind one address (an office's NAT)"))
    sign_in_attempts_per_ip: int = Field(default=60, ge=1, le=100_000, description=(
        "Sign-in attempts (code, link or password) from one client address, and password attempts for one "
        "email, per window (then 429)"))
    sign_in_window_seconds: int = Field(default=900, ge=60, le=86_400, description=(
        "The window the three sign-in limits above count in"))
    db_pool_size: int = Field(default=10, ge=1, le=200, description=(
        "Postgres connections per process: the event store's pool opens this many at start (up to twice under "
        "load), the reads' and writes' pool keeps up to twice this many (and as many again under load). Postgres's "
        "max_connections must cover every process (serve, relay, projector, notifier, CLI runs) at their peak"))
    sqlite_synchronous: Literal["normal", "full"] = Field(default="normal", description=(
        "SQLite (the embedded default): `normal` -- every commit survives the process being killed; a power "
        "cut or an OS crash may lose the last moments' commits, never corrupt the file (SQLite's WAL guarantee). "
        "`full` -- each commit also waits for the disk (an fsync per command): that survives a power cut too, "
        "at the cost of a disk flush inside every write, which a busy disk stretches to hundreds of ms for "
        "every writer queued behind it. Postgres deployments are durable per commit either way"))
    read_your_writes_timeout: float = 2.0
    # /api/health turns "degraded" when a read model (a Kafka partition, or the store) is more than this
    # many events behind, or a projector/relay step failed this many times in a row
    health_max_lag: int = Field(default=1000, ge=1)
    health_max_failures: int = Field(default=3, ge=1)
    # Bearer token an operator's monitoring sends to /metrics and /api/health (detail); empty: admins only
    metrics_token: str = ""
    # request threads of one API process that run at the same time (infra/runtime/workgate.py); 0 = no limit
    api_threads: int = Field(default=4, ge=0, le=64)
    # The market clock: after the close on trading days, step every portfolio (fills, exits, the scan).
    # None = on in the embedded default (serve runs it); with Kafka run `tradertape scheduler` instead.
    scheduler: bool | None = None
    scan_time: str = Field(default="15:45", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")  # Asia/Kolkata
    expiry_sweep_seconds: float = Field(default=60.0, gt=0)
    log_level: str = "INFO"
    # Every request body but the uploads': larger is a 413 (on Content-Length and while streaming)
    body_max_kb: int = Field(default=1024, ge=16, le=65536, description=(
        "Largest request body in KB, uploads excepted (they have their own limit): larger is a 413"))
    # Uploads (tradebook, ledger, CAS): per-file size limit, checked before a file is read
    upload_max_mb: float = Field(default=20.0, gt=0)
    upload_max_files: int = Field(default=10, ge=1, le=100)
    pdf_parse_seconds: float = Field(default=60.0, gt=0)  # wall-clock limit of one CAS parse
    cas_parses_at_once: int = Field(default=2, ge=1, le=64, description=(
        "CAS PDF parses one API process runs at a time (one per account); another upload is a 429"))
    pdf_parse_memory_mb: int = Field(default=1536, ge=256)  # address-space limit of the parser process
    # Kite Connect (the official client's defaults; tests point these at a loopback stub)
    kite_api_root: str = "https://api.kite.trade"
    kite_login_url: str = "https://kite.zerodha.com/connect/login"
    kite_ws_root: str = "wss://ws.kite.trade"
    broker_cache_seconds: float = Field(default=30.0, ge=0)
    # The tick WebSocket's upstream: "auto" = Kite's ticker while some account has a broker session, else the
    # simulated feed; "simulated" never connects to Kite.
    tick_feed: Literal["auto", "simulated"] = "auto"
    ws_max_per_account: int = Field(default=20, ge=1, le=1000, description=(
        "Open tick WebSockets of one account per API process; another is closed with code 1008"))
    tick_interval: float = Field(default=0.5, gt=0)  # seconds between simulated ticks of one symbol
    tick_always_open: bool = False  # the simulated feed moves outside NSE hours too (demos, benchmarks)
    # a `status` message (market_open, next_open) to every tick client this often, ticks or not
    tick_heartbeat_seconds: float = Field(default=15.0, gt=0, le=15)
    # Paper portfolios fill their GTTs (limit entries, stop/target) on ticks while the tick feed runs (it starts
    # with the first /api/ws/ticks connection); off: paper fills only on daily bars, as in a backtest.
    paper_tick_fills: bool = True
    paper_tick_refresh_seconds: float = Field(default=5.0, gt=0)  # how often the watched orders are reloaded
    # Telegram: the bot people link to their account (Settings), with Approve/Reject buttons and commands
    telegram_bot_token: str = Field(default="", description=(
        "The Telegram bot's token from @BotFather; empty: no Telegram (linking answers 400)"))
    telegram_api_url: str = Field(default="https://api.telegram.org", description=(
        "The Bot API's base URL (a self-hosted Bot API server, or a test stub); the bot calls "
        "<url>/bot<token>/<method>"))
    # Inbound alert hooks (POST /api/webhooks/{token}: TradingView, Chartink)
    webhook_alerts_per_minute: int = Field(default=120, ge=1, le=100_000, description=(
        "Alerts one hook accepts in a minute (then 429, until the minute passes)"))
    webhook_dedupe_seconds: float = Field(default=3600.0, ge=0, le=86_400, description=(
        "An alert with the same id (or, without one, the same content) within this many seconds of an earlier "
        "one to the same hook is a repeat: answered again, never a second signal"))
    # Notifications (streams/notifier.py). None = the notifier runs inside `serve` in the embedded default;
    # with Kafka run `tradertape notifier` instead.
    notifier: bool | None = Field(default=None, description=(
        "Run the notifier inside `serve` (unset: yes in the embedded default, no with Kafka, where "
        "`tradertape notifier` runs it)"))
    notify_rate_per_minute: int = Field(default=10, ge=1, le=1000, description=(
        "Messages one user receives per channel per minute; more due at once are merged into one message, "
        "and past the limit they wait"))
    notify_max_attempts: int = Field(default=8, ge=1, le=100, description=(
        "Sends tried per delivery before it is shown as failed"))
    notify_retry_seconds: float = Field(default=30.0, gt=0, description=(
        "First retry delay of a failed send; doubled per attempt, at most an hour"))
    notify_senders: int = Field(default=16, ge=1, le=64, description=(
        "Messages each channel sends at once (SMTP connections, Telegram requests); one user's messages still "
        "go one after the other, in order. Lower it if the mail server limits connections per client"))
    notify_lease_seconds: float = Field(default=30.0, gt=0, description=(
        "How long a dispatcher holds deliveries it is sending, until the server answers; a stopped notifier's are "
        "sent again after it (those it had recorded sent marked as a possible repeat)"))
    notify_expiry_reminder_minutes: int = Field(default=60, ge=1, le=1440, description=(
        "Remind of a signal still pending approval this many minutes before it expires"))
    notify_agent_offline_minutes: int = Field(default=10, ge=1, le=1440, description=(
        "Tell a live trader when their agent has not called for this many minutes during market hours"))
    notify_kite_reminder_time: str = Field(default="08:45", pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description=(
        "IST time on trading days to remind a live trader whose Kite session ended (06:00 IST) to log in"))
    notify_digest_time: str = Field(default="16:15", pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description=(
        "IST time on trading days of the daily digest (after the close and the market clock's scan)"))
    notify_check_seconds: float = Field(default=30.0, gt=0, description=(
        "How often the notifier's timed checks run (expiry reminders, agent offline, Kite session, digest)"))
    # Research jobs (sweeps, walk-forward, ...): where their backtests run and how big one may be
    dask_scheduler: str | None = Field(default=None, description=(
        "Address of a Dask distributed scheduler (tcp://host:8786) that runs research jobs' backtests; "
        "unset: a local process pool"))
    research_workers: int = Field(default=0, ge=0, le=256, description=(
        "Processes of the local research pool; 0: one per CPU"))
    research_max_combinations: int = Field(default=5000, ge=1, le=1_000_000, description=(
        "Most backtests one research job may run (combinations, or windows x combinations); more is a 400"))
    research_notify_after: float = Field(default=60.0, ge=0, le=86_400, description=(
        "Seconds a research job must have run for its end (done, failed, cancelled) to be notified"))

    @model_validator(mode="before")
    @classmethod
    def _secure_cookie_in_production(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("cookie_secure") in (None, ""):
            data = {**data, "cookie_secure": data.get("env") == "production"}
        return data

    @field_validator("kafka_bootstrap", "smtp_url", "base_url", "dask_scheduler", mode="before")
    @classmethod
    def _empty_is_none(cls, v: object) -> object:
        return None if v == "" else v

    @property
    def public_base_url(self) -> str:
        """Where a person's browser reaches this server: TRADERTAPE_BASE_URL, else the listening address."""
        if self.base_url:
            return self.base_url.rstrip("/")
        host = self.host.strip("[]")
        if host in ("", "0.0.0.0", "::"):  # listening everywhere: loopback is the one address sure to work here
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def analytics_dir(self) -> Path:
        """Parquet files of the analytics store (beside the DuckDB file)."""
        return self.duckdb_path.parent / "analytics"

    @property
    def trusted_proxy_list(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.trusted_proxies.split(",") if p.strip())

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def embedded_transport(self) -> bool:
        return not self.kafka_bootstrap

    @property
    def admin_email_list(self) -> tuple[str, ...]:
        return tuple(e.strip().lower() for e in self.admin_emails.split(",") if e.strip())

    @cached_property
    def secret_key_list(self) -> list[str]:
        """The secret keys; development generates and keeps one under var_dir (mode 0600)."""
        keys = [k.strip() for k in self.secret_keys.split(",") if k.strip()]
        if any(k.lower() in PLACEHOLDER_SECRETS or len(k) < 32 for k in keys):
            raise RuntimeError("TRADERTAPE_SECRET_KEYS holds a placeholder or a key shorter than 32 characters")
        if keys:
            return keys
        if self.env == "production":
            raise RuntimeError(
                "TRADERTAPE_SECRET_KEYS is not set: production refuses to start without a secret key "
                "(generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        path = self.var_dir / "secret.key"
        if not path.exists():
            self.var_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(48))
        return [path.read_text().strip()]

    def check(self) -> None:
        """Fail fast on a configuration production must not run with."""
        _ = self.secret_key_list
