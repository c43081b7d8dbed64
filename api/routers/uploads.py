"""Uploads of Zerodha Console exports (tradebook, ledger) and CAS statements.

The body is limited before anything is parsed: a declared Content-Length over the limit is refused at
once, and a body streamed without one is cut off as soon as it passes the limit. Each file is then
checked against the per-file limit (`TRADERTAPE_UPLOAD_MAX_MB`, default 20) before it is read. Parsing
runs in a worker thread (XLSX/CSV) or a resource-limited child process (PDF). A file that is not what it
claims, too large or malformed is a 400 and nothing is imported.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

from fastapi import BackgroundTasks, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request as StarletteRequest
from starlette.types import Message

from api.analytics_access import analytics_store
from api.deps import PageDep, PlatformDep, Reader, SessionUser, dispatch, resource_router
from api.public.base import answers
from api.public.imports import ImportBatchPublic, ImportReportPublic
from commands import imports_messages as im
from domain.errors import TooManyRequests
from domain.text import CONTROL
from infra.analytics.store import AnalyticsStore
from infra.bootstrap import Platform
from infra.imports.cas import CasLimits, parse_cas
from infra.imports.console import UploadError, parse_ledger, parse_tradebook
from projections.imports import list_batches

log = logging.getLogger(__name__)
router = resource_router("/api/uploads", ["uploads"])

MB = 1024 * 1024
_SLACK = MB  # multipart boundaries and the other fields


def _multipart(fields: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "properties": fields, "required": required}}}}}


_FILE = {"type": "string", "format": "binary"}


def _limit_bytes(platform: Platform) -> int:
    return int(platform.settings.upload_max_mb * MB)


def _too_large(platform: Platform) -> UploadError:
    return UploadError(f"Upload too large: each file may be at most {platform.settings.upload_max_mb:g} MB "
                       f"(and at most {platform.settings.upload_max_files} files at once)")


def _warm_analytics(request: Request, background: BackgroundTasks, account_id: int,
                    report: dict[str, Any]) -> None:
    """After an import that added something, build the account's analytics snapshot right after the
    response goes out, so the first analytics read does not pay for it (a read during the build waits
    for it, under the store's per-account lock)."""
    if report.get("imported") or report.get("statement_imported"):
        background.add_task(_build_snapshot, analytics_store(request), account_id)


def _build_snapshot(store: AnalyticsStore, account_id: int) -> None:
    try:
        store.snapshot(account_id)
    except Exception:  # the next analytics read builds it (and reports any error) instead
        log.warning("analytics snapshot after an import failed for account %s", account_id, exc_info=True)


async def _form(request: Request, platform: Platform, max_files: int) -> FormData:
    """The multipart form, read with the body bounded (see the module docstring)."""
    body_limit = _limit_bytes(platform) * max_files + _SLACK
    declared = request.headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):
            raise UploadError("Bad Content-Length header")
        if int(declared) > body_limit:
            raise _too_large(platform)
    ctype = request.headers.get("content-type", "")
    if not ctype.startswith("multipart/form-data"):
        raise UploadError("Send the file as multipart/form-data")
    received = 0
    upstream = request.receive

    async def receive() -> Message:
        nonlocal received
        message = await upstream()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > body_limit:
                raise _too_large(platform)
        return message

    bounded = StarletteRequest(request.scope, receive)
    return await bounded.form(max_files=max_files, max_fields=20)


class ParseSlots:
    """CAS parses of this process at once (each can take a minute and over 300 MB): a parse starts only
    while fewer than `total` run and none of the same account does; otherwise the upload is a 429. Only the
    parse holds a slot: an upload still arriving (however slowly) keeps no one else waiting."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.accounts: set[int] = set()
        self._lock = threading.Lock()

    @contextmanager
    def slot(self, account_id: int) -> Iterator[None]:
        with self._lock:
            if account_id in self.accounts:
                raise TooManyRequests("One of your CAS statements is still being read; wait for it to finish")
            if len(self.accounts) >= self.total:
                raise TooManyRequests("The server is busy reading other CAS statements; try again in a minute")
            self.accounts.add(account_id)
        try:
            yield
        finally:
            with self._lock:
                self.accounts.discard(account_id)


def cas_slots(request: Request) -> ParseSlots:
    slots: ParseSlots | None = getattr(request.app.state, "cas_slots", None)
    if slots is None:
        with _slots_lock:
            slots = getattr(request.app.state, "cas_slots", None)
            if slots is None:
                platform: Platform = request.app.state.platform
                slots = request.app.state.cas_slots = ParseSlots(platform.settings.cas_parses_at_once)
    return slots


_slots_lock = threading.Lock()


_LINE_CHARS = dict.fromkeys(map(ord, "\x00\t\n\r"))  # what CONTROL lets through in text, not in a file name


def _name(upload: UploadFile, fallback: str) -> str:
    base = os.path.basename((upload.filename or fallback).replace("\\", "/"))
    return CONTROL.sub("", base.translate(_LINE_CHARS))[:200] or fallback  # no control or bidi characters


async def _read(upload: UploadFile, platform: Platform) -> bytes:
    limit = _limit_bytes(platform)
    if upload.size is not None and upload.size > limit:
        raise _too_large(platform)
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise _too_large(platform)
    if not data:
        raise UploadError(f"{_name(upload, 'file')}: the file is empty")
    return data


def _files(form: FormData, *names: str) -> list[UploadFile]:
    out: list[UploadFile] = []
    for name in names:
        out.extend(v for v in form.getlist(name) if isinstance(v, UploadFile))
    return out


@router.post("/tradebook", **answers(ImportReportPublic),
             summary="Import Zerodha Console tradebooks (XLSX or CSV), several files at once",
             openapi_extra=_multipart({"files[]": {"type": "array", "items": _FILE}}, ["files[]"]))
async def tradebook(request: Request, user: SessionUser, platform: PlatformDep,
                    background: BackgroundTasks) -> dict[str, Any]:
    """Multipart field `files[]`; equity trades are imported, each once (a file twice imports once), and FIFO
    P&L is rebuilt. Rows that cannot be read are reported with the reason, never half-imported."""
    form = await _form(request, platform, platform.settings.upload_max_files)
    uploads = _files(form, "files[]", "files", "file")
    if not uploads:
        raise UploadError("No file: send one or more tradebooks in the multipart field files[]")
    parsed = []
    for up in uploads:
        name = _name(up, "tradebook")
        data = await _read(up, platform)
        parsed.append((name, await run_in_threadpool(parse_tradebook, name, data)))
    names = [n for n, _ in parsed]
    trades = [t for _, f in parsed for t in f.trades]
    rejected = [r for _, f in parsed for r in f.rejected]
    rows = sum(f.rows_read for _, f in parsed)
    cmd = im.ImportTradebook(user.account_id, tuple(names), rows, tuple(trades), tuple(rejected))
    result = await run_in_threadpool(partial(dispatch, events_hint=len(trades)), request, platform, cmd, user)
    _warm_analytics(request, background, user.account_id, result.value)
    return dict(result.value)


@router.post("/ledger", **answers(ImportReportPublic), summary="Import a Zerodha Console ledger (XLSX or CSV)",
             openapi_extra=_multipart({"file": _FILE}, ["file"]))
async def ledger(request: Request, user: SessionUser, platform: PlatformDep,
                 background: BackgroundTasks) -> dict[str, Any]:
    """Multipart field `file`; entries by category (charges, funds added, settlement, ...) with the opening and
    closing balance; charges count in the analytics summary."""
    form = await _form(request, platform, 1)
    uploads = _files(form, "file", "files[]")
    if len(uploads) != 1:
        raise UploadError("Send exactly one ledger in the multipart field file")
    name = _name(uploads[0], "ledger")
    data = await _read(uploads[0], platform)
    f = await run_in_threadpool(parse_ledger, name, data)
    cmd = im.ImportLedger(user.account_id, name, f.rows_read, tuple(f.entries), tuple(f.rejected))
    result = await run_in_threadpool(partial(dispatch, events_hint=len(f.entries)), request, platform, cmd, user)
    _warm_analytics(request, background, user.account_id, result.value)
    return {**result.value, "opening_balance": f.opening_balance, "closing_balance": f.closing_balance}


@router.post("/cas", **answers(ImportReportPublic),
             summary="Import a CAS PDF: CAMS/KFintech mutual funds, or NSDL/CDSL demat holdings",
             openapi_extra=_multipart({"file": _FILE, "password": {"type": "string"}}, ["file"]))
async def cas(request: Request, user: SessionUser, platform: PlatformDep,
              background: BackgroundTasks) -> dict[str, Any]:
    """Multipart fields `file` and `password` (the PDF's); parsed with time and memory limits. Mutual-fund
    transactions and valuations, or demat holdings; the same statement twice imports once."""
    form = await _form(request, platform, 1)
    uploads = _files(form, "file")
    if len(uploads) != 1:
        raise UploadError("Send exactly one CAS PDF in the multipart field file")
    raw_password = form.get("password")
    password = raw_password if isinstance(raw_password, str) else ""
    if len(password) > 200:
        raise UploadError("The password is too long")
    name = _name(uploads[0], "cas.pdf")
    data = await _read(uploads[0], platform)
    s = platform.settings
    limits = CasLimits(seconds=s.pdf_parse_seconds, memory_mb=s.pdf_parse_memory_mb)
    with cas_slots(request).slot(user.account_id):
        parsed = await run_in_threadpool(parse_cas, name, data, password, limits)
    cmd = im.ImportCas(user.account_id, name, parsed.file_type, parsed.period_from, parsed.period_to,
                       tuple(parsed.transactions), tuple(parsed.valuations), tuple(parsed.holdings), parsed.pages)
    result = await run_in_threadpool(dispatch, request, platform, cmd, user)
    _warm_analytics(request, background, user.account_id, result.value)
    return dict(result.value)


@router.get("/batches", response_model=list[ImportBatchPublic],
            summary="Your import batches and their reports, newest first",
            responses={200: {"headers": {"X-Total-Count": {"description": "your batches in total"}}}})
def batches(user: Reader, page: PageDep, platform: PlatformDep, request: Request) -> Any:
    """Each batch's report as its import answered it, with when it was imported."""
    from fastapi.responses import JSONResponse

    with platform.db.read() as conn:
        rows, total = list_batches(conn, user.account_id, page.limit, page.offset)
    return JSONResponse(rows, headers={"X-Total-Count": str(total)})
