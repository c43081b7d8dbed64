"""Signing in, shared by the auth API and the emailed-link pages: the caller's address and a sign-in
dispatch whose refusal is logged as a security event."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from api.deps import dispatch
from api.security_log import security_event
from commands.bus import CommandResult
from domain.errors import DomainError
from infra.bootstrap import Platform

__all__ = ["client_ip", "login"]


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def login(request: Request, platform: Platform, command: Any, email: str, method: str) -> CommandResult:
    """Dispatch a sign-in; a refusal is a security event (the email and the method, never what was tried)."""
    try:
        return dispatch(request, platform, command)
    except DomainError as exc:
        security_event(request, "login_locked" if exc.status_code == 429 or "locked" in exc.detail
                       else "login_failed", email=email, method=method, status=exc.status_code)
        raise
