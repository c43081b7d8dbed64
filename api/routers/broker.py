"""Kite connection (API "Authentication": kite-credentials, login-url, callback) and live broker data
(API "Live broker data": /api/portfolio/holdings|positions|orders|margins, proxied through KiteBroker
with a ~30 s per-user cache)."""

from __future__ import annotations

import secrets
import threading
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.deps import PlatformDep, Reader, SessionUser, answer_rows, dispatch, resource_router
from api.public.base import answers
from api.public.broker import (
    KiteLoginReceived,
    KiteMarginsPublic,
    KiteOrderPublic,
    KitePositionsPublic,
    KiteRowPublic,
    LoginUrlPublic,
)
from api.public.portfolios import ReconciliationPublic
from api.security_log import security_event
from commands import agent_messages as am
from commands.bus import CommandResult
from commands.ports import CommandMeta
from domain.broker import BrokerConnection
from domain.errors import DomainError, NotFound
from infra.bars.universes import known_isins
from infra.bootstrap import Platform
from infra.kite.brokers import BrokerDataProxy, BrokerProxyError
from infra.kite.client import KiteBroker, login_url
from projections.broker import BrokerProjection, get_connection
from projections.joined import reconciliation

router = resource_router("/api", ["broker"])
_proxy_lock = threading.Lock()


class KiteCredentialsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    api_key: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")
    api_secret: str = Field(min_length=1, max_length=128)


class KiteCredentialsPublic(BaseModel):
    api_key: str
    api_secret: str  # masked
    saved_at: str | None = None


def api_key_of(platform: Platform, account_id: int) -> str | None:
    with platform.db.read() as conn:
        row = get_connection(conn, account_id)
    return None if row is None else row["api_key"]


def broker_proxy(request: Request) -> BrokerDataProxy:
    """The app's proxy (built on first use; one per app so the cache is shared by its requests)."""
    proxy: BrokerDataProxy | None = getattr(request.app.state, "broker_proxy", None)
    if proxy is not None:
        return proxy
    with _proxy_lock:
        proxy = getattr(request.app.state, "broker_proxy", None)
        if proxy is None:
            platform: Platform = request.app.state.platform
            settings = platform.settings

            app = request.app

            def on_token_error(account_id: int, message: str) -> None:
                result = platform.bus.handle(
                    am.DisconnectBrokerSession(account_id, f"Kite rejected the token: {message}"),
                    CommandMeta(actor="system", account_id=account_id))
                app.state.read_your_writes.wait(result.touched_accounts, result.position)

            proxy = BrokerDataProxy(
                platform.bus.deps.secrets, lambda a: api_key_of(platform, a),
                lambda key, token: KiteBroker(key, token, root=settings.kite_api_root),
                on_token_error, ttl=settings.broker_cache_seconds)
            request.app.state.broker_proxy = proxy
        return proxy


# ------------------------------------------------------------------ Kite credentials and login


def _credentials(platform: Platform, account_id: int, result: CommandResult | None = None) -> KiteCredentialsPublic:
    """The stored credentials (after a command: as it left them, see `answer_rows`)."""
    done = result or CommandResult(None, None, account_id)
    with answer_rows(platform, done, BrokerProjection, [BrokerConnection.uuid_for(account_id)]) as conn:
        row = get_connection(conn, account_id)
    if row is None or row["api_key"] is None:
        raise NotFound("No Kite credentials saved; POST /api/auth/kite-credentials with api_key and api_secret")
    return KiteCredentialsPublic(api_key=row["api_key"], api_secret=row["api_secret_masked"],
                                 saved_at=row["credentials_saved_at"])


@router.get("/auth/kite-credentials", response_model=KiteCredentialsPublic,
            summary="The stored Kite app credentials: api_key and a masked api_secret")
def get_kite_credentials(user: Reader, platform: PlatformDep) -> KiteCredentialsPublic:
    """None saved is a 404."""
    return _credentials(platform, user.account_id)


@router.post("/auth/kite-credentials", response_model=KiteCredentialsPublic,
             summary="Save the Kite app's api_key and api_secret (the secret is encrypted at rest)")
def save_kite_credentials(body: KiteCredentialsBody, request: Request, user: SessionUser,
                          platform: PlatformDep) -> KiteCredentialsPublic:
    """Replaces any saved before; answers them with the secret masked."""
    result = dispatch(request, platform, am.SaveKiteCredentials(user.account_id, body.api_key, body.api_secret),
                      user)
    proxy = getattr(request.app.state, "broker_proxy", None)
    if proxy is not None:
        proxy.forget(user.account_id)
    return _credentials(platform, user.account_id, result)


@router.get("/auth/kite/login-url", **answers(LoginUrlPublic), summary="The Kite login URL for the stored api_key")
def kite_login_url(user: SessionUser, platform: PlatformDep) -> dict[str, str]:
    """With a one-time state (15 minutes) Kite echoes back to the callback; no saved credentials is a 400."""
    key = api_key_of(platform, user.account_id)
    if key is None:
        raise DomainError("No Kite credentials saved; POST /api/auth/kite-credentials first")
    # a one-time state, tied to this account, that Kite echoes back to the callback (`redirect_params`)
    state = secrets.token_urlsafe(24)
    now = datetime.now(UTC)
    platform.security.create_kite_state(user.account_id, platform.token_hash(f"kite-state:{state}"),
                                        now + timedelta(minutes=KITE_LOGIN_MINUTES), now)
    url = login_url(key, platform.settings.kite_login_url)
    return {"login_url": f"{url}&{urlencode({'redirect_params': urlencode({'state': state})})}"}


KITE_LOGIN_MINUTES = 15


@router.get("/auth/kite/callback", **answers(KiteLoginReceived),
            summary="Kite's redirect target: records the request token for your agent to exchange "
                    "(only for a login started by GET /api/auth/kite/login-url, once)")
def kite_callback(request: Request, user: SessionUser, platform: PlatformDep,
                  request_token: str = Query(default="", max_length=128),
                  status: str = Query(default="success", max_length=32),
                  state: str = Query(default="", max_length=64)) -> dict[str, str]:
    """A state this session did not start, an expired or a used one is a 400."""
    if not state or not platform.security.use_kite_state(
            user.account_id, platform.token_hash(f"kite-state:{state}"), datetime.now(UTC)):
        security_event(request, "kite_callback_refused", account=user.account_id)
        raise DomainError("This Kite login was not started from your session, has expired or was already used: "
                          "start again with GET /api/auth/kite/login-url")
    dispatch(request, platform, am.RecordKiteLogin(user.account_id, request_token, status), user)
    return {"detail": "Kite login received; your agent exchanges the request token within a few seconds "
                      "(check GET /api/auth/status)", "status": "pending"}


# ------------------------------------------------------------------ live broker data


async def _proxied(request: Request, user: Reader, endpoint: str) -> Any:
    proxy = broker_proxy(request)
    try:
        return await run_in_threadpool(proxy.fetch, user.account_id, endpoint)
    except BrokerProxyError as exc:
        raise _ProxyHttpError(exc.status, exc.detail) from None


class _ProxyHttpError(DomainError):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status


@router.get("/portfolio/holdings", **answers(list[KiteRowPublic]),
            summary="Live broker holdings (Kite's shape), cached ~30 s")
async def holdings(request: Request, user: Reader) -> Any:
    """Read from Kite with the account's session; no session is a 400, Kite refusing it a 401 or 403 as Kite
    says."""
    return await _proxied(request, user, "holdings")


@router.get("/portfolio/positions", **answers(KitePositionsPublic),
            summary="Live positions {net, day} (Kite's shape), cached ~30 s")
async def positions(request: Request, user: Reader) -> Any:
    """As the holdings: read from Kite with the account's session."""
    return await _proxied(request, user, "positions")


@router.get("/portfolio/orders", **answers(list[KiteOrderPublic]),
            summary="Today's orders (Kite's shape), cached ~30 s")
async def orders(request: Request, user: Reader) -> Any:
    """As the holdings: read from Kite with the account's session."""
    return await _proxied(request, user, "orders")


@router.get("/portfolio/margins", **answers(KiteMarginsPublic),
            summary="Available cash and margin (Kite's shape), cached ~30 s")
async def margins(request: Request, user: Reader) -> Any:
    """As the holdings: read from Kite with the account's session."""
    return await _proxied(request, user, "margins")


@router.get("/portfolio/reconciliation", **answers(ReconciliationPublic),
            summary="Drift between your live portfolios' positions and the last broker snapshot the agent pushed")
def reconciliation_view(user: Reader, platform: PlatformDep) -> dict[str, Any]:
    """Quantities against the holdings and positions snapshot (missing, extra, quantity), each open position's
    stop, target and quantity against its protective GTT, and the fills the agent could not resolve."""
    with platform.db.read() as conn:
        return reconciliation(conn, user.account_id, isins=known_isins())
