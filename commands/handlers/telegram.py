"""The Telegram link: codes, linking a chat, unlinking, and decisions from a chat's buttons (the API's own
`decide_signal` and `place_cart`, so the same risk rules refuse the same approvals and placements)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from commands import messages as m
from commands import telegram_messages as tm
from commands.handlers.portfolios import decide_signal, now_of, place_cart
from commands.uow import UnitOfWork
from domain.errors import DomainError, NotFound
from domain.telegram import CODE_MINUTES, TelegramLink, account_of_code


def _stored(uow: UnitOfWork, account_id: int | None) -> TelegramLink | None:
    if account_id is None:
        return None
    link = uow.load(TelegramLink, TelegramLink.uuid_for(account_id))
    if link is not None:
        link.account_id = account_id  # the events name the account through the aggregate id only
    return link


def _link(uow: UnitOfWork, account_id: int) -> TelegramLink:
    return _stored(uow, account_id) or TelegramLink.open(account_id)


def issue_telegram_link_code(cmd: tm.IssueTelegramLinkCode, uow: UnitOfWork) -> tm.IssuedCode:
    link = _link(uow, cmd.account_id)
    code = f"L{cmd.account_id}_{secrets.token_urlsafe(18)}"
    now = now_of(uow)
    expires = (now + timedelta(minutes=CODE_MINUTES)).isoformat()
    link.issue_code(uow.deps.token_hash(code), expires, now.isoformat())
    uow.save(link)
    return tm.IssuedCode(code, expires)


def link_telegram_chat(cmd: tm.LinkTelegramChat, uow: UnitOfWork) -> int:
    link = _stored(uow, account_of_code(cmd.code))
    if link is None:
        raise DomainError("This link code is unknown, used or expired; ask TraderTape for a new one "
                          "(Settings -> Telegram)")
    link.link(uow.deps.token_hash(cmd.code), cmd.chat_id, cmd.username, now_of(uow).isoformat())
    uow.save(link)
    return int(link.account_id or 0)


def unlink_telegram(cmd: tm.UnlinkTelegram, uow: UnitOfWork) -> bool:
    link = _stored(uow, cmd.account_id)
    if link is None or not link.unlink(now_of(uow).isoformat()):
        return False
    uow.save(link)
    return True


def decide_from_telegram(cmd: tm.DecideFromTelegram, uow: UnitOfWork) -> str:
    link = _stored(uow, cmd.account_id)
    if link is None or not link.speaks_for(cmd.chat_id):
        raise NotFound("This chat is not linked to a TraderTape account")
    link.use_nonce(cmd.nonce, cmd.action, cmd.signal_id, cmd.issued_at, now_of(uow).isoformat())
    try:
        status = str(decide_signal(m.DecideSignal(cmd.account_id, cmd.portfolio_id, cmd.signal_id, cmd.action), uow))
    except DomainError:
        uow.save(link)  # the button is spent either way: it acted, or it was refused (a rule, a state)
        raise
    uow.save(link)  # after the decision: a version clash there re-runs the whole command
    return status


def place_cart_from_telegram(cmd: tm.PlaceCartFromTelegram, uow: UnitOfWork) -> dict[str, list[dict[str, Any]]]:
    link = _stored(uow, cmd.account_id)
    if link is None or not link.speaks_for(cmd.chat_id):
        raise NotFound("This chat is not linked to a TraderTape account")
    link.use_nonce(cmd.nonce, "place", 0, cmd.issued_at, now_of(uow).isoformat(), portfolio_id=cmd.portfolio_id)
    try:
        outcome = place_cart(m.PlaceCart(cmd.account_id, (), cmd.portfolio_id), uow)
    except DomainError:
        uow.save(link)  # the button is spent either way
        raise
    uow.save(link)
    return outcome


HANDLERS: dict[type, Callable[[Any, UnitOfWork], Any]] = {
    tm.IssueTelegramLinkCode: issue_telegram_link_code,
    tm.LinkTelegramChat: link_telegram_chat,
    tm.UnlinkTelegram: unlink_telegram,
    tm.DecideFromTelegram: decide_from_telegram,
    tm.PlaceCartFromTelegram: place_cart_from_telegram,
}
