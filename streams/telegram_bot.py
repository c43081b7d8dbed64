"""The Telegram bot (python-telegram-bot, long polling against `TRADERTAPE_TELEGRAM_API_URL`).

- `/start CODE` links the chat to the account whose one-time code it is (`LinkTelegramChat`).
- `/status` (portfolios and today's P&L), `/pending` (signals waiting, with Approve/Reject buttons),
  `/positions`; `/pause ID`, `/resume ID` and `/kill` (engage the kill switch) dispatch the same commands as
  the API (`ChangePortfolioStatus`, `CreateRiskRule`), recorded as events with the actor `telegram:<chat>`.
- A button's callback data is signed for the chat and the account (HMAC with the secret key) and carries a
  nonce: `DecideFromTelegram` spends it (once) and decides through the API's `decide_signal`, so a refused
  approval answers with the rule that refused it.
- Only a linked chat may act: the chat is found in the links read model and checked against the account's
  `TelegramLink` (an unlinked chat stops at once).

Run one bot per deployment: `serve` runs it beside the scheduler when a token is set, or `tradertape
telegram` on its own (Telegram lets one poller read a bot's updates).
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes

from commands import messages as m
from commands import telegram_messages as tm
from commands.ports import CommandMeta
from domain.errors import DomainError
from domain.money import format_inr
from domain.telegram import TelegramLink
from infra.bootstrap import Platform
from projections.portfolios.queries import get_signal, list_portfolios, list_positions, list_signals
from projections.telegram import accounts_of_chat
from streams.workers import ReadYourWrites

log = logging.getLogger("tradertape.telegram")

HELP = ("Commands: /status (portfolios, today's P&L), /pending (signals waiting, with buttons), /positions, "
        "/pause ID, /resume ID, /kill (engage the kill switch)")
NOT_LINKED = ("This chat is not linked to a TraderTape account. In TraderTape open Settings -> Telegram -> "
              "Link, then press Start here.")
ACTIONS = {"a": "approve", "r": "reject", "p": "place"}  # place: the number is a portfolio id, not a signal's
BUTTONS_PER_MESSAGE = 20
Callback = Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]


def _mac(platform: Platform, chat_id: int, account_id: int, action: str, signal_id: int, nonce: str, ts: int) -> str:
    return platform.token_hash(f"tg-button:{chat_id}:{account_id}:{action}:{signal_id}:{nonce}:{ts}")[:16]


def button_data(platform: Platform, chat_id: int, account_id: int, action: str, signal_id: int) -> str:
    """Callback data for an Approve/Reject button (at most 64 bytes): signed for this chat and account."""
    nonce = secrets.token_urlsafe(6)
    ts = int(time.time())
    return f"{action[0]}:{signal_id}:{nonce}:{ts:x}:{_mac(platform, chat_id, account_id, action, signal_id, nonce, ts)}"


def signal_buttons(platform: Platform, chat_id: int, account_id: int,
                   signals: list[tuple[int, str]]) -> InlineKeyboardMarkup | None:
    """One row per (signal id, symbol): Approve, Reject."""
    if not signals:
        return None
    return InlineKeyboardMarkup([[
        InlineKeyboardButton(f"Approve {symbol} #{sid}", callback_data=button_data(platform, chat_id, account_id,
                                                                                   "approve", sid)),
        InlineKeyboardButton("Reject", callback_data=button_data(platform, chat_id, account_id, "reject", sid)),
    ] for sid, symbol in signals[:BUTTONS_PER_MESSAGE]])


def place_button(platform: Platform, chat_id: int, account_id: int, portfolio_id: int) -> InlineKeyboardMarkup:
    """The Place cart button of one portfolio (signed like the others, single use)."""
    return InlineKeyboardMarkup([[InlineKeyboardButton(
        f"Place cart of portfolio {portfolio_id}", callback_data=button_data(platform, chat_id, account_id, "place",
                                                                           portfolio_id))]])


def read_button(platform: Platform, chat_id: int, account_id: int, data: str) -> tuple[str, int, str, int] | None:
    """(action, signal id -- for place the portfolio id --, nonce, issued at epoch) of a button made for this
    chat and account, else None."""
    parts = data.split(":")
    if len(parts) != 5 or parts[0] not in ACTIONS or not parts[1].isdigit():
        return None
    action, signal_id, nonce = ACTIONS[parts[0]], int(parts[1]), parts[2]
    try:
        ts = int(parts[3], 16)
    except ValueError:
        return None
    if not hmac.compare_digest(parts[4], _mac(platform, chat_id, account_id, action, signal_id, nonce, ts)):
        return None
    return action, signal_id, nonce, ts


def pending_text(rows: list[dict[str, Any]], total: int) -> str:
    if not rows:
        return "No signals are waiting for your approval."
    lines = [f"{total} signal(s) waiting for your approval:"]
    for s in rows:
        price = s.get("limit_price") or s.get("reference_price")
        lines.append(f"#{s['id']} {s['side']} {s['quantity']} {s['symbol']} at {format_inr(price)} "
                     f"(portfolio {s['portfolio_id']}; expires {str(s.get('expires_at') or '')[:10]})")
    if total > len(rows):
        lines.append(f"… and {total - len(rows)} more in the web app.")
    return "\n".join(lines)


class TelegramBot:
    def __init__(self, platform: Platform, read_your_writes: ReadYourWrites | None = None) -> None:
        """`read_your_writes`: the serving process's waiter (its in-process projector); alone, the bot polls
        the projections' positions. Either way a command's reply waits (bounded) until the read models show
        it, so that the web app and the bot's next answers agree with what the reply said."""
        settings = platform.settings
        if not settings.telegram_bot_token:
            raise RuntimeError("TRADERTAPE_TELEGRAM_BOT_TOKEN is not set")
        self.platform = platform
        self.read_your_writes = read_your_writes or ReadYourWrites(platform, None)
        api = settings.telegram_api_url.rstrip("/")
        self.app = (Application.builder().token(settings.telegram_bot_token).base_url(f"{api}/bot")
                    .base_file_url(f"{api}/file/bot").build())
        for name, fn in (("start", self.start), ("help", self.help), ("status", self.status),
                         ("pending", self.pending), ("positions", self.positions), ("pause", self.pause),
                         ("resume", self.resume), ("kill", self.kill)):
            self.app.add_handler(CommandHandler(name, self._guarded(fn)))
        self.app.add_handler(CallbackQueryHandler(self._guarded(self.button)))
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ running

    def start_thread(self, stop: threading.Event) -> threading.Thread:
        self._thread = threading.Thread(target=lambda: asyncio.run(self.run(stop)), name="telegram-bot", daemon=True)
        self._thread.start()
        return self._thread

    async def run(self, stop: threading.Event) -> None:
        async with self.app:
            await self.app.start()
            assert self.app.updater is not None
            await self.app.updater.start_polling(poll_interval=0.0, timeout=1)
            log.info("telegram bot polling %s", self.platform.settings.telegram_api_url)
            while not stop.is_set():
                await asyncio.sleep(0.1)
            await self.app.updater.stop()
            await self.app.stop()

    def _guarded(self, fn: Callback) -> Callback:
        async def run(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            try:
                await fn(update, context)
            except Exception:
                log.exception("telegram update %s failed", update.update_id)
                if update.effective_chat is not None:
                    await context.bot.send_message(update.effective_chat.id, "Something went wrong; try again.")
        return run

    # ------------------------------------------------------------------ helpers (run in a thread)

    def _meta(self, chat_id: int, account_id: int | None) -> CommandMeta:
        return CommandMeta(actor=f"telegram:{chat_id}", account_id=account_id,
                           correlation_id=uuid.uuid4().hex, request_id=None)

    def accounts(self, chat_id: int) -> list[int]:
        """The accounts this chat is linked to now (the read model, checked against each account's link)."""
        with self.platform.db.read() as conn:
            found = accounts_of_chat(conn, chat_id)
        out = []
        for account_id in found:
            with self.platform.store.reading(TelegramLink, TelegramLink.uuid_for(account_id)) as link:
                if link is not None and link.speaks_for(chat_id):
                    out.append(account_id)
        return out

    def _dispatch(self, chat_id: int, account_id: int | None, command: Any) -> Any:
        timeout = self.platform.settings.read_your_writes_timeout
        try:
            result = self.platform.bus.handle(command, self._meta(chat_id, account_id))
        except DomainError as exc:
            self.read_your_writes.settled_refusal(exc, timeout)
            raise
        self.read_your_writes.settled(result, timeout)
        return result.value

    async def _account(self, update: Update) -> int | None:
        chat = update.effective_chat
        assert chat is not None
        found = await asyncio.to_thread(self.accounts, chat.id)
        if not found:
            await self._say(update, NOT_LINKED)
            return None
        return found[0]

    @staticmethod
    async def _say(update: Update, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
        chat = update.effective_chat
        assert chat is not None
        await update.get_bot().send_message(chat.id, text[:4000], reply_markup=markup)

    # ------------------------------------------------------------------ commands

    async def start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = update.effective_chat
        assert chat is not None
        args = context.args or []
        if not args:
            await self._say(update, NOT_LINKED if not await asyncio.to_thread(self.accounts, chat.id)
                            else f"This chat is linked. {HELP}")
            return
        user = update.effective_user
        username = (user.username or user.first_name or "") if user is not None else ""
        try:
            account_id = await asyncio.to_thread(self._dispatch, chat.id, None,
                                                 tm.LinkTelegramChat(args[0][:80], chat.id, username))
        except DomainError as exc:
            await self._say(update, exc.detail)
            return
        await self._say(update, f"Linked to your TraderTape account (#{account_id}). {HELP}")

    async def help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._say(update, HELP)

    async def status(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        account_id = await self._account(update)
        if account_id is None:
            return

        def read() -> str:
            with self.platform.db.read() as conn:
                rows, _ = list_portfolios(conn, account_id, None, 50, 0)
            if not rows:
                return "No active or paused portfolios."
            day = sum(float(p["day_pnl"] or 0) for p in rows)
            lines = [f"Today's P&L: {format_inr(day, sign=True)}"]
            lines += [f"#{p['id']} {p['name']} ({p['mode']}, {p['status']}): equity {format_inr(p['equity'])}, "
                      f"today {format_inr(p['day_pnl'], sign=True)}" for p in rows]
            return "\n".join(lines)

        await self._say(update, await asyncio.to_thread(read))

    async def pending(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        account_id = await self._account(update)
        chat = update.effective_chat
        if account_id is None or chat is None:
            return

        def read() -> tuple[str, InlineKeyboardMarkup | None]:
            with self.platform.db.read() as conn:
                rows, total = list_signals(conn, account_id, status="pending_approval", limit=BUTTONS_PER_MESSAGE)
            markup = signal_buttons(self.platform, chat.id, account_id, [(int(s["id"]), s["symbol"]) for s in rows])
            return pending_text(rows, total), markup

        text, markup = await asyncio.to_thread(read)
        await self._say(update, text, markup)

    async def positions(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        account_id = await self._account(update)
        if account_id is None:
            return

        def read() -> str:
            with self.platform.db.read() as conn:
                rows, total = list_positions(conn, account_id, None, "open", 50, 0)
            if not rows:
                return "No open positions."
            lines = [f"{total} open position(s):"]
            lines += [f"{p['quantity']} {p['symbol']} @ {format_inr(p['avg_price'])} (portfolio {p['portfolio_id']}): "
                      f"last {format_inr(p['last_price'])}, P&L {format_inr(p['unrealized_pnl'], sign=True)}"
                      for p in rows]
            return "\n".join(lines)

        await self._say(update, await asyncio.to_thread(read))

    async def _status_change(self, update: Update, context: ContextTypes.DEFAULT_TYPE, action: str) -> None:
        account_id = await self._account(update)
        chat = update.effective_chat
        if account_id is None or chat is None:
            return
        args = context.args or []
        if len(args) != 1 or not args[0].isdigit() or not 0 < int(args[0]) < 2**63:
            await self._say(update, f"Usage: /{action} PORTFOLIO_ID (see /status)")
            return
        pid = int(args[0])
        try:
            status = await asyncio.to_thread(self._dispatch, chat.id, account_id,
                                             m.ChangePortfolioStatus(account_id, pid, action))
        except DomainError as exc:
            await self._say(update, exc.detail)
            return
        await self._say(update, f"Portfolio {pid} is {status}.")

    async def pause(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._status_change(update, context, "pause")

    async def resume(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._status_change(update, context, "resume")

    async def kill(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        account_id = await self._account(update)
        chat = update.effective_chat
        if account_id is None or chat is None:
            return
        body = m.RiskRuleBody("kill_switch", note="engaged from Telegram")
        try:
            rule_id = await asyncio.to_thread(self._dispatch, chat.id, account_id, m.CreateRiskRule(account_id, body))
        except DomainError as exc:
            await self._say(update, exc.detail)
            return
        await self._say(update, f"Kill switch engaged (risk rule {rule_id}): no new entries pass. Delete the rule "
                                "in TraderTape (Risk) to release it.")

    # ------------------------------------------------------------------ buttons

    async def button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        chat = update.effective_chat
        assert query is not None and chat is not None
        text, markup = await asyncio.to_thread(self._decide, chat.id, query.data or "")
        await query.answer(text[:190])
        await context.bot.send_message(chat.id, text[:4000], reply_markup=markup)

    def _decide(self, chat_id: int, data: str) -> tuple[str, InlineKeyboardMarkup | None]:
        accounts = self.accounts(chat_id)
        if not accounts:
            return NOT_LINKED, None
        for account_id in accounts:
            found = read_button(self.platform, chat_id, account_id, data)
            if found is not None:
                break
        else:
            return "This button is not valid here.", None
        action, number, nonce, ts = found
        issued = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(ts))
        if action == "place":
            return self._place(chat_id, account_id, number, nonce, issued), None
        with self.platform.db.read() as conn:
            row = get_signal(conn, number)
        if row is None or row["account_id"] != account_id:
            return f"Signal {number} not found.", None
        portfolio_id = int(row["portfolio_id"])
        try:
            status = self._dispatch(chat_id, account_id, tm.DecideFromTelegram(
                account_id, chat_id, portfolio_id, number, action, nonce, issued))
        except DomainError as exc:
            return f"{row['symbol']} #{number}: {exc.detail}", None
        if action == "approve":
            return (f"Approved: {row['symbol']} #{number} is {status}. Place the cart here or in TraderTape.",
                    place_button(self.platform, chat_id, account_id, portfolio_id) if status == "in_cart" else None)
        return f"Rejected: {row['symbol']} #{number}.", None

    def _place(self, chat_id: int, account_id: int, portfolio_id: int, nonce: str, issued: str) -> str:
        """The cart of one portfolio placed through the API's own command (the risk rules checked again)."""
        try:
            outcome = self._dispatch(chat_id, account_id, tm.PlaceCartFromTelegram(
                account_id, chat_id, portfolio_id, nonce, issued))
        except DomainError as exc:
            return f"Cart of portfolio {portfolio_id}: {exc.detail}"
        placed, refused = outcome["placed"], outcome["refused"]
        if not placed and not refused:
            return f"Nothing is in the cart of portfolio {portfolio_id}."
        lines = [f"Cart of portfolio {portfolio_id} placed: {len(placed)} order(s)"
                 + (f", {len(refused)} refused" if refused else "") + "."]
        lines += [f"placed: BUY {p.get('quantity')} {p.get('symbol', '?')} #{p['signal_id']}" for p in placed]
        lines += [f"refused: {r.get('symbol', '?')} #{r.get('signal_id')} \u2014 {r.get('reason', '')}"
                  for r in refused]
        return "\n".join(lines)


def run_bot(args: argparse.Namespace) -> None:
    from infra.bootstrap import bootstrap
    from infra.config.settings import Settings

    logging.basicConfig(level=logging.INFO)
    platform = bootstrap(Settings())
    stop = threading.Event()
    import signal as signals

    for sig in (signals.SIGINT, signals.SIGTERM):
        signals.signal(sig, lambda *_: stop.set())
    asyncio.run(TelegramBot(platform).run(stop))


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("telegram", help="run the Telegram bot (one per deployment; serve runs it beside the "
                                        "scheduler when TRADERTAPE_TELEGRAM_BOT_TOKEN is set)")
    p.set_defaults(func=run_bot)
