"""The FastAPI application factory."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from api.acks import CommandAcks
from api.bodylimit import BodyLimitMiddleware
from api.contract import describe_contract
from api.csrf import CsrfMiddleware
from api.deps import SESSION_COOKIE, PrincipalCache
from api.docs import install_docs
from api.errors import document_errors
from api.guards import WORK_GATE, UrlGuardMiddleware
from api.ownership import SignalHomes
from api.routers import agent, auth, backtest, broker, health, links, market, model, risk, strategies, ws
from api.routers import analytics as analytics_router
from api.routers import audit as audit_router
from api.routers import family as family_router
from api.routers import hooks as hooks_router
from api.routers import notifications as notifications_router
from api.routers import overview as overview_router
from api.routers import research as research_router
from api.routers import telegram as telegram_router
from api.routers import uploads as uploads_router
from api.routers import watchlist as watchlist_router
from api.security_headers import SecurityHeadersMiddleware
from api.security_log import SecurityLogMiddleware
from api.textguard import TextGuardMiddleware
from api.validation import validation_error_handler
from api.web import mount_web
from backtest.research.service import ResearchService
from backtest.runner import ProcessPoolRunner
from commands.backtest_runs import RunBacktest
from domain.errors import DomainError
from infra.bootstrap import Platform, bootstrap, seed
from infra.config.settings import Settings
from infra.config.version import VERSION
from infra.runtime import heap
from infra.runtime.scheduler import Scheduler
from infra.store.idempotency import IdempotencyStore
from streams.notifier import Notifier
from streams.runner import ProjectionRunner
from streams.sources import StoreSource
from streams.telegram_bot import TelegramBot
from streams.workers import ReadYourWrites, make_projector

log = logging.getLogger("tradertape.api")


class RequestIdMiddleware:
    """Gives every request an id (or keeps a sane incoming X-Request-ID) and returns it as a header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        rid = incoming if 0 < len(incoming) <= 64 and incoming.replace("-", "").isalnum() else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append((b"x-request-id", rid.encode()))
            await send(message)

        await self.app(scope, receive, send_with_id)


def _request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", "") or uuid.uuid4().hex)


def create_app(settings: Settings | None = None, platform: Platform | None = None,
               run_projector: bool | None = None, settle_heap: bool = False) -> FastAPI:
    """Build the app. With the embedded transport the projector runs in this process (unless
    `run_projector` is False); with Kafka, separate `tradertape relay`/`projector` processes do.
    `settle_heap`: the server process (not tests building many apps) freezes its start-up heap
    (infra/runtime/heap.py)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        plat = platform or bootstrap(settings)
        WORK_GATE.configure(plat.settings.api_threads)
        stop = threading.Event()
        runner: ProjectionRunner | None = None
        embedded = plat.settings.embedded_transport if run_projector is None else run_projector
        if embedded:
            runner = make_projector(plat, "store")
            plat.listeners.append(runner.notify)
            runner.start_thread(stop)
        notifier: Notifier | None = None
        if plat.settings.notifier if plat.settings.notifier is not None else embedded:
            notifier = Notifier(plat, StoreSource(plat.store, seals=runner is None))  # the projector seals
            plat.listeners.append(notifier.notify)
            notifier.start(stop)
        app.state.notifier = notifier
        app.state.platform = plat
        app.state.projector = runner
        app.state.read_your_writes = ReadYourWrites(plat, runner, gate=WORK_GATE)
        app.state.stop = stop
        app.state.principals = PrincipalCache()
        app.state.idempotency = IdempotencyStore(plat.db, plat.store)
        app.state.signal_homes = SignalHomes()
        app.state.backtest_runs = RunBacktest(ProcessPoolRunner(), plat.backtests)
        app.state.research = ResearchService(plat)
        app.state.research.recover()
        seed(plat)
        app.state.market_clock = plat.market_clock
        scheduler: Scheduler | None = None
        if plat.settings.scheduler if plat.settings.scheduler is not None else embedded:
            scheduler = Scheduler(app.state.market_clock, plat.settings.scan_time,
                                  plat.settings.expiry_sweep_seconds)
            scheduler.start()
        app.state.scheduler = scheduler
        if scheduler is not None and plat.settings.telegram_bot_token:
            # one bot per deployment, where the one scheduler runs (else: `tradertape telegram`)
            TelegramBot(plat, app.state.read_your_writes).start_thread(stop)
        if scheduler is not None and plat.settings.paper_tick_fills:
            # the feed runs from the start, so placed paper GTTs fill on ticks in market hours even
            # while nobody watches the tick stream
            await ws.ensure_hub(app)
        if settle_heap:
            heap.settle()
        try:
            yield
        finally:
            if getattr(app.state, "tick_hub", None) is not None:
                await app.state.tick_hub.stop()
            if scheduler is not None:
                scheduler.stop()
            app.state.research.shutdown()
            stop.set()
            if runner is not None:
                runner.notify()
            if notifier is not None:
                notifier.notify()
                notifier.wake_dispatchers()
            if platform is None:
                plat.close()

    app = FastAPI(
        title="TraderTape API",
        version=VERSION,
        description="Event-sourced trading platform for Indian equities on Zerodha Kite. "
        "Errors are `{\"detail\": ...}`; another user's private object is 404, an object you can read "
        "but not change is 403.",
        docs_url=None,  # api/docs.py: Swagger UI from local assets, under the CSP
        redoc_url=None,
        openapi_url="/api/openapi.json",
        lifespan=lifespan,
    )
    app.add_middleware(CommandAcks)
    # the last added runs first
    app.add_middleware(CsrfMiddleware, cookie_name=SESSION_COOKIE, base_url=settings.public_base_url)
    app.add_middleware(TextGuardMiddleware)
    app.add_middleware(UrlGuardMiddleware)
    app.add_middleware(SecurityLogMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(BodyLimitMiddleware, default_bytes=settings.body_max_kb * 1024)  # before any body read
    if settings.trusted_proxy_list:  # client IPs from X-Forwarded-For, only when a trusted proxy sent it
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.trusted_proxy_list))

    app.add_exception_handler(RequestValidationError, validation_error_handler)

    @app.exception_handler(DomainError)
    async def _domain_error(request: Request, exc: DomainError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
        rid = _request_id(request)
        log.error("unhandled error in %s %s (request id %s)", request.method, request.url.path, rid, exc_info=exc)
        return JSONResponse(
            {"detail": f"Internal server error; quote request id {rid} when reporting it", "request_id": rid},
            status_code=500, headers={"X-Request-ID": rid},
        )

    install_docs(app, "/api/openapi.json", "TraderTape API")
    routers = [health.router, auth.router, strategies.router, market.router, backtest.router, model.router,
               risk.router, broker.router, agent.router, ws.router, uploads_router.router, analytics_router.router,
               family_router.router, audit_router.router, hooks_router.router, notifications_router.router,
               overview_router.router, research_router.router, telegram_router.router, watchlist_router.router,
               links.router, links.legacy]  # (links: pages opened from emails)
    for router in routers:
        app.include_router(router)
    mount_web(app)  # `/` and client routes; answers only where no route matched
    app.openapi = document_errors(app.openapi)  # type: ignore[method-assign]
    describe_contract(app, routers, agent.agent_principal)
    return app
