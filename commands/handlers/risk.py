"""Risk rules: create, replace, delete (deleting a kill_switch rule releases it)."""

from __future__ import annotations

from commands import messages as m
from commands.handlers.portfolios import load_book, now_of
from commands.uow import UnitOfWork


def create_risk_rule(cmd: m.CreateRiskRule, uow: UnitOfWork) -> int:
    book = load_book(uow, cmd.account_id)
    b = cmd.body
    rule_id = uow.deps.ids.next_id("risk_rule")
    book.create_rule(rule_id, b.rule_type, b.portfolio_id, b.value, b.unit, list(b.symbols), b.note,
                     now_of(uow).isoformat())
    uow.save(book)
    return rule_id


def update_risk_rule(cmd: m.UpdateRiskRule, uow: UnitOfWork) -> int:
    book = load_book(uow, cmd.account_id)
    b = cmd.body
    book.update_rule(cmd.rule_id, b.rule_type, b.portfolio_id, b.value, b.unit, list(b.symbols), b.note,
                     now_of(uow).isoformat())
    uow.save(book)
    return cmd.rule_id


def delete_risk_rule(cmd: m.DeleteRiskRule, uow: UnitOfWork) -> None:
    book = load_book(uow, cmd.account_id)
    book.delete_rule(cmd.rule_id, now_of(uow).isoformat())
    uow.save(book)
