"""Linking a Telegram chat to the account (the bot: streams/telegram_bot.py): a one-time code and the bot's
`/start CODE` deep link, the link's state, and unlinking (the chat can no longer act, at once)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from fastapi import Request, Response
from telegram import Bot

from api.deps import PlatformDep, Reader, SessionUser, dispatch, resource_router
from api.guards import outside_io
from api.public.base import answers
from api.public.operations import TelegramCodePublic, TelegramLinkPublic
from commands import telegram_messages as tm
from domain.errors import DomainError
from infra.bootstrap import Platform
from projections.telegram import link_of

router = resource_router("/api/notifications/telegram", ["notifications"])

_names: dict[tuple[str, str], str] = {}
_lock = threading.Lock()


def bot_username(platform: Platform) -> str:
    """The bot's @username (asked from the Bot API once per process)."""
    settings = platform.settings
    if not settings.telegram_bot_token:
        raise DomainError("Telegram is not set up on this server (TRADERTAPE_TELEGRAM_BOT_TOKEN)")
    key = (settings.telegram_bot_token, settings.telegram_api_url)
    with _lock:
        if key in _names:
            return _names[key]
    api = settings.telegram_api_url.rstrip("/")

    async def ask() -> str:
        async with Bot(settings.telegram_bot_token, base_url=f"{api}/bot", base_file_url=f"{api}/file/bot") as bot:
            return str(bot.username)

    try:
        name = asyncio.run(ask())
    except Exception as exc:  # the Bot API is another service: say so, never a 500
        raise DomainError(f"The Telegram Bot API did not answer ({type(exc).__name__}); try again later") from None
    with _lock:
        _names[key] = name
    return name


@router.get("", **answers(TelegramLinkPublic), summary="Is a Telegram chat linked to your account?")
def telegram_link(user: Reader, platform: PlatformDep) -> dict[str, Any]:
    """Whether the server has a bot (`configured`), and the linked chat's username and when it was linked."""
    with platform.db.read() as conn:
        row = link_of(conn, user.account_id)
    return {"configured": bool(platform.settings.telegram_bot_token), "linked": row is not None,
            "username": row["username"] if row else None, "linked_at": row["linked_at"] if row else None}


@router.post("/link", **answers(TelegramCodePublic),
             summary="A one-time code (15 minutes) and the bot's deep link: open it and press Start")
@outside_io  # asks the Bot API for the bot's name (once per process)
def link(request: Request, response: Response, user: SessionUser, platform: PlatformDep) -> dict[str, Any]:
    """A server without a bot token, or a Bot API that does not answer, is a 400."""
    name = bot_username(platform)
    issued: tm.IssuedCode = dispatch(request, platform, tm.IssueTelegramLinkCode(user.account_id), user).value
    response.headers["Cache-Control"] = "no-store"  # a credential: never kept for Idempotency-Key replays
    return {"code": issued.code, "url": f"https://t.me/{name}?start={issued.code}", "expires_at": issued.expires_at,
            "bot": name}


@router.delete("", status_code=204, summary="Unlink Telegram: the chat can no longer act for you")
def unlink(request: Request, user: SessionUser, platform: PlatformDep) -> Response:
    """Its buttons and commands stop working at once."""
    dispatch(request, platform, tm.UnlinkTelegram(user.account_id), user)
    return Response(status_code=204)
