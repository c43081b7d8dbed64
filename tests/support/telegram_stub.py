"""A stub Telegram Bot API server on loopback, for the bot library to be pointed at (its base URL).

It speaks the Bot API's HTTP shape (`POST /bot<token>/<method>`, form or JSON parameters, answers
`{"ok": true, "result": ...}`): `getMe`, `getUpdates` (long polling with `offset` and `timeout`),
`sendMessage`, `answerCallbackQuery`, `editMessageReplyMarkup`, `editMessageText`; any other method answers
`true`. It records every message the bot sends, and delivers what a person would do in a chat: a text
message (a command) and a button press (a callback query carrying the button's data).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.services import free_port

BOT_USERNAME = "tradertape_test_bot"


class _Escaped(JSONResponse):
    """A JSON answer with non-ASCII text written as escapes (json.dumps's default), so any text a test sends encodes."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, separators=(",", ":")).encode("ascii")


class TelegramStub:
    def __init__(self, token: str) -> None:
        self.token = token
        self.sent: list[dict[str, Any]] = []  # sendMessage calls: {chat_id, text, reply_markup (dict|None), message_id}
        self.answers: list[dict[str, Any]] = []  # answerCallbackQuery calls
        self.calls: list[str] = []
        self._updates: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._message_ids = itertools.count(1000)
        self._lock = threading.Lock()
        self.url = ""
        self.fail_sends = 0  # the next N sendMessage calls fail with 502 Bad Gateway, delivering nothing

    # ------------------------------------------------------------------ what a person does

    def send_text(self, chat_id: int, text: str, username: str = "trader") -> None:
        """A message typed in the chat (a `/command` gets the bot_command entity Telegram adds)."""
        message: dict[str, Any] = {"message_id": next(self._message_ids), "date": int(time.time()),
                                   "chat": {"id": chat_id, "type": "private", "username": username},
                                   "from": {"id": chat_id, "is_bot": False, "first_name": username,
                                            "username": username},
                                   "text": text}
        if text.startswith("/"):
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        self._push({"message": message})

    def press(self, chat_id: int, data: str, message_id: int = 1) -> None:
        """A button pressed under one of the bot's messages."""
        self._push({"callback_query": {
            "id": str(next(self._ids)), "chat_instance": str(chat_id), "data": data,
            "from": {"id": chat_id, "is_bot": False, "first_name": "trader"},
            "message": {"message_id": message_id, "date": int(time.time()), "text": "",
                        "chat": {"id": chat_id, "type": "private"}}}})

    def _push(self, update: dict[str, Any]) -> None:
        with self._lock:
            self._updates.append({"update_id": next(self._ids), **update})

    # ------------------------------------------------------------------ what the bot sent

    def messages_to(self, chat_id: int) -> list[dict[str, Any]]:
        with self._lock:
            return [m for m in self.sent if m["chat_id"] == chat_id]

    def wait_for(self, chat_id: int, contains: str, timeout: float = 20.0, after: int = 0) -> dict[str, Any]:
        """The first message to `chat_id` (from the `after`-th on) whose text contains `contains`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for m in self.messages_to(chat_id)[after:]:
                if contains in m["text"]:
                    return m
            time.sleep(0.02)
        raise AssertionError(f"no message to {chat_id} containing {contains!r}; got "
                             f"{[m['text'][:80] for m in self.messages_to(chat_id)]}")

    def wait_answer(self, contains: str, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                found = [a for a in self.answers if contains in (a.get("text") or "")]
            if found:
                return found[0]
            time.sleep(0.02)
        raise AssertionError(f"no callback answer containing {contains!r}; got {self.answers}")

    # ------------------------------------------------------------------ the Bot API

    async def _params(self, request: Request) -> dict[str, Any]:
        kind = request.headers.get("content-type", "")
        if kind.startswith("application/json"):
            body = await request.body()
            return dict(json.loads(body)) if body else {}
        form = await request.form()
        out: dict[str, Any] = {}
        for k, v in form.multi_items():
            text = v if isinstance(v, str) else ""
            try:
                out[k] = json.loads(text)
            except ValueError:
                out[k] = text
        return out

    async def handle(self, request: Request) -> JSONResponse:
        if request.path_params["token"] != self.token:
            return JSONResponse({"ok": False, "error_code": 401, "description": "Unauthorized"}, status_code=401)
        method = request.path_params["method"]
        params = await self._params(request)
        self.calls.append(method)
        if method == "getMe":
            return self._ok({"id": 4242, "is_bot": True, "first_name": "TraderTape", "username": BOT_USERNAME,
                             "can_join_groups": False, "can_read_all_group_messages": False,
                             "supports_inline_queries": False})
        if method == "getUpdates":
            offset = int(params.get("offset") or 0)
            deadline = time.monotonic() + min(float(params.get("timeout") or 0), 2.0)
            while True:
                with self._lock:
                    self._updates = [u for u in self._updates if u["update_id"] >= offset]
                    ready = list(self._updates)
                if ready or time.monotonic() >= deadline:
                    return self._ok(ready)
                await asyncio.sleep(0.02)
        if method == "sendMessage":
            with self._lock:
                failing, self.fail_sends = self.fail_sends > 0, max(0, self.fail_sends - 1)
            if failing:
                return JSONResponse({"ok": False, "error_code": 502, "description": "Bad Gateway"}, status_code=502)
            message_id = next(self._message_ids)
            markup = params.get("reply_markup")
            with self._lock:
                self.sent.append({"chat_id": int(params["chat_id"]), "text": str(params.get("text", "")),
                                  "reply_markup": markup if isinstance(markup, dict) else None,
                                  "message_id": message_id})
            return self._ok({"message_id": message_id, "date": int(time.time()), "text": params.get("text", ""),
                             "chat": {"id": int(params["chat_id"]), "type": "private"}})
        if method == "answerCallbackQuery":
            with self._lock:
                self.answers.append(params)
            return self._ok(True)
        return self._ok(True)

    @staticmethod
    def _ok(result: Any) -> JSONResponse:
        return _Escaped({"ok": True, "result": result})

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/bot{token}/{method}", self.handle, methods=["GET", "POST"])])


@contextmanager
def telegram_stub(token: str = "4242:test-token") -> Iterator[TelegramStub]:
    """A running stub on a loopback port; `stub.url` is the Bot API base URL to configure."""
    stub = TelegramStub(token)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(stub.app(), host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, name="telegram-stub", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    stub.url = f"http://127.0.0.1:{port}"
    try:
        yield stub
    finally:
        server.should_exit = True
        thread.join(timeout=5)
