"""Inbound alert hooks (TradingView, Chartink): managed by their owner under /api/hooks, posted to by the
alert service at /api/webhooks/{hook_token} with no session (the token is the credential, kept hashed).

An alert becomes signals of the hook's portfolio through the same command code as the after-close scan
(pending approval, or placed at once with auto-approve when the risk rules pass), recorded with the alert.
A repeat of an alert (same `alert_id`, or the same content, within `TRADERTAPE_WEBHOOK_DEDUPE_SECONDS`)
gets the first answer again and records nothing. A malformed alert is a 422 naming the field; an unknown,
rotated-away or deleted token a 404; more than `TRADERTAPE_WEBHOOK_ALERTS_PER_MINUTE` alerts to one hook
in a minute a 429.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator
from starlette.datastructures import UploadFile

from api.deps import IdPath, PageDep, PlatformDep, Reader, SessionUser, answer_rows, dispatch, resource_router
from api.errors import schema_error
from api.guards import MAX_ID, strict_json_loads
from api.public.base import answers
from api.public.hooks import AlertAnswerPublic, HookPublic, IssuedHookPublic
from api.textguard import fault_error
from commands import hooks_messages as hm
from commands.bus import CommandResult
from domain.errors import NotFound, TooManyRequests
from domain.portfolio.aggregate import Portfolio
from domain.text import NSE_SYMBOL
from domain.webhooks import Webhook, content_key, hook_id_of
from infra.bootstrap import Platform
from projections.portfolios.projector import PortfoliosProjection
from projections.portfolios.queries import get_signals
from projections.webhooks import WebhooksProjection, get_webhook, list_webhooks

router = resource_router("/api", ["alert hooks"])


MAX_STOCKS = 200  # stocks of one Chartink alert
UNKNOWN = "Unknown or revoked hook"
TRADINGVIEW_MESSAGE = ('{{"symbol": "{{{{exchange}}}}:{{{{ticker}}}}", "action": "{action}", "price": {{{{close}}}}, '
                       '"alert_id": "{{{{ticker}}}}-{{{{timenow}}}}"}}')


# ------------------------------------------------------------------ hook management


class HookBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    portfolio_id: int = Field(ge=1, le=MAX_ID)
    source: Literal["tradingview", "chartink"]
    name: str = Field(min_length=1, max_length=120)


def _setup(source: str, url: str) -> dict[str, Any]:
    """What to paste where, for the hook's alert service."""
    if source == "tradingview":
        return {"message": TRADINGVIEW_MESSAGE.format(action="buy"),
                "sell_message": TRADINGVIEW_MESSAGE.format(action="sell"),
                "instructions": "In the TradingView alert: Notifications -> Webhook URL = url; Message = message "
                                "(sell_message to exit a held position). Keep the URL secret: it is the "
                                "credential."}
    return {"message": None, "sell_message": None,
            "instructions": "In Chartink: the scan's Create alert -> Webhook URL = url. Chartink sends the "
                            "stocks itself; each stock becomes a buy signal. Keep the URL secret: it is the "
                            "credential."}


def _hook_answer(platform: Platform, result: CommandResult, hook_id: int, account_id: int,
                 issued: hm.IssuedHook | None = None) -> dict[str, Any]:
    with answer_rows(platform, result, WebhooksProjection, [Webhook.uuid_for(hook_id)]) as conn:
        row = get_webhook(conn, hook_id, account_id)
    if row is None:
        raise NotFound(f"Hook {hook_id} not found")
    if issued is None:
        return row
    url = f"{platform.settings.public_base_url}/api/webhooks/{issued.token}"
    return {**row, "token": issued.token, "url": url, **_setup(str(row["source"]), url)}


@router.post("/hooks", status_code=201, **answers(IssuedHookPublic),
             summary="Create an alert hook for a portfolio; its token and URL are shown once")
def create_hook(body: HookBody, request: Request, response: Response, user: SessionUser,
                platform: PlatformDep) -> dict[str, Any]:
    """For one of your portfolios; the answer carries the token, the URL and what to paste into the alert
    service (never stored for Idempotency-Key replays)."""
    result = dispatch(request, platform, hm.CreateWebhook(user.account_id, body.portfolio_id, body.source,
                                                          body.name), user)
    issued: hm.IssuedHook = result.value
    response.headers["Cache-Control"] = "no-store"  # a credential: never kept for Idempotency-Key replays
    return _hook_answer(platform, result, issued.hook_id, user.account_id, issued)


@router.get("/hooks", **answers(list[HookPublic]), summary="Your alert hooks (never their tokens)",
            responses={200: {"headers": {"X-Total-Count": {"description": "hooks"}}}})
def hooks(user: Reader, page: PageDep, response: Response, platform: PlatformDep) -> list[dict[str, Any]]:
    """Each with its token's prefix, how many alerts it received and signals they became, and the last alert."""
    with platform.db.read() as conn:
        rows, total = list_webhooks(conn, user.account_id, page.limit, page.offset)
    response.headers["X-Total-Count"] = str(total)
    return rows


@router.delete("/hooks/{hook_id}", status_code=204, summary="Delete a hook: its URL stops working at once")
def delete_hook(hook_id: IdPath, request: Request, user: SessionUser, platform: PlatformDep) -> Response:
    """Signals it made stay."""
    dispatch(request, platform, hm.DeleteWebhook(user.account_id, hook_id), user)
    return Response(status_code=204)


@router.post("/hooks/{hook_id}/rotate", **answers(IssuedHookPublic),
             summary="A new token (and URL) for the hook; the old one stops working")
def rotate_hook(hook_id: IdPath, request: Request, response: Response, user: SessionUser,
                platform: PlatformDep) -> dict[str, Any]:
    """The new token and URL are shown once, as at creation."""
    result = dispatch(request, platform, hm.RotateWebhookToken(user.account_id, hook_id), user)
    response.headers["Cache-Control"] = "no-store"
    return _hook_answer(platform, result, hook_id, user.account_id, result.value)


# ------------------------------------------------------------------ alert payloads


def _nse_symbol(value: str) -> str:
    text = value.strip().upper()
    exchange, _, symbol = text.rpartition(":")
    if exchange not in ("", "NSE"):
        raise ValueError(f"only NSE symbols are traded here, not {exchange[:10]}")
    if not NSE_SYMBOL.fullmatch(symbol):
        raise ValueError("not an NSE trading symbol (letters, digits, & _ . -; up to 30)")
    return symbol


class TradingViewAlert(BaseModel):
    """The alert message a TradingView alert sends (the user writes it; see the hook's `message`)."""

    model_config = ConfigDict(extra="ignore")

    symbol: str = Field(max_length=40, description="NSE:INFY (or INFY)")
    action: str = Field(max_length=10, description="buy or sell")
    price: float | None = Field(default=None, gt=0, le=1e7)
    alert_id: str | int | None = Field(default=None, description="repeats of one id are one alert")

    @field_validator("symbol")
    @classmethod
    def _symbol(cls, v: str) -> str:
        return _nse_symbol(v)

    @field_validator("action")
    @classmethod
    def _action(cls, v: str) -> str:
        action = v.strip().lower()
        if action not in ("buy", "sell"):
            raise ValueError("action must be buy or sell")
        return action

    @field_validator("alert_id")
    @classmethod
    def _alert_id(cls, v: str | int | None) -> str | None:
        if v is None:
            return None
        text = str(v).strip()
        if not 1 <= len(text) <= 128:
            raise ValueError("alert_id must be 1 to 128 characters")
        return text


def _split(value: str | list[Any]) -> list[str]:
    parts = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    return [p.strip() for p in parts if p.strip()]


class ChartinkAlert(BaseModel):
    """Chartink's scan alert: `stocks` and `trigger_prices` comma-separated (or lists), one buy per stock."""

    model_config = ConfigDict(extra="ignore")

    stocks: str | list[str] = Field(description="SEPOWER,ASTEC,EDUCOMP")
    trigger_prices: str | list[float | str] = Field(description="3.75,541.8,2.1")
    triggered_at: str = Field(default="", max_length=40)
    scan_name: str = Field(default="", max_length=200)
    alert_name: str = Field(default="", max_length=200)
    _items: list[tuple[str, float]] = PrivateAttr(default_factory=list)

    @model_validator(mode="after")
    def _pairs(self) -> ChartinkAlert:
        stocks, prices = _split(self.stocks), _split(self.trigger_prices)
        if not stocks:
            raise ValueError("stocks is empty")
        if len(stocks) > MAX_STOCKS:
            raise ValueError(f"at most {MAX_STOCKS} stocks in one alert")
        if len(prices) != len(stocks):
            raise ValueError(f"trigger_prices has {len(prices)} price(s) for {len(stocks)} stock(s)")
        symbols = [_nse_symbol(s) for s in stocks]
        values = []
        for p in prices:
            try:
                price = float(p)
            except ValueError:
                raise ValueError("trigger_prices must be numbers") from None
            if not 0 < price <= 1e7:
                raise ValueError("trigger_prices must be above 0 and at most 1e7")
            values.append(round(price, 2))
        self._items = list(zip(symbols, values, strict=True))
        return self

    @property
    def items(self) -> list[tuple[str, float]]:
        return self._items


@dataclass(frozen=True)
class RawAlert:
    content_type: str
    fields: dict[str, Any] | None  # form fields (None: not a form)
    body: bytes


async def raw_alert(request: Request) -> RawAlert:
    kind = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if kind in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form(max_files=0, max_fields=2 * MAX_STOCKS + 20)
        return RawAlert(kind, {k: v for k, v in form.multi_items() if not isinstance(v, UploadFile)}, b"")
    return RawAlert(kind, None, await request.body())


def _invalid(msg: str) -> RequestValidationError:
    return schema_error(("body",), msg)


def _document(raw: RawAlert) -> dict[str, Any]:
    """The alert as a JSON object (TradingView sends its message as text/plain or application/json; Chartink
    sends form fields)."""
    if raw.fields is not None:
        doc = raw.fields
    elif not raw.body.strip():
        raise _invalid("the alert is empty: send a JSON object (see the hook's message)")
    else:
        try:
            doc = strict_json_loads(raw.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _invalid(f"the alert is not JSON: {str(exc)[:80]}") from None
    if not isinstance(doc, dict):
        raise _invalid("the alert must be a JSON object")
    # the route reads its own body, whatever the content type: the edge's text check runs here
    bad = fault_error(doc, ["body"])
    if bad is not None:
        raise RequestValidationError([bad])
    return doc


def _validated(model: type[BaseModel], doc: dict[str, Any]) -> Any:
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None


def parse_alert(source: str, raw: RawAlert, hook_name: str) -> tuple[tuple[hm.AlertItem, ...], str, str]:
    """(items, de-duplication key, label for the signals' reason) of an alert to a hook of `source`."""
    doc = _document(raw)
    if source == "tradingview":
        tv: TradingViewAlert = _validated(TradingViewAlert, doc)
        content = {"symbol": tv.symbol, "action": tv.action, "price": tv.price}
        key = f"id:{tv.alert_id}" if tv.alert_id is not None else content_key(content)
        label = f"TradingView alert ({hook_name}): {tv.action} NSE:{tv.symbol}"
        return (hm.AlertItem(tv.symbol, tv.action, tv.price),), key, label
    ck: ChartinkAlert = _validated(ChartinkAlert, doc)
    key = content_key({"stocks": ck.items, "triggered_at": ck.triggered_at.strip(), "scan_name": ck.scan_name,
                       "alert_name": ck.alert_name})
    label = (f"Chartink alert ({hook_name}): {ck.alert_name or ck.scan_name or 'scan'}"
             + (f" at {ck.triggered_at.strip()}" if ck.triggered_at.strip() else ""))
    return tuple(hm.AlertItem(sym, "buy", price) for sym, price in ck.items), key, label


# ------------------------------------------------------------------ receiving


# An alert's command meets a change to its portfolio from outside this process's serial turns (the
# scheduler expiring that portfolio's signals, a scan, another API process) now and then: the bus retries
# it up to ALERT_ATTEMPTS times, its random pauses doubling (1-2 ms up to 0.25-0.5 s, about 0.5-1 s in
# all). A refused try recorded nothing, and a repeat of an alert is answered, not recorded twice. An alert
# service retries rarely or never, so a clash must not cost the signal.
ALERT_ATTEMPTS = 10


@router.post("/webhooks/{hook_token}", **answers(AlertAnswerPublic),
             summary="Receive a TradingView or Chartink alert (no session: the token is "
             "the credential)")
def receive(hook_token: Annotated[str, Path(max_length=200)], raw: Annotated[RawAlert, Depends(raw_alert)],
            request: Request, platform: PlatformDep) -> dict[str, Any]:
    """One alert: answers the signals it became (`signals`, rows as `GET /api/model/signals`), what the
    portfolio did not take and why (`ignored`), and `duplicate` (true: a repeat, answered again)."""
    hook_id = hook_id_of(hook_token)
    if hook_id is None:
        raise NotFound(UNKNOWN)
    token_hash = platform.token_hash(hook_token)
    with platform.store.reading(Webhook, Webhook.uuid_for(hook_id)) as hook:
        if hook is None or not hook.accepts(token_hash):
            raise NotFound(UNKNOWN)
        source, name, portfolio_id = hook.source, hook.name, hook.portfolio_id
    settings = platform.settings
    if not platform.security.rate_hit(f"webhook:{hook_id}", 60, settings.webhook_alerts_per_minute,
                                      datetime.now().astimezone()):
        raise TooManyRequests(f"More than {settings.webhook_alerts_per_minute} alerts to this hook in a minute; "
                              "wait a minute")
    items, key, label = parse_alert(source, raw, name)
    cmd = hm.ReceiveAlert(hook_id, token_hash, key, items, label, settings.webhook_dedupe_seconds)
    # alerts to one portfolio (from any of its hooks) take turns in this process instead of clashing
    result = dispatch(request, platform, cmd, actor=f"webhook:{hook_id}", serial=("portfolio", portfolio_id),
                      attempts=ALERT_ATTEMPTS)
    outcome: hm.AlertOutcome = result.value
    ids = [*outcome.signal_ids, *outcome.exit_signal_ids]
    home = [Portfolio.uuid_for(outcome.portfolio_id)]
    with answer_rows(platform, result, PortfoliosProjection, home) as conn:
        rows = get_signals(conn, ids)
    if len(rows) < len(ids):  # a repeat arriving before the read model shows the first: its events decide
        with answer_rows(platform, dataclasses.replace(result, caught_up=False), PortfoliosProjection, home) as conn:
            rows = get_signals(conn, ids)
    return {"hook_id": hook_id, "portfolio_id": outcome.portfolio_id, "duplicate": outcome.duplicate,
            "signals": [rows[i] for i in ids if i in rows], "ignored": list(outcome.ignored)}
