"""A portfolio's dashboard, read from the read models: `GET /api/model/dashboard` answers it, and
`GET /api/overview/portfolios/{id}` with the portfolio's signals (routers do not import each other)."""

from __future__ import annotations

from typing import Any

from api.risk_state import risk_state
from infra.bars.universes import known_isins
from infra.bootstrap import Platform
from projections.joined import reconciliation
from projections.portfolios.queries import activity, equity_curve, list_positions

__all__ = ["live_reconciliation", "portfolio_dashboard"]


def live_reconciliation(platform: Platform, account_id: int, pf: dict[str, Any]) -> dict[str, Any] | None:
    """Live portfolios: drift of this portfolio's positions against the broker's last snapshot."""
    if pf["mode"] != "live":
        return None
    with platform.db.read() as conn:
        return reconciliation(conn, account_id, int(pf["id"]), known_isins())


def portfolio_dashboard(platform: Platform, account_id: int, pf: dict[str, Any]) -> dict[str, Any]:
    """The money, open positions with their last price, waiting signals, the daily equity curve, the latest 50
    activity entries, today's risk state and, for a live portfolio, its drift against the broker, of `pf` (the
    account's portfolio, its read-model row)."""
    portfolio_id = int(pf["id"])
    with platform.db.read() as conn:
        positions, _ = list_positions(conn, account_id, portfolio_id, "open", 500, 0)
        curve = equity_curve(conn, portfolio_id)
        recent = activity(conn, portfolio_id, 50)
    capital, equity = float(pf["capital"]), float(pf["equity"])
    total_pnl = round(equity - capital, 2)
    return {
        "portfolio": pf,
        "capital": capital,
        "cash": pf["cash"],
        "invested": pf["invested"],
        "equity": equity,
        "day_pnl": pf["day_pnl"],
        "total_pnl": total_pnl,
        "realized_pnl": pf["realized_pnl"],
        "unrealized_pnl": round(sum(float(p["unrealized_pnl"] or 0) for p in positions), 2),
        "return_pct": round(total_pnl / capital * 100.0, 4) if capital else 0.0,
        "positions": positions,
        "signals": {"pending_approval": pf["pending_signals"], "in_cart": pf["in_cart_signals"]},
        "equity_curve": curve,
        "activity": recent,
        "risk": risk_state(platform, account_id, portfolio_id),
        "reconciliation": live_reconciliation(platform, account_id, pf),
    }
