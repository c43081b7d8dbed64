"""A self-contained HTML report of one backtest: summary, equity (with the benchmark) and drawdown charts
(inline SVG with labelled axes), a year-by-month returns grid and the trade list, money in Indian grouping.
No scripts, no external assets: the file opens anywhere, offline."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape
from typing import Any

from domain.market_hours import IST
from domain.money import MISSING, format_inr, format_number

__all__ = ["SUMMARY_ROWS", "TRADE_COLUMNS", "benchmark_equity", "fmt", "monthly_grid", "render_html"]

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

_W, _H = 960, 300
_LEFT, _RIGHT, _TOP, _BOTTOM = 110, 20, 16, 56  # room for the y tick labels and the axis titles
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
TRADE_COLUMNS = ("symbol", "entry date", "entry price", "exit date", "exit price", "quantity", "P&L",
                 "P&L %", "exit reason", "days held")


def fmt(value: Any, unit: str = "") -> str:
    """A value for people: money as ₹ with Indian grouping (₹1,30,13,928.67; negatives with a minus sign), percents with
    two places, counts whole."""
    if value is None:
        return MISSING
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if unit == "INR":
        return format_inr(value)
    if unit == "%":
        return f"{format_number(value, 2)} %"
    return format_number(value, 0) if isinstance(value, int) else format_number(value, 2)


def _x(i: int, n: int) -> float:
    return _LEFT + i * (_W - _LEFT - _RIGHT) / max(n - 1, 1)


def _y(v: float, lo: float, hi: float) -> float:
    return _H - _BOTTOM - (v - lo) / ((hi - lo) or 1.0) * (_H - _TOP - _BOTTOM)


def _polyline(values: Sequence[float], lo: float, hi: float, colour: str, dashed: bool = False) -> str:
    n = len(values)
    points = " ".join(f"{_x(i, n):.1f},{_y(v, lo, hi):.1f}" for i, v in enumerate(values))
    dash = ' stroke-dasharray="5 3"' if dashed else ""
    return f'<polyline fill="none" stroke="{colour}" stroke-width="1.5"{dash} points="{points}"/>'


def _axes(dates: Sequence[str], lo: float, hi: float, unit: str, y_title: str) -> str:
    """Gridlines with tick labels on both axes and the axis titles."""
    out = []
    for k in range(5):  # y: five ticks from the lowest to the highest value
        v = lo + (hi - lo) * k / 4
        y = _y(v, lo, hi)
        out.append(f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{_W - _RIGHT}" y2="{y:.1f}" stroke="#e6e6e6"/>'
                   f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">'
                   f"{escape(fmt(v, unit))}</text>")
    n = len(dates)
    for i in sorted({round(k * (n - 1) / 4) for k in range(5)}):  # x: five dates across the window
        x = _x(i, n)
        out.append(f'<line x1="{x:.1f}" y1="{_H - _BOTTOM}" x2="{x:.1f}" y2="{_H - _BOTTOM + 4}" stroke="#888"/>'
                   f'<text x="{x:.1f}" y="{_H - _BOTTOM + 17}" font-size="11" text-anchor="middle">'
                   f"{escape(dates[i])}</text>")
    out.append(f'<line x1="{_LEFT}" y1="{_H - _BOTTOM}" x2="{_W - _RIGHT}" y2="{_H - _BOTTOM}" stroke="#888"/>'
               f'<line x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{_H - _BOTTOM}" stroke="#888"/>'
               f'<text class="axis-title" x="{(_LEFT + _W - _RIGHT) / 2:.0f}" y="{_H - 8}" font-size="12" '
               f'text-anchor="middle">Date</text>'
               f'<text class="axis-title" x="14" y="{(_TOP + _H - _BOTTOM) / 2:.0f}" font-size="12" '
               f'text-anchor="middle" transform="rotate(-90 14 {(_TOP + _H - _BOTTOM) / 2:.0f})">'
               f"{escape(y_title)}</text>")
    return "".join(out)


def _chart(title: str, dates: Sequence[str], series: Sequence[tuple[str, Sequence[float], str]], unit: str,
           y_title: str) -> str:
    usable = [(name, vals, colour) for name, vals, colour in series if vals]
    if not dates or not usable:
        return f"<h2>{escape(title)}</h2><p>No data.</p>"
    lo = min(min(v) for _, v, _ in usable)
    hi = max(max(v) for _, v, _ in usable)
    lines = "".join(_polyline(v, lo, hi, c, dashed=k > 0) for k, (_, v, c) in enumerate(usable))
    legend = " ".join(f'<span style="color:{c}">{"■" if k == 0 else "▬"} {escape(n)}</span>'
                      for k, (n, _, c) in enumerate(usable))
    return (f"<h2>{escape(title)}</h2><div>{legend}</div>"
            f'<svg role="img" aria-label="{escape(title)}" viewBox="0 0 {_W} {_H}" width="100%">'
            f"<title>{escape(title)}: {escape(y_title)} by date</title>"
            f"{_axes(dates, lo, hi, unit, y_title)}{lines}</svg>")


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], caption: str = "") -> str:
    cap = f"<caption>{escape(caption)}</caption>" if caption else ""
    head = "".join(f'<th scope="col">{escape(h)}</th>' for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def benchmark_equity(dates: Sequence[str], closes: Mapping[str, float], capital: float) -> list[float]:
    """The benchmark as equity: `capital` invested at the first close of the window, carried over days
    without a close (a gap in the index history); [] when no close falls in the window."""
    first = next((closes[d] for d in dates if closes.get(d)), None)
    if not first:
        return []
    out, last = [], first
    for d in dates:
        last = closes.get(d) or last
        out.append(capital * last / first)
    return out


def monthly_grid(monthly: Mapping[str, float]) -> tuple[list[str], list[list[str]]]:
    """Year-by-month returns: a row per year, Jan..Dec and the year's compounded return; blank where the
    run has no such month."""
    years: dict[str, dict[int, float]] = {}
    for key, value in monthly.items():
        year, month = key[:4], int(key[5:7])
        years.setdefault(year, {})[month] = float(value)
    rows = []
    for year in sorted(years):
        months = years[year]
        total = 1.0
        for v in months.values():
            total *= 1 + v / 100
        rows.append([year, *(fmt(months[m], "%") if m in months else "" for m in range(1, 13)),
                     fmt((total - 1) * 100, "%")])
    return ["year", *_MONTHS, "year total"], rows


def render_html(result: dict[str, Any], title: str, params: dict[str, Any],
                benchmark_closes: Mapping[str, float] | None = None) -> str:
    """The report for `result` (the engine's `to_dict()` shape); `params` are shown as the run's inputs;
    `benchmark_closes` (ISO date -> close of the benchmark index) adds its line to the equity chart."""
    curve = result.get("equity_curve") or []
    dates = [str(p["date"]) for p in curve]
    equity = [float(p["equity"]) for p in curve]
    drawdown = [-abs(float(p.get("drawdown_pct") or 0.0)) for p in curve]
    series: list[tuple[str, Sequence[float], str]] = [("Strategy equity", equity, "#1f6feb")]
    capital = params.get("starting_capital") or (equity[0] if equity else 0.0)
    if benchmark_closes and dates:
        bench = benchmark_equity(dates, benchmark_closes, float(capital))
        name = params.get("benchmark") or "benchmark"
        series.append((f"Benchmark {name} (same capital invested at the start)", bench, "#6a737d"))
    summary = result.get("summary") or {}
    summary_rows = [(label, fmt(summary.get(key), unit)) for key, label, unit in SUMMARY_ROWS if key in summary]
    monthly = result.get("monthly_returns") or {}
    grid_head, grid_rows = monthly_grid(monthly)
    trades = result.get("trades") or []
    trade_rows = [
        (str(t["symbol"]), str(t["entry_date"]), fmt(t["entry_price"]), str(t["exit_date"]), fmt(t["exit_price"]),
         fmt(t["quantity"]), fmt(t["pnl"], "INR"), fmt(t["pnl_pct"], "%"), str(t["exit_reason"]),
         str(t["holding_days"]))
        for t in trades
    ]
    diag = result.get("diagnostics") or {}
    inputs = [(k, fmt(v, "INR") if k == "starting_capital" else str(v)) for k, v in params.items() if v is not None]
    style = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:1000px}table{border-collapse:collapse;"
             "margin:1em 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}th{background:#f4f4f4}"
             "td:first-child{text-align:left}caption{text-align:left;color:#555;padding:2px 0}")
    parts = [
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(title)}</title>"
        f"<style>{style}</style></head><body><h1>{escape(title)}</h1>",
        f"<p>Generated {escape(datetime.now(IST).strftime('%Y-%m-%d %H:%M'))} IST by tradertape backtest run.</p>",
        "<h2>Inputs</h2>", _table(("parameter", "value"), inputs),
        "<h2>Summary</h2>", _table(("metric", "value"), summary_rows),
        _chart("Equity", dates, series, "INR", "Equity (₹)"),
        _chart("Drawdown", dates, [("Drawdown %", drawdown, "#d73a49")], "%", "Drawdown from the peak (%)"),
        "<h2>Monthly returns</h2>",
        _table(grid_head, grid_rows, "Each month's return in percent; the year total compounds its months"),
        f"<h2>Trades ({len(trades)})</h2>",
        _table(TRADE_COLUMNS, trade_rows, "Prices and P&L in ₹; P&L is net of charges"),
        "<h2>Diagnostics</h2>", _table(("counter", "value"), [(k, str(v)) for k, v in diag.items()]),
        "</body></html>",
    ]
    return "".join(parts)
