"""The Telegram notification channel (the `NotificationChannel` port, commands/ports.py): the notifier's
messages to the account's linked chat, pending signals with Approve / Reject buttons (streams/telegram_bot.py
acts on them). Registered in `streams.notifier.CHANNEL_FACTORIES` when a bot token is set."""

from __future__ import annotations

import asyncio
import logging
import threading

from telegram import Bot
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut

from commands.ports import Commit, NotDelivered, OutgoingNotification
from domain.telegram import TelegramLink
from infra.bootstrap import Platform
from projections.telegram import link_of
from streams.telegram_bot import signal_buttons

log = logging.getLogger("tradertape.telegram")

BUTTON_KINDS = ("signal_pending", "signal_expiring")


class TelegramChannel:
    name = "telegram"

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        settings = platform.settings
        self._api = settings.telegram_api_url.rstrip("/")
        self._local = threading.local()  # each sending thread of the dispatcher: its own event loop and Bot

    def address(self, account_id: int) -> str | None:
        with self.platform.db.read() as conn:
            row = link_of(conn, account_id)
        if row is None:
            return None
        with self.platform.store.reading(TelegramLink, TelegramLink.uuid_for(account_id)) as link:
            if link is None or not link.speaks_for(int(row["chat_id"])):
                return None  # unlinked since: the read model is behind
        return str(row["chat_id"])

    def send(self, message: OutgoingNotification, address: str, commit: Commit) -> None:
        chat_id = int(address)
        signals: list[tuple[int, str]] = []
        if any(k in BUTTON_KINDS for k in message.kinds):
            signals = [(int(i["signal_id"]), str(i.get("symbol") or "?")) for i in message.items
                       if i.get("signal_id") is not None and "expires_at" in i]
        markup = signal_buttons(self.platform, chat_id, message.account_id, signals)
        text = message.text.strip()[:4000]
        loop, bot = self._sender()
        try:  # getMe, once per sending thread: before the commit, so only the message itself follows it
            loop.run_until_complete(bot.initialize())
        except TelegramError as exc:  # nothing was sent: retried with backoff
            raise NotDelivered(f"Telegram unreachable: {type(exc).__name__}: {exc}"[:300]) from None
        if not commit():
            return
        try:
            loop.run_until_complete(bot.send_message(chat_id, text, reply_markup=markup))
        except Forbidden as exc:  # the person blocked the bot: no use retrying
            raise NotDelivered(f"Telegram refused: {exc.message}"[:300], retry=False) from None
        except (BadRequest, RetryAfter) as exc:  # answered: not delivered
            raise NotDelivered(f"Telegram refused: {exc.message}"[:300]) from None
        except (TimedOut, NetworkError):
            raise  # in doubt: it may have been delivered

    def _sender(self) -> tuple[asyncio.AbstractEventLoop, Bot]:
        local = self._local
        if getattr(local, "bot", None) is None:
            local.loop = asyncio.new_event_loop()
            local.bot = Bot(self.platform.settings.telegram_bot_token or "", base_url=f"{self._api}/bot",
                            base_file_url=f"{self._api}/file/bot")
        return local.loop, local.bot



def telegram_channel(platform: Platform) -> TelegramChannel | None:
    return TelegramChannel(platform) if platform.settings.telegram_bot_token else None
