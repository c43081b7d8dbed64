"""The message bus: dispatches each command to its handler, retrying a few times on a version conflict."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from commands.ports import CommandMeta, ConcurrencyConflict
from commands.uow import Deps, UnitOfWork
from domain.errors import ConcurrentChange, DomainError

log = logging.getLogger(__name__)

Handler = Callable[[Any, UnitOfWork], Any]

# A version conflict means another command saved the same aggregate first; the handler runs again on the
# fresh state. Several carts of one account placed at once all save its RiskBook, so one retry is not
# enough under load: ATTEMPTS tries with a short random pause (1-2, 2-4, 4-8 ms) to break the lockstep.
# A dispatch may give itself a larger budget (`attempts`): the pauses keep doubling.
ATTEMPTS = 4


@dataclass(frozen=True)
class CommandResult:
    value: Any
    position: int | None  # store position of the last event saved, for read-your-writes
    account_id: int | None
    touched_accounts: frozenset[int] = frozenset()
    caught_up: bool = True  # set by the API: did the projections reach `position` within the bound?


class MessageBus:
    def __init__(self, deps: Deps, handlers: dict[type, Handler],
                 on_saved: Callable[[int], None] | None = None) -> None:
        self.deps = deps
        self.handlers = handlers
        self._on_saved = on_saved

    def handle(self, command: Any, meta: CommandMeta, attempts: int = ATTEMPTS) -> CommandResult:
        handler = self.handlers[type(command)]
        for attempt in range(1, attempts + 1):
            try:
                with UnitOfWork(self.deps, meta) as uow:  # hands its aggregates back to the store on exit
                    value = handler(command, uow)
            except ConcurrencyConflict:
                if attempt == attempts:
                    raise ConcurrentChange(
                        "The object was changed by other requests at the same time; try again") from None
                log.info("version conflict on %s, attempt %d; retrying", type(command).__name__, attempt)
                time.sleep(random.uniform(1, 2) * 2 ** (attempt - 1) / 1000)
                continue
            except DomainError as refused:
                if uow.position is not None:  # refused after recording something (e.g. a RiskBreached)
                    refused.saved_position = uow.position
                    refused.saved_accounts = frozenset(uow.touched_accounts)
                    if self._on_saved is not None:
                        self._on_saved(uow.position)
                raise
            if uow.position is not None and self._on_saved is not None:
                self._on_saved(uow.position)
            return CommandResult(value, uow.position, uow.account_id, frozenset(uow.touched_accounts))
        raise AssertionError("unreachable")
