"""A self-contained HTML report of one backtest: summary, equity and drawdown charts (inline SVG), monthly
returns and the trade list. No scripts, no external assets: the file opens anywhere, offline."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape
from typing import Any

__all__ = ["SUMMARY_ROWS", "render_html"]

# (key, label, unit) in the order a reader scans them
SUMMARY_ROWS: tuple[tuple[str, str, str], ...] = (
    ("total_return", "Total return", "%"), ("cagr", "CAGR", "%"), ("final_equity", "Final equity", "INR"),
    ("max_drawdown", "Max drawdown", "%"), ("max_drawdown_days", "Max drawdown days", ""),
    ("volatility", "Volatility (annual)", "%"), ("sharpe", "Sharpe", ""), ("sortino", "Sortino", ""),
    ("calmar", "Calmar", ""), ("total_trades", "Trades", ""), ("win_rate", "Win rate", "%"),
    ("profit_factor", "Profit factor", ""), ("expectancy", "Expectancy", "INR"), ("avg_win", "Average win", "INR"),
    ("avg_loss", "Average loss", "INR"), ("best_trade", "Best trade", "%"), ("worst_trade", "Worst trade", "%"),
    ("max_consecutive_wins", "Most wins in a row", ""), ("max_consecutive_losses", "Most losses in a row", ""),
    ("avg_holding_days", "Average holding days", ""), ("exposure_pct", "Exposure", "%"),
    ("total_charges", "Charges", "INR"), ("benchmark_return", "Benchmark return", "%"), ("alpha", "Alpha", "%"),
    ("beta", "Beta", ""),
)

_W, _H, _PAD = 960, 260, 48


def fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if unit == "INR":
        return f"₹{value:,.2f}"
    if unit == "%":
        return f"{value:,.2f} %"
    return f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"


def _polyline(values: Sequence[float], lo: float, hi: float, colour: str) -> str:
    n = len(values)
    span = (hi - lo) or 1.0
    step = (_W - 2 * _PAD) / max(n - 1, 1)
    points = " ".join(
        f"{_PAD + i * step:.1f},{_H - _PAD - (v - lo) / span * (_H - 2 * _PAD):.1f}" for i, v in enumerate(values)
    )
    return f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{points}"/>'


def _chart(title: str, dates: Sequence[str], series: Sequence[tuple[str, Sequence[float], str]], unit: str) -> str:
    usable = [(name, vals, colour) for name, vals, colour in series if vals]
    if not dates or not usable:
        return f"<h2>{escape(title)}</h2><p>No data.</p>"
    lo = min(min(v) for _, v, _ in usable)
    hi = max(max(v) for _, v, _ in usable)
    lines = "".join(_polyline(v, lo, hi, c) for _, v, c in usable)
    legend = " ".join(f'<span style="color:{c}">■ {escape(n)}</span>' for n, _, c in usable)
    axis = (
        f'<text x="{_PAD}" y="{_H - 18}" font-size="12">{escape(dates[0])}</text>'
        f'<text x="{_W - _PAD}" y="{_H - 18}" font-size="12" text-anchor="end">{escape(dates[-1])}</text>'
        f'<text x="4" y="{_PAD}" font-size="12">{escape(fmt(hi, unit))}</text>'
        f'<text x="4" y="{_H - _PAD}" font-size="12">{escape(fmt(lo, unit))}</text>'
        f'<line x1="{_PAD}" y1="{_H - _PAD}" x2="{_W - _PAD}" y2="{_H - _PAD}" stroke="#ccc"/>'
    )
    return (f"<h2>{escape(title)}</h2><div>{legend}</div>"
            f'<svg role="img" aria-label="{escape(title)}" viewBox="0 0 {_W} {_H}" width="100%">{axis}{lines}</svg>')


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(result: dict[str, Any], title: str, params: dict[str, Any]) -> str:
    """The report for `result` (the engine's `to_dict()` shape); `params` are shown as the run's inputs."""
    curve = result.get("equity_curve") or []
    dates = [str(p["date"]) for p in curve]
    equity = [float(p["equity"]) for p in curve]
    drawdown = [-abs(float(p.get("drawdown_pct") or 0.0)) for p in curve]
    series: list[tuple[str, Sequence[float], str]] = [("Strategy equity", equity, "#1f6feb")]
    summary = result.get("summary") or {}
    summary_rows = [(label, fmt(summary.get(key), unit)) for key, label, unit in SUMMARY_ROWS if key in summary]
    monthly = result.get("monthly_returns") or {}
    trades = result.get("trades") or []
    trade_rows = [
        (str(t["symbol"]), str(t["entry_date"]), fmt(t["entry_price"]), str(t["exit_date"]), fmt(t["exit_price"]),
         str(t["quantity"]), fmt(t["pnl"], "INR"), fmt(t["pnl_pct"], "%"), str(t["exit_reason"]),
         str(t["holding_days"]))
        for t in trades
    ]
    diag = result.get("diagnostics") or {}
    inputs = [(k, str(v)) for k, v in params.items() if v is not None]
    style = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:1000px}table{border-collapse:collapse;"
             "margin:1em 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}th{background:#f4f4f4}"
             "td:first-child{text-align:left}")
    parts = [
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(title)}</title>"
        f"<style>{style}</style></head><body><h1>{escape(title)}</h1>",
        f"<p>Generated {escape(datetime.now().strftime('%Y-%m-%d %H:%M'))} by tradertape backtest run.</p>",
        "<h2>Inputs</h2>", _table(("parameter", "value"), inputs),
        "<h2>Summary</h2>", _table(("metric", "value"), summary_rows),
        _chart("Equity", dates, series, "INR"),
        _chart("Drawdown", dates, [("Drawdown %", drawdown, "#d73a49")], "%"),
        "<h2>Monthly returns</h2>", _table(("month", "return"), [(k, fmt(v, "%")) for k, v in monthly.items()]),
        f"<h2>Trades ({len(trades)})</h2>",
        _table(("symbol", "entry", "price", "exit", "price", "qty", "P&L", "P&L %", "reason", "days"), trade_rows),
        "<h2>Diagnostics</h2>", _table(("counter", "value"), [(k, str(v)) for k, v in diag.items()]),
        "</body></html>",
    ]
    return "".join(parts)
