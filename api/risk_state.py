"""Today's risk picture of an account or one portfolio, read from the read models: the risk API's `/state`
and the portfolio dashboard both show it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from domain.market_hours import IST
from infra.bootstrap import Platform
from projections.portfolios.queries import list_portfolios, list_positions
from projections.risk import list_risk_rules, orders_on, risk_breaches

__all__ = ["risk_state"]


def risk_state(platform: Platform, account_id: int, portfolio_id: int | None = None) -> dict[str, Any]:
    """Today's P&L against the loss limits, exposure, positions, orders, sectors, breaches, kill switch;
    for the account, or narrowed to one portfolio (the dashboard)."""
    market_day = platform.bus.deps.market.latest_day()
    today = datetime.now(UTC).astimezone(IST).date().isoformat()
    with platform.db.read() as conn:
        pfs, _ = list_portfolios(conn, account_id, None, 500, 0)
        if portfolio_id is not None:
            pfs = [p for p in pfs if int(p["id"]) == portfolio_id]
        ids = {int(p["id"]) for p in pfs}
        open_rows, _ = list_positions(conn, account_id, None, "open", 100_000, 0)
        closed_rows, _ = list_positions(conn, account_id, None, "closed", 100_000, 0)
        all_rules = list_risk_rules(conn, account_id)
        breaches = risk_breaches(conn, account_id, None, 20)
        orders = orders_on(conn, account_id, today)
    open_rows = [p for p in open_rows if int(p["portfolio_id"]) in ids]
    capital = sum(float(p["capital"]) for p in pfs)
    day_pnl = round(sum(float(p["day_pnl"] or 0) for p in pfs), 2)
    realized_today = round(sum(float(p["realized_pnl"] or 0) for p in closed_rows
                               if int(p["portfolio_id"]) in ids and p["exit_date"] == market_day), 2)
    gross = round(sum(float(p["quantity"]) * float(p["last_price"]) for p in open_rows), 2)
    sectors: dict[str, dict[str, float]] = {}
    for p in open_rows:
        entry = sectors.setdefault(str(p["sector"]), {"positions": 0, "value": 0.0})
        entry["positions"] += 1
        entry["value"] = round(entry["value"] + float(p["quantity"]) * float(p["last_price"]), 2)
    rules_here = [r for r in all_rules if r["portfolio_id"] is None or portfolio_id is None
                  or r["portfolio_id"] == portfolio_id]
    loss_limits = []
    for r in rules_here:
        if r["rule_type"] != "max_daily_loss":
            continue
        scope_ids = ids if r["portfolio_id"] is None else {int(r["portfolio_id"])}
        scope_capital = sum(float(p["capital"]) for p in pfs if int(p["id"]) in scope_ids)
        loss = -sum(float(p["day_pnl"] or 0) for p in pfs if int(p["id"]) in scope_ids)
        limit = float(r["value"]) if r["unit"] == "inr" else scope_capital * float(r["value"]) / 100.0
        loss_limits.append({"rule_id": r["id"], "scope": r["scope"], "portfolio_id": r["portfolio_id"],
                            "limit": round(limit, 2), "loss": round(max(loss, 0.0), 2),
                            "used_pct": round(max(loss, 0.0) / limit * 100.0, 2) if limit else None})
    switches = [r for r in rules_here if r["rule_type"] == "kill_switch"]
    return {
        "day": market_day,
        "capital": round(capital, 2),
        "day_pnl": day_pnl,
        "realized_pnl_today": realized_today,
        "unrealized_pnl_today": round(day_pnl - realized_today, 2),
        "loss_limits": loss_limits,
        "gross_exposure": gross,
        "exposure_pct": round(gross / capital * 100.0, 2) if capital else 0.0,
        "open_positions": len(open_rows),
        "orders_today": orders,
        "sectors": sectors,
        "breaches": [b for b in breaches if portfolio_id is None or b["portfolio_id"] in (None, portfolio_id)],
        "kill_switch": {"engaged": bool(switches), "rules": switches},
        "rules": rules_here,
    }
