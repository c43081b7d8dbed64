"""The Account aggregate: a user's profile and the audited facts about their credentials.

Secrets themselves (password hashes, key hashes, session tokens) live in plain security tables; the
events record that something happened, never the secret.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from domain.aggregate import Aggregate, aggregate_uuid
from domain.errors import DomainError
from domain.events import DomainEvent


@dataclass(frozen=True)
class AccountRegistered(DomainEvent):
    account_id: int
    email: str
    name: str
    is_admin: bool
    registered_via: str


@dataclass(frozen=True)
class LoggedIn(DomainEvent):
    method: str  # "magic_link" | "otp" | "password"


@dataclass(frozen=True)
class LoggedOut(DomainEvent):
    pass


@dataclass(frozen=True)
class PasswordChanged(DomainEvent):
    first_time: bool


@dataclass(frozen=True)
class AgentKeyIssued(DomainEvent):
    prefix: str
    replaced_prefix: str | None


@dataclass(frozen=True)
class AgentKeyRevoked(DomainEvent):
    prefix: str


@dataclass(frozen=True)
class AdminGranted(DomainEvent):
    pass


class Account(Aggregate):
    aggregate_type = "Account"

    email: str
    name: str
    is_admin: bool
    has_password: bool
    agent_key_prefix: str | None

    @staticmethod
    def uuid_for(account_id: int) -> uuid.UUID:
        return aggregate_uuid("account", account_id)

    @classmethod
    def register(cls, account_id: int, email: str, name: str, is_admin: bool, via: str) -> Account:
        """A new account; `email` must already be normalised (lower-case, stripped)."""
        acc = cls(cls.uuid_for(account_id))
        acc._record(AccountRegistered(account_id, email, name, is_admin, via))
        return acc

    def when_AccountRegistered(self, e: AccountRegistered) -> None:
        self.account_id = e.account_id
        self.email = e.email
        self.name = e.name
        self.is_admin = e.is_admin
        self.has_password = False
        self.agent_key_prefix = None

    def logged_in(self, method: str) -> None:
        self._record(LoggedIn(method))

    def when_LoggedIn(self, e: LoggedIn) -> None:
        pass

    def logged_out(self) -> None:
        self._record(LoggedOut())

    def when_LoggedOut(self, e: LoggedOut) -> None:
        pass

    def password_changed(self) -> None:
        self._record(PasswordChanged(first_time=not self.has_password))

    def when_PasswordChanged(self, e: PasswordChanged) -> None:
        self.has_password = True

    def issue_agent_key(self, prefix: str) -> None:
        self._record(AgentKeyIssued(prefix, self.agent_key_prefix))

    def when_AgentKeyIssued(self, e: AgentKeyIssued) -> None:
        self.agent_key_prefix = e.prefix

    def revoke_agent_key(self) -> None:
        if self.agent_key_prefix is None:
            raise DomainError("There is no agent key to revoke")
        self._record(AgentKeyRevoked(self.agent_key_prefix))

    def when_AgentKeyRevoked(self, e: AgentKeyRevoked) -> None:
        self.agent_key_prefix = None

    def grant_admin(self) -> None:
        if not self.is_admin:
            self._record(AdminGranted())

    def when_AdminGranted(self, e: AdminGranted) -> None:
        self.is_admin = True
