"""Inbound alert hooks: create, rotate and delete a hook; an alert posted to it becomes signals of its
portfolio through the same code as the after-close scan (`record_candidates`: ranking, slots, sizing, and
with auto-approve the account's risk rules before the order is placed), recorded with the alert in one
transaction."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from commands import hooks_messages as hm
from commands.handlers.portfolios import _exit_signal_ids, _load, now_of, record_candidates
from commands.uow import UnitOfWork
from domain.errors import DomainError, NotFound
from domain.portfolio.aggregate import Portfolio
from domain.sizing import Candidate
from domain.webhooks import TOKEN_PREFIX, Webhook

NO_PRICE = "no price: the alert sent none and no bars are stored for this symbol"


def _new_token(hook_id: int) -> tuple[str, str]:
    token = f"{TOKEN_PREFIX}{hook_id}_{secrets.token_urlsafe(32)}"
    return token, token[:len(f"{TOKEN_PREFIX}{hook_id}_") + 4]


def _owned(uow: UnitOfWork, account_id: int, hook_id: int) -> Webhook:
    hook = uow.load(Webhook, Webhook.uuid_for(hook_id))
    if hook is None:
        raise NotFound(f"Hook {hook_id} not found")
    return hook.owned_by(account_id)


def create_webhook(cmd: hm.CreateWebhook, uow: UnitOfWork) -> hm.IssuedHook:
    pf = _load(uow, cmd.portfolio_id, cmd.account_id)  # another user's portfolio is a 404
    if pf.status == "retired":
        raise DomainError(f"portfolio {cmd.portfolio_id} is retired; alerts could never become signals there")
    hook_id = uow.deps.ids.next_id("webhook")
    token, prefix = _new_token(hook_id)
    hook = Webhook.create(hook_id, cmd.account_id, cmd.portfolio_id, cmd.source, cmd.name,
                          uow.deps.token_hash(token), prefix, now_of(uow).isoformat())
    uow.save(hook)
    return hm.IssuedHook(hook_id, token, prefix)


def rotate_webhook_token(cmd: hm.RotateWebhookToken, uow: UnitOfWork) -> hm.IssuedHook:
    hook = _owned(uow, cmd.account_id, cmd.hook_id)
    token, prefix = _new_token(cmd.hook_id)
    hook.rotate(uow.deps.token_hash(token), prefix, now_of(uow).isoformat())
    uow.save(hook)
    return hm.IssuedHook(cmd.hook_id, token, prefix)


def delete_webhook(cmd: hm.DeleteWebhook, uow: UnitOfWork) -> None:
    hook = _owned(uow, cmd.account_id, cmd.hook_id)
    hook.delete(now_of(uow).isoformat())
    uow.save(hook)


def receive_alert(cmd: hm.ReceiveAlert, uow: UnitOfWork) -> hm.AlertOutcome:
    hook = uow.load(Webhook, Webhook.uuid_for(cmd.hook_id))
    if hook is None or not hook.accepts(cmd.token_hash):
        raise NotFound("Unknown or revoked hook")
    account_id = hook.account_id or 0
    at = now_of(uow).isoformat()
    seen = hook.earlier(cmd.key, at, cmd.window_seconds)
    if seen is not None:
        return hm.AlertOutcome(hook.hook_id, hook.portfolio_id, account_id, True, seen.signal_ids,
                               seen.exit_signal_ids, seen.ignored)
    pf = _load(uow, hook.portfolio_id, account_id)
    day = pf.last_day or pf.deployed_on
    items = list({(i.symbol, i.action): i for i in reversed(cmd.items)}.values())[::-1]  # first of each
    ignored: list[dict[str, Any]] = []
    book = None
    signal_ids: list[int] = []
    buys = [i for i in items if i.action == "buy"]
    if buys:
        signal_ids, book = _entries(uow, pf, day, buys, cmd.label, at, ignored)
    exits_before = _exit_signal_ids(pf)
    sells = [i.symbol for i in items if i.action == "sell"]
    held = [s for s in sells if pf.holds(s)]
    ignored.extend({"symbol": s, "action": "sell", "reason": "no open position in this symbol"}
                   for s in sells if s not in held)
    if held:
        pf.record_exit_signals(day, held, at, reasons={s: cmd.label for s in held}, ids=uow.ids)
    exit_ids = sorted(_exit_signal_ids(pf) - exits_before)
    exited = {pf.positions[pf.exit_signals[sid]].symbol for sid in exit_ids if sid in pf.exit_signals}
    ignored.extend({"symbol": s, "action": "sell", "reason": "an exit is already pending for this position"}
                   for s in held if s not in exited)
    hook.record_alert(cmd.key, [{"symbol": i.symbol, "action": i.action, "price": i.price} for i in items],
                      signal_ids, exit_ids, ignored, at)
    uow.save(hook, pf, *([book] if book is not None and book.has_changes else []))
    return hm.AlertOutcome(hook.hook_id, hook.portfolio_id, account_id, False, tuple(signal_ids), tuple(exit_ids),
                           tuple(ignored))


def _entries(uow: UnitOfWork, pf: Portfolio, day: str, buys: list[hm.AlertItem], label: str, at: str,
             ignored: list[dict[str, Any]]) -> tuple[list[int], Any]:
    """Buy items as the scan's candidates; the ids of the signals generated (and the RiskBook, if loaded)."""
    market = uow.deps.market
    engaged = {s.symbol for s in pf.live_signals()} | {p.symbol for p in pf.open_positions.values()}
    stored = market.last_prices([i.symbol for i in buys if i.price is None], day)
    sectors = market.sectors(pf.universe, [i.symbol for i in buys])
    candidates: list[Candidate] = []
    for item in buys:
        price = item.price if item.price is not None else stored.get(item.symbol)
        if price is None:
            ignored.append({"symbol": item.symbol, "action": "buy", "reason": NO_PRICE})
            continue
        candidates.append(Candidate(item.symbol, sectors.get(item.symbol, "Unknown"), 0.0, float(price), label))
    before = set(pf.signals)
    _, book = record_candidates(uow, pf, day, candidates, at)
    new_ids = sorted(set(pf.signals) - before)
    taken = {pf.signals[sid].symbol for sid in new_ids}
    for cand in candidates:
        if cand.symbol in taken:
            continue
        reason = (f"portfolio is {pf.status}" if pf.status != "active"
                  else "already held or signalled in this portfolio" if cand.symbol in engaged
                  else "not taken: no free slot, the sector limit, or less than one share at this size")
        ignored.append({"symbol": cand.symbol, "action": "buy", "reason": reason})
    return new_ids, book


HANDLERS: dict[type, Callable[[Any, UnitOfWork], Any]] = {
    hm.CreateWebhook: create_webhook,
    hm.RotateWebhookToken: rotate_webhook_token,
    hm.DeleteWebhook: delete_webhook,
    hm.ReceiveAlert: receive_alert,
}
