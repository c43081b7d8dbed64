"""The activity timeline's text: one line per Portfolio event (and per RiskBreached naming a portfolio), in
the words a trader reads on the portfolio page. One formatter per event type, each given the event's data,
the symbol it concerns (found by the projector when the event does not name it) and, for an exit, the
position's quantity; an event type without one is shown by its name."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from domain.money import format_inr, format_number

__all__ = ["activity_summary"]

Data = Mapping[str, Any]


def _fmt(x: float | None) -> str:
    """Prices: Indian grouping (14,720.50), no symbol."""
    return "-" if x is None else format_number(x, 2)


def _inr(x: float | None) -> str:
    """Amounts of money: ₹1,30,13,928.67."""
    return format_inr(x, 2)


def _pnl(x: float | None) -> str:
    """P&L, signed: +₹1,200.00, or a minus sign (U+2212) before the ₹ for a loss."""
    return format_inr(x, 2, sign=True)


def _words(code: Any) -> str:
    """A reason code in words (stop_loss -> stop loss); free text is kept."""
    return str(code).replace("_", " ")


def _ref(d: Data) -> str:
    """The broker's reference of an order; a paper portfolio's own GTT ids (paper-gtt-N) mean nothing to a trader."""
    gtt = d.get("gtt_id")
    parts = [f"GTT {gtt}" if gtt and not str(gtt).startswith("paper-") else "",
             f"order {d['order_id']}" if d.get("order_id") else ""]
    return " / ".join(x for x in parts if x)


def _deployed(d: Data, sym: str, held: Any) -> str:
    return f"Portfolio {d['portfolio_id']} deployed: {d['name']!r} ({d['mode']}) with capital {_inr(d['capital'])}"


def _generated(d: Data, sym: str, held: Any) -> str:
    price = d["limit_price"] if d["limit_price"] is not None else d["reference_price"]
    return (f"Signal {d['signal_id']} generated: BUY {d['quantity']} {sym} @ {_fmt(price)} "
            f"(conviction {float(d['conviction']):.1f})")


def _order_placed(d: Data, sym: str, held: Any) -> str:
    how = "at the next open" if d["limit_price"] is None else f"limit {_fmt(d['limit_price'])}"
    ref = _ref(d)
    return f"Order placed for signal {d['signal_id']}: BUY {d['quantity']} {sym} {how}{f' ({ref})' if ref else ''}"


def _stop_updated(d: Data, sym: str, held: Any) -> str:
    kind = "trailing stop" if d["reason"] == "trailing_stop" else "stop"
    return f"Position {d['position_id']} {kind} moved to {_fmt(d['stop_loss'])}: {sym}"


def _exit_signalled(d: Data, sym: str, held: Any) -> str:
    why = f" ({_words(d['reason'])})" if d.get("reason") else ""
    if d.get("replaces") is not None:
        why += f", replacing the protective order of signal {d['replaces']}"
    qty = d.get("quantity") or held
    head = f"Signal {d['signal_id']}: " if d.get("signal_id") is not None else ""
    return f"{head}exit signalled for position {d['position_id']}: SELL {qty} {sym} at the next open{why}"


def _risk_breached(d: Data, sym: str, held: Any) -> str:
    if d["action"] == "daily_loss":
        return f"Risk limit reached: {d['message']}"
    target = f" of signal {d['signal_id']}" if d.get("signal_id") is not None else ""
    return f"Risk rule {d['rule_id']} refused the {d['action']}{target}: {d['message']}"


def _broker_order(d: Data, sym: str, held: Any) -> str:
    ref = _ref(d)
    return f"Signal {d['signal_id']} sent to the broker: {sym}{f' ({ref})' if ref else ''}"


def _opened(d: Data, sym: str, held: Any) -> str:
    stop = f"stop {_fmt(d['stop_loss'])}" if d["stop_loss"] is not None else "no stop"
    target = f"target {_fmt(d['target'])}" if d["target"] is not None else "no target"
    return f"Position {d['position_id']} opened: {d['quantity']} {sym} @ {_fmt(d['entry_price'])}, {stop}, {target}"


_SUMMARIES: dict[str, Callable[[Data, str, Any], str]] = {
    "PortfolioDeployed": _deployed,
    "SignalGenerated": _generated,
    "SignalApproved": lambda d, sym, _: f"Signal {d['signal_id']} approved: {sym} added to the cart",
    "SignalRejected": lambda d, sym, _: f"Signal {d['signal_id']} rejected: {sym} ({_words(d['reason'])})",
    "SignalExpired": lambda d, sym, _: f"Signal {d['signal_id']} expired: {sym} ({_words(d['reason'])})",
    "OrderPlaced": _order_placed,
    "OrderFailed": lambda d, sym, _: f"Order for signal {d['signal_id']} failed: {sym} ({_words(d['reason'])})",
    "EntryExpired": lambda d, sym, _: f"Entry order for signal {d['signal_id']} expired unfilled: {sym}",
    "FillRecorded": lambda d, sym, _: (f"Signal {d['signal_id']} filled: {str(d['side']).upper()} {d['quantity']} "
                                       f"{sym} @ {_fmt(d['price'])}, charges {_inr(d['charges'])}"),
    "PositionOpened": _opened,
    "StopUpdated": _stop_updated,
    "ExitSignalled": _exit_signalled,
    "PositionClosed": lambda d, sym, _: (f"Position {d['position_id']} closed: {sym} at {_fmt(d['exit_price'])} "
                                         f"({_words(d['exit_reason'])}), P&L {_pnl(d['realized_pnl'])}"),
    "PositionReduced": lambda d, sym, _: (f"Position {d['position_id']} reduced: sold {d['quantity']} {sym} at "
                                          f"{_fmt(d['exit_price'])} ({_words(d['exit_reason'])}), P&L "
                                          f"{_pnl(d['realized_pnl'])}; the sold shares are closed position "
                                          f"{d['lot_id']}"),
    "ExitOrderCancelled": lambda d, sym, _: (f"Exit order for signal {d['signal_id']} cancelled at the broker: {sym} "
                                             f"({_words(d['reason'])}); a manual close replaced it"),
    "PortfolioPaused": lambda d, sym, _: "Portfolio paused: no new entries (exits still managed)",
    "PortfolioResumed": lambda d, sym, _: "Portfolio resumed",
    "PortfolioRetired": lambda d, sym, _: "Portfolio retired",
    "PortfolioReset": lambda d, sym, _: (f"Portfolio reset to its capital {_inr(d['capital'])}: positions and live "
                                         "signals cleared"),
    "RiskBreached": _risk_breached,
    "BrokerOrderRecorded": _broker_order,
    "ExitOrderFailed": lambda d, sym, _: (f"Exit order for signal {d['signal_id']} failed: {sym} "
                                          f"({_words(d['reason'])}); the position stays open"),
    "DayClosed": lambda d, sym, _: f"Day {d['day']} closed: equity {_inr(d['equity'])}, cash {_inr(d['cash'])}",
}


def activity_summary(event_type: str, data: Data, symbol: str, held: Any = "") -> str:
    """The line for one event; `held`: the position's quantity, where an exit does not name its own."""
    summarize = _SUMMARIES.get(event_type)
    return event_type if summarize is None else summarize(data, symbol, held)
