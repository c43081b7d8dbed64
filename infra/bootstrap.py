"""The composition root: builds every adapter from the settings into a `Platform` (stores, bus, mailer, bar data,
the market clock), which every process starts from: the API, the stream workers, the CLI commands. It is the
highest module all of them can import (`api`, `streams` and `backtest` sit above `infra`); what only one of
them adds, it wires itself (the API: its work gate and the backtest worker pool). Nothing connects at import
time."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import sqlalchemy as sa

from commands.bus import MessageBus
from commands.handlers import HANDLERS
from commands.market_clock import MarketClock
from commands.messages import SeedTemplates
from commands.ports import CommandMeta, Mailer, MarketData
from commands.uow import AuthPolicy, Deps
from infra.analytics.backtests import BacktestArchive
from infra.auth.secrets import SecretBox, SqlBrokerSecrets
from infra.auth.security import Argon2Passwords, HmacTokenHasher, SqlSecurityStore
from infra.bars.market import BarStoreMarket
from infra.config.settings import Settings
from infra.mail.mailers import ConsoleMailer, SmtpMailer
from infra.store.chain import HashChain
from infra.store.db import Database, SqlIdAllocator
from infra.store.eventstore import SqlEventStore, SystemClock, make_recorder
from infra.store.record_index import SqlRecordIndex
from projections.base import tracking_metadata
from projections.notifications import metadata as notifications_metadata
from projections.portfolios.queries import active_portfolio_rows, overdue_signal_ids, portfolio_ids_using_strategy
from projections.registry import all_projections

log = logging.getLogger(__name__)


@dataclass
class Platform:
    settings: Settings
    db: Database
    store: SqlEventStore
    security: SqlSecurityStore
    bus: MessageBus
    mailer: Mailer
    token_hash: HmacTokenHasher
    backtests: BacktestArchive
    market_clock: MarketClock  # one per process: its lock keeps one clock run at a time
    listeners: list[Callable[[int], None]] = field(default_factory=list)  # told each saved position

    def close(self) -> None:
        self.db.dispose()


class ReadModelPortfolioUsage:
    """Active and paused portfolios per strategy, from the portfolio read model."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def active_portfolios_using(self, strategy_id: int) -> int:
        with self.db.read() as conn:
            return portfolio_ids_using_strategy(conn, strategy_id)


class ReadModelClockReads:
    """The market clock's work, from the portfolio and signal read models (`ClockReads`)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def active_portfolios(self) -> list[tuple[int, str | None]]:
        with self.db.read() as conn:
            return [(int(row["id"]), row["last_day"]) for row in active_portfolio_rows(conn)]

    def overdue_signals(self, moment: str) -> list[tuple[int, int]]:
        with self.db.read() as conn:
            return [(portfolio_id, signal_id) for _account, portfolio_id, signal_id in overdue_signal_ids(conn, moment)]


def make_mailer(settings: Settings) -> Mailer:
    if settings.smtp_url:
        return SmtpMailer(settings.smtp_url, settings.mail_from)
    return ConsoleMailer(settings.var_dir / "mail", settings.mail_from)


@contextmanager
def schema_lock(db: Database) -> Iterator[None]:
    """Serialise schema creation across processes starting together (Postgres DDL races otherwise)."""
    if db.is_sqlite:
        yield
        return
    with db.writer.connect() as conn:
        conn.execute(sa.text("SELECT pg_advisory_lock(7411001)"))
        try:
            yield
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(7411001)"))
            conn.commit()


def bootstrap(settings: Settings, mailer: Mailer | None = None, market: MarketData | None = None) -> Platform:
    """Every adapter from the settings; `mailer` and `market` (the bar store under another data dir) replace
    the configured ones."""
    settings.check()
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    db = Database.from_settings(settings)
    clock = SystemClock()
    with schema_lock(db):
        db.create_security_tables()
        broker_secrets = SqlBrokerSecrets(db, SecretBox(settings.secret_key_list))
        broker_secrets.create_table()
        recorder = make_recorder(settings.database_url, settings.db_pool_size, settings.sqlite_synchronous)
        store = SqlEventStore(recorder, clock)
        store.writer_turn = db.writer_turn
        chain = HashChain(db, store.read_plain)
        chain.create_tables()
        store.chain = chain
        with db.write() as conn:
            tracking_metadata.create_all(conn)
            for p in all_projections():
                p.create(conn)
            notifications_metadata.create_all(conn)  # the notifier's (it may run in another process)
    security = SqlSecurityStore(db)
    token_hash = HmacTokenHasher(settings.secret_key_list[0])
    mail = mailer or make_mailer(settings)
    deps = Deps(
        store=store, ids=SqlIdAllocator(db), clock=clock, security=security, mailer=mail,
        passwords=Argon2Passwords(), token_hash=token_hash,
        auth=AuthPolicy(base_url=settings.public_base_url, session_days=settings.session_days,
                        admin_emails=settings.admin_email_list, otp_failures_per_day=settings.otp_failures_per_day,
                        invitations_per_day=settings.invitations_per_day,
                        link_requests_per_email=settings.sign_in_emails_per_address,
                        link_requests_per_ip=settings.sign_in_emails_per_ip,
                        login_attempts_per_ip=settings.sign_in_attempts_per_ip,
                        rate_window_seconds=settings.sign_in_window_seconds),
        portfolio_usage=ReadModelPortfolioUsage(db),
        records=SqlRecordIndex(db),
        secrets=broker_secrets,
        market=market or BarStoreMarket(settings.data_dir),
    )
    listeners: list[Callable[[int], None]] = []

    def on_saved(position: int) -> None:
        for listener in listeners:
            listener(position)

    bus = MessageBus(deps, HANDLERS, on_saved=on_saved)
    archive = BacktestArchive(settings.analytics_dir / "backtests")
    clock_runs = MarketClock(bus, ReadModelClockReads(db))
    return Platform(settings, db, store, security, bus, mail, token_hash, archive, clock_runs, listeners)


def seed(platform: Platform) -> None:
    """Idempotent first-run data: the strategy templates."""
    created = platform.bus.handle(SeedTemplates(), CommandMeta(actor="system")).value
    if created:
        log.info("seeded %d strategy templates", len(created))
