"""Acknowledgements a client can trust: `X-Projection-Lag` on answers given before the read models caught
up, and `Idempotency-Key` on every unsafe authenticated route (a repeat gets the first answer)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import tempfile
import time
from typing import IO, Any

from fastapi import HTTPException, Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import SESSION_COOKIE, current_principal
from api.guards import UNSAFE_METHODS
from infra.store.idempotency import IdempotencyStore, StoredAnswer

KEY_HEADER = b"idempotency-key"
MAX_KEY = 255
SPOOL_IN_MEMORY = 1024 * 1024  # a larger body (an upload) is kept in a temporary file while it runs
REPLAY_CHUNK = 64 * 1024
BUSY_WAIT_SECONDS = 30.0  # a duplicate waits this long for the first request to finish, then 409
# Not stored or replayed: hop-by-hop and per-request headers (the outer middleware adds its own id).
_NOT_STORED = frozenset({"x-request-id", "content-length", "transfer-encoding", "connection", "date", "server"})


def _with_lag_header(scope: Scope, send: Send) -> Send:
    """Adds `X-Projection-Lag: <position>` when the request's command answered before the read models
    applied its events up to that store position (`api.deps.note_projection_lag`)."""
    state = scope.setdefault("state", {})

    async def send_with_lag(message: Message) -> None:
        if message["type"] == "http.response.start" and state.get("projection_lag"):
            message.setdefault("headers", []).append((b"x-projection-lag", str(state["projection_lag"]).encode()))
        await send(message)

    return send_with_lag


def _json(status: int, detail: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    return status, [(b"content-type", b"application/json")], json.dumps({"detail": detail}).encode()


class CommandAcks:
    """Answers of unsafe requests get `X-Projection-Lag` when their command answered ahead of the read
    models (see `_with_lag_header`). And an unsafe request (POST, PUT, PATCH, DELETE) under /api/ with
    an `Idempotency-Key` header, from a signed-in user or an agent key, runs once per (account, key)
    for 24 hours:

    - the first request runs; its answer (status, headers, body) is stored with the key;
    - a repeat with the same method, path, query and body gets that answer again (same status, plus
      `Idempotent-Replayed: true`), without running the command again;
    - the same key with a different request is a 422;
    - a repeat while the first is still running waits for it (up to 30 s; then 409).

    Unauthenticated requests (sign-in) pass through, and an answer that hands out a credential (one that
    sets a cookie, or that its route marks `Cache-Control: no-store`) is never stored: a secret must not
    sit in the database in the clear, nor be handed out again. Its key is released, so a retry runs again.
    (The session's own cookie re-sent with a fresh lifetime, as `api.deps` does for a session it just
    extended, hands out nothing new: that answer is stored and replayed, without the cookie.)"""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in UNSAFE_METHODS:
            await self.app(scope, receive, send)
            return
        send = _with_lag_header(scope, send)
        if not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        raw = next((v for k, v in scope.get("headers") or [] if k == KEY_HEADER), None)
        if raw is None:
            await self.app(scope, receive, send)
            return
        key = raw.decode("latin-1").strip()
        if not key or len(key) > MAX_KEY or not key.isascii() or not key.isprintable():
            await _send(send, *_json(400, f"Idempotency-Key must be 1 to {MAX_KEY} printable ASCII characters"))
            return
        account_id = await _account(scope)
        if account_id is None:  # not signed in: the route answers 401 itself (or signs in: never replayed)
            await self.app(scope, receive, send)
            return
        settings = scope["app"].state.platform.settings
        limit = int((settings.upload_max_mb * settings.upload_max_files + 1) * 1024 * 1024)  # the largest upload
        digest = hashlib.sha256()
        for part in (scope["method"].encode(), scope["path"].encode(), scope.get("query_string") or b""):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as body:
            if not await _spool_body(receive, body, _BodyHash(digest, _multipart_marker(scope)), limit):
                await _send(send, *_json(413, "Request body too large"))
                return
            await self._keyed(scope, body, digest.hexdigest(), receive, send, account_id, key)

    async def _keyed(self, scope: Scope, body: IO[bytes], fingerprint: str, receive: Receive, send: Send,
                     account_id: int, key: str) -> None:
        store: IdempotencyStore = scope["app"].state.idempotency
        deadline = time.monotonic() + BUSY_WAIT_SECONDS
        while True:
            claim = await run_in_threadpool(store.claim, account_id, key, fingerprint, time.time())
            if claim.outcome != "busy" or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        if claim.outcome == "mismatch":
            await _send(send, *_json(422, "This Idempotency-Key was used for a different request; "
                                          "use a new key for a new request"))
            return
        if claim.outcome == "lost":
            rid = str(scope.get("state", {}).get("request_id", ""))
            answer = StoredAnswer(409, [("content-type", "application/json")], json.dumps({"detail": (
                f"The first request with this Idempotency-Key was recorded (store position {claim.position}) "
                f"but its server stopped before answering; read the current state instead of retrying "
                f"(request id {rid})")}).encode())
            await run_in_threadpool(store.finish, account_id, key, answer)
            await _send(send, answer.status, [(b"content-type", b"application/json")], answer.body)
            return
        if claim.outcome == "busy":
            await _send(send, *_json(409, "A request with this Idempotency-Key is still running; retry later"))
            return
        if claim.outcome == "answer":
            assert claim.answer is not None
            headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in claim.answer.headers]
            await _send(send, claim.answer.status, [*headers, (b"idempotent-replayed", b"true")], claim.answer.body)
            return
        scope.setdefault("state", {})["idempotency_key"] = key  # recorded in the command's event meta
        await self._run(scope, body, receive, send, store, account_id, key)

    async def _run(self, scope: Scope, body: IO[bytes], receive: Receive, send: Send,
                   store: IdempotencyStore, account_id: int, key: str) -> None:
        body.seek(0)
        done = False

        async def replay() -> Message:
            nonlocal done
            if not done:
                chunk = body.read(REPLAY_CHUNK)
                done = len(chunk) < REPLAY_CHUNK
                return {"type": "http.request", "body": chunk, "more_body": not done}
            return await receive()

        status = 500
        headers: list[tuple[str, str]] = []
        chunks: list[bytes] = []
        stored = secret = False
        token = Request(scope).cookies.get(SESSION_COOKIE)
        refresh = f"{SESSION_COOKIE}={token};" if token else None  # the session's own cookie, a new lifetime

        async def capture(message: Message) -> None:
            nonlocal status, stored, secret
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers.extend((k.decode("latin-1").lower(), v.decode("latin-1"))
                               for k, v in message.get("headers") or [])
                secret = any((k == "set-cookie" and not (refresh and v.startswith(refresh)))
                             or (k == "cache-control" and "no-store" in v.lower()) for k, v in headers)
                headers[:] = [(k, v) for k, v in headers if k not in _NOT_STORED and k != "set-cookie"]
            elif message["type"] == "http.response.body" and not secret:
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    # stored before the client has the whole answer: an answer a client received is
                    # never missing from the store (a server killed in between sent no complete answer)
                    await run_in_threadpool(store.finish, account_id, key,
                                            StoredAnswer(status, headers, b"".join(chunks)))
                    stored = True
            await send(message)

        try:
            await self.app(scope, replay, capture)
        except BaseException:
            if not stored and not secret:
                # The command may have committed before the error: a retry must not run it again.
                rid = str(scope.get("state", {}).get("request_id", ""))
                _, hdrs, err = _json(500, f"Internal server error in the first request with this Idempotency-Key "
                                          f"(request id {rid})")
                await run_in_threadpool(store.finish, account_id, key,
                                        StoredAnswer(500, [(k.decode(), v.decode()) for k, v in hdrs], err))
            raise
        finally:
            if secret:
                await run_in_threadpool(store.release, account_id, key)
        if not stored and not secret:  # (an app that never ended its body)
            await run_in_threadpool(store.finish, account_id, key, StoredAnswer(status, headers, b"".join(chunks)))


async def _account(scope: Scope) -> int | None:
    try:
        principal = await current_principal(Request(scope), Response())
    except HTTPException:
        return None
    return principal.account_id


def _multipart_marker(scope: Scope) -> bytes | None:
    """`--<boundary>` of a multipart body: clients pick a new boundary for each try, so the fingerprint
    of a retried upload must not depend on it."""
    ctype = next((v for k, v in scope.get("headers") or [] if k == b"content-type"), b"")
    if not ctype.lower().startswith(b"multipart/"):
        return None
    for param in ctype.split(b";")[1:]:
        name, _, value = param.strip().partition(b"=")
        if name.lower() == b"boundary" and value.strip(b'"'):
            return b"--" + value.strip(b'"')
    return None


class _BodyHash:
    """Feeds a body to `digest` with every `marker` replaced by a fixed token (also across chunks)."""

    def __init__(self, digest: Any, marker: bytes | None) -> None:
        self.digest = digest
        self.marker = marker
        self.carry = b""

    def update(self, chunk: bytes) -> None:
        if not self.marker:
            self.digest.update(chunk)
            return
        data = (self.carry + chunk).replace(self.marker, b"--\x00boundary")
        keep = len(self.marker) - 1  # a marker may start in these last bytes and end in the next chunk
        self.digest.update(data[:len(data) - keep] if len(data) > keep else b"")
        self.carry = data[len(data) - keep:] if len(data) > keep else data

    def finish(self) -> None:
        self.digest.update(self.carry)
        self.carry = b""


async def _spool_body(receive: Receive, out: IO[bytes], digest: _BodyHash, limit: int) -> bool:
    """Copy the request body into `out` (hashing it); False when it exceeds `limit` bytes. A disconnect
    ends it early (the app then sees the disconnect)."""
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            digest.finish()
            return True
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return False
        out.write(chunk)
        digest.update(chunk)
        if not message.get("more_body", False):
            digest.finish()
            return True


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    out: list[Any] = [h for h in headers if h[0].lower() != b"content-length"]
    out.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": out})
    await send({"type": "http.response.body", "body": body, "more_body": False})
