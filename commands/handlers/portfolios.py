"""Model portfolios: deploy and lifecycle, the market clock's daily step (fills, exits, the after-close
scan), signal decisions, the cart, manual closes -- each with the account's risk rules applied.

The Portfolio aggregate guards cash, slots and its signals; the account's RiskBook guards the rules,
orders per day and the kill switch. A command that takes a slot or sends an order saves both in one
transaction, so concurrent approvals or placements cannot break either (a version clash is retried).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from commands import messages as m
from commands.uow import UnitOfWork
from domain.errors import DomainError, NotFound
from domain.market_hours import IST
from domain.portfolio.aggregate import Portfolio
from domain.portfolio.state import ScanOutcome, SignalState
from domain.risk import Breach, EntryRequest, Exposure, RiskBook, check_entry, daily_loss_limit
from domain.sizing import Candidate
from domain.status import PortfolioStatus, PositionStatus, SignalStatus
from domain.strategies import Strategy


def now_of(uow: UnitOfWork) -> datetime:
    return uow.deps.clock.now()


def _load(uow: UnitOfWork, portfolio_id: int, account_id: int | None) -> Portfolio:
    """The portfolio, if `account_id` owns it (None: the system acts); otherwise 404."""
    pf = uow.load(Portfolio, Portfolio.uuid_for(portfolio_id))
    if pf is None or (account_id is not None and pf.account_id != account_id):
        raise NotFound(f"Portfolio {portfolio_id} not found")
    return pf


def load_book(uow: UnitOfWork, account_id: int) -> RiskBook:
    return uow.load(RiskBook, RiskBook.uuid_for(account_id)) or RiskBook.open(account_id)


class RiskContext:
    """The account's risk rules and exposures around one portfolio being changed."""

    def __init__(self, uow: UnitOfWork, book: RiskBook, pf: Portfolio,
                 stored: dict[int, Exposure | None] | None = None) -> None:
        """`stored`: the other portfolios' stored exposures (None: missing or retired), shared by the
        contexts of one command so that each portfolio is loaded once."""
        self.book = book
        self.pf = pf
        self.today = now_of(uow).astimezone(IST).date().isoformat()
        self.others = Exposure()
        if not any(r.portfolio_id is None for r in book.rules.values()):  # only account-wide rules need them
            return
        stored = {} if stored is None else stored
        for pid in book.portfolios:
            if pid == pf.portfolio_id:
                continue
            if pid not in stored:
                other = uow.load(Portfolio, Portfolio.uuid_for(pid))
                stored[pid] = (other.exposure() if other is not None and other.status != PortfolioStatus.RETIRED
                               else None)
            if (exposure := stored[pid]) is not None:
                self.others.add(exposure)

    def scopes(self) -> dict[str, Exposure]:
        mine = self.pf.exposure(self.book.orders_on(self.today, self.pf.portfolio_id))
        account = Exposure()
        account.add(self.others)
        account.add(mine)
        account.orders_today = self.book.orders_on(self.today)
        return {"portfolio": mine, "account": account}

    def check(self, sig: SignalState, *, placing: bool, committed: bool) -> list[Breach]:
        value = sig.quantity * (sig.limit_price or sig.reference_price)
        req = EntryRequest(self.pf.portfolio_id, sig.symbol, sig.sector, value, placing, committed)
        return check_entry(self.book.rules.values(), req, self.scopes())

    def refuse(self, breaches: list[Breach], sig: SignalState, action: str, at: str) -> str:
        self.book.record_breaches(breaches, action=action, portfolio_id=self.pf.portfolio_id,
                                  signal_id=sig.signal_id, symbol=sig.symbol, day=self.today, at=at)
        return "; ".join(b.message for b in breaches)


# ------------------------------------------------------------------ deploy and lifecycle


def deploy_portfolio(cmd: m.DeployPortfolio, uow: UnitOfWork) -> int:
    strategy = uow.load(Strategy, Strategy.uuid_for(cmd.strategy_id))
    if strategy is None or strategy.deleted or not strategy.readable_by(cmd.account_id):
        raise NotFound(f"Strategy {cmd.strategy_id} not found")
    if cmd.mode not in ("paper", "live"):
        raise DomainError(f"mode must be paper or live, got {cmd.mode!r}")
    market = uow.deps.market
    market.check_universe(cmd.universe)
    day = market.latest_day()
    if day is None:
        raise DomainError("No bar history is stored yet; import or generate bars first")
    if not cmd.name.strip():
        raise DomainError("name must not be empty")
    portfolio_id = uow.deps.ids.next_id("portfolio")
    pf = Portfolio.deploy(
        portfolio_id, name=cmd.name.strip(), mode=cmd.mode, strategy=strategy.spec.to_json(),
        capital=cmd.capital, position_size_pct=cmd.position_size_pct, max_positions=cmd.max_positions,
        max_per_sector=cmd.max_per_sector, auto_approve=cmd.auto_approve, slippage_bps=cmd.slippage_bps,
        charges=cmd.charges, universe=cmd.universe, strategy_id=cmd.strategy_id, account_id=cmd.account_id,
        day=day, at=now_of(uow).isoformat(),
    )
    book = load_book(uow, cmd.account_id)
    book.register_portfolio(portfolio_id, now_of(uow).isoformat())
    uow.save(pf, book)
    return portfolio_id


def change_portfolio_status(cmd: m.ChangePortfolioStatus, uow: UnitOfWork) -> str:
    pf = _load(uow, cmd.portfolio_id, cmd.account_id)
    at = now_of(uow).isoformat()
    actions: dict[str, Callable[[str], None]] = {
        "pause": pf.pause, "resume": pf.resume, "retire": pf.retire, "reset": pf.reset,
    }
    actions[cmd.action](at)
    uow.save(pf)
    return pf.status


# ------------------------------------------------------------------ the market clock


def run_portfolio_day(cmd: m.RunPortfolioDay, uow: UnitOfWork) -> list[int]:
    """One trading day for one portfolio; returns the ids of the signals generated (entries and exits).
    Idempotent per day: bars already processed are not processed again; a second scan of the same
    day only adds candidates that fit slots freed since."""
    pf = _load(uow, cmd.portfolio_id, None)
    if pf.status == PortfolioStatus.RETIRED:
        return []
    market = uow.deps.market
    at = now_of(uow).isoformat()
    if pf.last_day is None or cmd.day > pf.last_day:
        pf.process_bars(cmd.day, market.bars_on(cmd.day, pf.symbols_needing_bars()), at, ids=uow.ids)
    elif cmd.day < pf.last_day:
        raise DomainError(f"portfolio {pf.portfolio_id} has processed {pf.last_day} already; cannot go back to "
                          f"{cmd.day}")
    if not cmd.scan:
        uow.save(pf)
        return []
    before = set(pf.signals)
    exit_ids_before = _exit_signal_ids(pf)
    result = market.scan(pf.strategy, pf.universe, market.warmup_start(pf.deployed_on), cmd.day)
    if result.exits and pf.open_positions:
        pf.record_exit_signals(cmd.day, list(result.exits), at, reasons=result.exits, ids=uow.ids)
    book: RiskBook | None = None
    if result.candidates and pf.status == PortfolioStatus.ACTIVE:
        _, book = record_candidates(uow, pf, cmd.day, result.candidates, at)
    uow.save(pf, *([book] if book is not None and book.has_changes else []))
    return sorted((set(pf.signals) - before) | (_exit_signal_ids(pf) - exit_ids_before))


def record_candidates(uow: UnitOfWork, pf: Portfolio, day: str, candidates: list[Candidate],
                      at: str) -> tuple[ScanOutcome, RiskBook | None]:
    """A scan's (or an inbound alert's) candidates become signals of `pf`: ranked, limited and sized by
    the portfolio; with auto-approve each is placed at once if the account's risk rules pass it (a breach
    is recorded on the RiskBook and the signal waits for a person). Returns the outcome and the RiskBook
    when auto-approve loaded it (save it with the portfolio when it has changes)."""
    gate = None
    book: RiskBook | None = None
    if pf.auto_approve and pf.status == PortfolioStatus.ACTIVE:
        book = load_book(uow, pf.account_id or 0)
        ctx = RiskContext(uow, book, pf)

        def gate(sig: SignalState) -> bool:
            breaches = ctx.check(sig, placing=True, committed=False)
            if breaches:
                ctx.refuse(breaches, sig, "auto_approve", at)
                return False
            ctx.book.count_order(pf.portfolio_id, sig.signal_id, ctx.today, at)
            return True

    return pf.record_signals(day, candidates, at, gate=gate, ids=uow.ids), book


def _exit_signal_ids(pf: Portfolio) -> set[int]:
    return {p.exit_signal_id for p in pf.open_positions.values() if p.exit_signal_id is not None}


def check_daily_loss(cmd: m.CheckDailyLoss, uow: UnitOfWork) -> list[int]:
    """Engage the kill switch for each max_daily_loss rule the day's loss reached; placed entries of the
    portfolios it covers are cancelled. Returns the kill-switch rule ids created."""
    book = uow.load(RiskBook, RiskBook.uuid_for(cmd.account_id))
    if book is None:
        return []
    loss_rules = [r for r in book.rules.values() if r.rule_type == "max_daily_loss"]
    if not loss_rules:
        return []
    portfolios = {pid: pf for pid in book.portfolios
                  if (pf := uow.load(Portfolio, Portfolio.uuid_for(pid))) is not None
                  and pf.status != PortfolioStatus.RETIRED}
    at = now_of(uow).isoformat()
    created: list[int] = []
    touched: list[Portfolio] = []
    for rule in loss_rules:
        covered = [pf for pid, pf in portfolios.items() if rule.applies_to(pid)]
        capital = sum(pf.capital for pf in covered)
        loss = -sum(pf.day_pnl for pf in covered)
        limit = daily_loss_limit(rule, capital)
        if limit <= 0 or loss < limit or rule.rule_id in book.engaged_for.values():
            continue
        new_id = uow.deps.ids.next_id("risk_rule")
        book.engage_kill_switch(new_id, rule, loss, limit, cmd.day, at)
        created.append(new_id)
        for pf in covered:
            if pf.mode == "live":  # its placed entries are GTTs at Kite: the agent deletes them, then expires them
                continue
            if pf.cancel_placed_entries(cmd.day, f"cancelled: kill switch engaged by max_daily_loss rule "
                                                 f"{rule.rule_id}", at) and pf not in touched:
                touched.append(pf)
    if created:
        uow.save(book, *touched)
    return created


# ------------------------------------------------------------------ signals and the cart


def decide_signal(cmd: m.DecideSignal, uow: UnitOfWork) -> str:
    pf = _load(uow, cmd.portfolio_id, cmd.account_id)
    at = now_of(uow).isoformat()
    if cmd.action == "reject":
        pf.reject_signal(cmd.signal_id, at, cmd.reason or "rejected by user")
    elif cmd.action == "expire":
        pf.expire_signal(cmd.signal_id, at, cmd.reason or "expired by user")
    else:
        return _approve(pf, cmd.signal_id, at, uow)
    uow.save(pf)
    return pf.signals[cmd.signal_id].status


def _approve(pf: Portfolio, signal_id: int, at: str, uow: UnitOfWork) -> str:
    """pending_approval -> in_cart after the risk rules (a breach is recorded, then refused)."""
    sig = pf.signals.get(signal_id)
    if sig is None:
        raise NotFound(f"Signal {signal_id} not found")
    if sig.status != SignalStatus.PENDING_APPROVAL or pf.status != PortfolioStatus.ACTIVE:
        pf.approve_signal(signal_id, at)  # raises, naming the status
    book = load_book(uow, pf.account_id or 0)
    ctx = RiskContext(uow, book, pf)
    breaches = ctx.check(sig, placing=False, committed=False)
    if breaches:
        message = ctx.refuse(breaches, sig, "approve", at)
        uow.save(book)
        raise DomainError(f"Risk rule breached, signal {signal_id} not approved: {message}")
    pf.approve_signal(signal_id, at)
    if book.guards_account_room():  # account-wide limits: serialise concurrent approvals on the RiskBook
        book.note_approval(pf.portfolio_id, signal_id, ctx.today, at)
        uow.save(pf, book)
    else:
        uow.save(pf)
    return pf.signals[signal_id].status


def place_cart(cmd: m.PlaceCart, uow: UnitOfWork) -> dict[str, list[dict[str, Any]]]:
    """Place the given in-cart signals: each passes the risk rules again or is refused (and stays in the
    cart). Returns {"placed": [...], "refused": [...]}."""
    at = now_of(uow).isoformat()
    portfolios: dict[int, Portfolio] = {}
    items = cmd.items or _in_cart(uow, cmd.account_id, cmd.portfolio_id, portfolios)
    if not items:
        return {"placed": [], "refused": []}
    book = load_book(uow, cmd.account_id)
    placed: list[dict[str, Any]] = []
    refused: list[dict[str, Any]] = []
    stored: dict[int, Exposure | None] = {}
    for portfolio_id, signal_id in items:
        pf = portfolios.get(portfolio_id) or _load(uow, portfolio_id, cmd.account_id)
        portfolios[portfolio_id] = pf
        sig = pf.signals.get(signal_id)
        if sig is None:
            raise NotFound(f"Signal {signal_id} not found")
        if sig.status != SignalStatus.IN_CART:
            refused.append({"signal_id": signal_id, "portfolio_id": portfolio_id, "symbol": sig.symbol,
                            "reason": f"signal is {sig.status}, not in_cart"})
            continue
        ctx = RiskContext(uow, book, pf, stored)
        breaches = ctx.check(sig, placing=True, committed=True)
        if breaches:
            refused.append({"signal_id": signal_id, "portfolio_id": portfolio_id, "symbol": sig.symbol,
                            "reason": ctx.refuse(breaches, sig, "place", at)})
            continue
        order_id, gtt_id = uow.deps.router.route(pf.mode, cmd.account_id, portfolio_id, signal_id)
        pf.place_signal(signal_id, at, day=pf.last_day, order_id=order_id, gtt_id=gtt_id)
        book.count_order(portfolio_id, signal_id, ctx.today, at)
        placed.append({"signal_id": signal_id, "portfolio_id": portfolio_id, "symbol": sig.symbol,
                       "quantity": sig.quantity, "order_type": sig.entry_order, "limit_price": sig.limit_price,
                       "gtt_id": gtt_id, "order_id": order_id, "queued_for_agent": pf.mode == "live"})
    uow.save(book, *portfolios.values())
    return {"placed": placed, "refused": refused}


def _in_cart(uow: UnitOfWork, account_id: int, portfolio_id: int | None,
             loaded: dict[int, Portfolio]) -> tuple[tuple[int, int], ...]:
    """(portfolio, signal) of every in-cart signal of the account's portfolios (or of `portfolio_id`,
    which must be the account's), by signal id; the portfolios loaded go into `loaded`."""
    if portfolio_id is not None:
        ids = [portfolio_id]
    else:
        book = uow.load(RiskBook, RiskBook.uuid_for(account_id))
        ids = list(book.portfolios) if book is not None else []
    items: list[tuple[int, int]] = []
    for pid in ids:
        pf = _load(uow, pid, account_id)
        loaded[pid] = pf
        items.extend((pid, sid) for sid, sig in pf.signals.items() if sig.status == SignalStatus.IN_CART)
    return tuple(sorted(items, key=lambda item: item[1]))


def close_position(cmd: m.ClosePosition, uow: UnitOfWork) -> str:
    """Paper: sell at the latest stored close now (its stop/target simply stop applying). Live: queue an
    exit signal for the agent; a working protective stop/target GTT is replaced -- the agent cancels it at
    Kite before it places the close, so the shares are never sold twice. `quantity`: a partial close."""
    pf = _load(uow, cmd.portfolio_id, cmd.account_id)
    pos = pf.positions.get(cmd.position_id)
    if pos is None:
        raise NotFound(f"Position {cmd.position_id} not found")
    if pos.status != PositionStatus.OPEN:
        raise DomainError(f"position {cmd.position_id} is {pos.status}; only an open position can be closed")
    at = now_of(uow).isoformat()
    market = uow.deps.market
    day = max(market.latest_day() or pos.entry_day, pf.last_day or pos.entry_day)
    if pf.mode == "live":
        pf.request_exit(cmd.position_id, day, at, "manual close requested", cmd.quantity, ids=uow.ids)
        uow.save(pf)
        return "exit_queued"
    price = market.last_prices([pos.symbol], day).get(pos.symbol, pos.last_price)
    pf.close_position(cmd.position_id, day, price, at, reason="manual", quantity=cmd.quantity, ids=uow.ids)
    uow.save(pf)
    return "closed" if pos.status == PositionStatus.CLOSED else "reduced"
