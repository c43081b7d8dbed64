"""Errors the domain and the command handlers raise; the API maps each to a status code."""

from __future__ import annotations


class DomainError(Exception):
    """A business-rule violation: the request was understood but cannot be carried out (400)."""

    status_code = 400
    # Set by the message bus when the command saved events before it refused (a risk breach is recorded,
    # then the approval refused): the store position and the accounts, so the API can wait for the read
    # models to show that record before it answers (read-your-writes holds for refusals too).
    saved_position: int | None = None
    saved_accounts: frozenset[int] = frozenset()

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidTransition(DomainError):
    """An aggregate was asked to move to a state its current status does not allow (400)."""


class NotFound(DomainError):
    """The object does not exist, or exists but must not be revealed to the caller (404)."""

    status_code = 404


class Forbidden(DomainError):
    """The caller may see the object but not change it, or lacks a role (403)."""

    status_code = 403


class Conflict(DomainError):
    """The command conflicts with the current state, e.g. a concurrent modification (409)."""

    status_code = 409


class ConcurrentChange(Conflict):
    """Other commands kept changing the same object while this one ran, beyond the bus's retries (409).
    Nothing of the command was recorded: sending it again is safe."""


class Unauthorized(DomainError):
    """Not authenticated, or the credentials were wrong (401)."""

    status_code = 401


class TooManyRequests(DomainError):
    """A rate limit was reached (429)."""

    status_code = 429
