"""Queries over an account's analytics snapshot (`infra.analytics.store`): realized P&L by group, the trade
journal, holdings marked at real prices, the summary with XIRR, unmatched sells, and the cash flows the
family view's XIRR needs. Each takes an open DuckDB connection over the snapshot's tables."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

import duckdb

from domain.xirr import xirr_detail
from infra.analytics.store import IMPORTED, rows

Marks = Callable[[Sequence[str]], dict[str, tuple[float, str]]]  # symbol -> (price, date) from market data


def _filters(source: str | None, start: date | None, end: date | None, col: str) -> tuple[str, list[Any]]:
    where: list[str] = ["TRUE"]
    params: list[Any] = []
    if source and source != "all":
        where.append("source = ?")
        params.append(IMPORTED if source == "broker" else source)
    if start:
        where.append(f"{col} >= ?")
        params.append(start)
    if end:
        where.append(f"{col} <= ?")
        params.append(end)
    return " AND ".join(where), params


# group_by -> (the grouping expression over pnl_daily, the label made of it as `g`): months and years are
# grouped as dates and numbers and formatted once per group, not once per row
GROUPS = {"symbol": ("symbol", "g"), "month": ("date_trunc('month', sell_date)", "strftime(g, '%Y-%m')"),
          "year": ("year(sell_date)", "CAST(g AS VARCHAR)"),
          "strategy": ("strategy", "g")}  # pnl_daily's strategy is 'imported' for imported trades


def pnl(con: duckdb.DuckDBPyConnection, group_by: str, source: str | None, start: date | None,
        end: date | None) -> list[dict[str, Any]]:
    """Realized P&L per group, from the per-day totals (`pnl_daily`: a sell is one day's, one symbol's, one
    strategy's), so a million trades cost no more here than the days and symbols they span."""
    where, params = _filters(source, start, end, "sell_date")
    group, label = GROUPS[group_by]
    sql = f"""
        SELECT {label} AS k, trades, quantity, round(buy_value, 2) AS buy_value, round(sell_value, 2) AS sell_value,
               round(gross, 2) AS realized_pnl, round(charges, 2) AS charges, round(net, 2) AS net_pnl, wins, losses
        FROM (SELECT {group} AS g, sum(trades) AS trades, sum(quantity) AS quantity, sum(buy_value) AS buy_value,
                     sum(sell_value) AS sell_value, sum(gross_pnl) AS gross, sum(charges) AS charges,
                     sum(net_pnl) AS net, sum(wins) AS wins, sum(losses) AS losses
              FROM pnl_daily WHERE {where} GROUP BY g)
        ORDER BY k"""
    out = []
    for r in rows(con, sql, params):
        k = r.pop("k")
        r["trades"], r["wins"], r["losses"] = int(r["trades"]), int(r["wins"]), int(r["losses"])
        r["win_rate"] = round(100.0 * r["wins"] / r["trades"], 2) if r["trades"] else None
        out.append({group_by: k, **r})
    return out


def journal(con: duckdb.DuckDBPyConnection, *, source: str | None, symbol: str | None, side: str | None,  # noqa: PLR0913
            strategy: str | None, start: date | None, end: date | None, limit: int,
            offset: int) -> tuple[list[dict[str, Any]], int]:
    where, params = _filters(source, start, end, "t.trade_date")
    if symbol:
        where += " AND t.symbol = ?"
        params.append(symbol.upper())
    if side:
        where += " AND t.side = ?"
        params.append(side)
    if strategy:
        where += " AND coalesce(t.strategy, 'imported') = ?"
        params.append(strategy)
    total = con.execute(f"SELECT count(*) FROM trades t WHERE {where}", params).fetchone()
    # the page first, then the realized P&L of only its sells (not every sell's, then the page)
    sql = f"""
        WITH page AS (
            SELECT t.source, t.portfolio_id, t.strategy, t.exchange, t.symbol, t.isin, t.trade_date, t.executed_at,
                   t.side, t.quantity, t.price, t.value, t.charges, t.trade_id, t.order_id, t.trade_key
            FROM trades t WHERE {where}
            ORDER BY t.trade_date DESC, t.executed_at DESC, t.trade_id DESC
            LIMIT ? OFFSET ?),
        r AS (
            SELECT sell_key, round(sum(gross_pnl), 2) AS gross, round(sum(net_pnl), 2) AS net,
                   max(holding_days) AS holding_days
            FROM realized WHERE sell_key IN (SELECT trade_key FROM page) GROUP BY sell_key)
        SELECT p.source, p.portfolio_id, p.strategy, p.exchange, p.symbol, p.isin, p.trade_date, p.executed_at,
               p.side, p.quantity, p.price, p.value, p.charges, p.trade_id, p.order_id,
               r.gross AS realized_pnl, r.net AS net_pnl, r.holding_days
        FROM page p LEFT JOIN r ON r.sell_key = p.trade_key
        ORDER BY p.trade_date DESC, p.executed_at DESC, p.trade_id DESC"""
    out = rows(con, sql, [*params, limit, offset])
    for r in out:
        r["trade_date"] = r["trade_date"].isoformat()
    return out, int(total[0]) if total else 0


def _marks(con: duckdb.DuckDBPyConnection, market: Marks | None) -> dict[str, tuple[float, str, str]]:
    """symbol -> (price, date, source): the latest of REAL prices only -- imported market bars
    (``imported_bars``; the synthetic demo history is never offered), the broker's demat statement
    (``demat_statement``), the account's own last trade (``last_trade``). A statement's or a trade's price
    is adjusted by every split and bonus whose ex-date is after it (10 @ 1,000 before a 2:1 split is marked
    at 500, not 1,000)."""
    best: dict[str, tuple[float, str, str]] = {}
    factors: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for r in rows(con, "SELECT symbol, ex_date, price_factor FROM actions ORDER BY ex_date"):
        factors[r["symbol"]].append((r["ex_date"].isoformat(), float(r["price_factor"])))

    def adjusted(sym: str, price: float, day: str) -> float:
        for ex, f in factors.get(sym, ()):
            if ex > day and f > 0:
                price /= f
        return price

    def offer(sym: str, price: Any, day: Any, src: str) -> None:
        if price is None or not sym:
            return
        d = str(day)[:10]
        cur = best.get(sym)
        if cur is None or d > cur[1]:
            p = float(price) if src == "imported_bars" else adjusted(sym, float(price), d)
            best[sym] = (round(p, 4), d, src)

    for r in rows(con, """SELECT symbol, arg_max(price, trade_date || executed_at) AS price, max(trade_date) AS d
                          FROM trades WHERE source = 'imported' GROUP BY symbol"""):
        offer(r["symbol"], r["price"], r["d"], "last_trade")
    for r in rows(con, "SELECT symbol, price, date FROM demat_holdings WHERE symbol <> ''"):
        offer(r["symbol"], r["price"], r["date"], "demat_statement")
    symbols = [r[0] for r in con.execute("SELECT DISTINCT symbol FROM lots").fetchall()]
    if market is not None and symbols:
        for sym, (price, day) in market(symbols).items():
            offer(sym, price, day, "imported_bars")
    return best


def holdings(con: duckdb.DuckDBPyConnection, market: Marks | None) -> list[dict[str, Any]]:
    marks = _marks(con, market)
    lots = rows(con, "SELECT symbol, isin, exchange, buy_date, quantity, price, cost FROM lots "
                     "ORDER BY symbol, buy_date, buy_key")
    by_symbol: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for lot in lots:
        by_symbol[lot["symbol"]].append(lot)
    out: list[dict[str, Any]] = []
    for sym, ls in by_symbol.items():
        qty = sum(x["quantity"] for x in ls)
        invested = round(sum(x["quantity"] * x["price"] for x in ls), 2)
        mark = marks.get(sym)
        price = mark[0] if mark else None
        value = round(qty * price, 2) if price is not None else None
        as_of = date.fromisoformat(mark[1]) if mark else None
        out.append({
            "asset_class": "equity", "symbol": sym, "exchange": ls[0]["exchange"], "isin": ls[0]["isin"],
            "quantity": qty, "avg_cost": round(invested / qty, 4) if qty else 0.0, "invested": invested,
            "last_price": price, "mark_date": mark[1] if mark else None, "mark_source": mark[2] if mark else None,
            "marked": mark is not None,  # False: no real price for it (never a synthetic one); not in the totals
            "current_value": value, "unrealized_pnl": round(value - invested, 2) if value is not None else None,
            "unrealized_pct": round(100 * (value - invested) / invested, 2) if value is not None and invested else None,
            "lots": [{"buy_date": x["buy_date"].isoformat(), "quantity": x["quantity"], "price": x["price"],
                      "holding_days": (as_of - x["buy_date"]).days if as_of else None} for x in ls],
        })
    for r in rows(con, "SELECT folio, amc, scheme, isin, date, units, nav, cost, value FROM mf_holdings "
                       "WHERE coalesce(units, 0) > 0 ORDER BY scheme, folio"):
        value, cost = r["value"], r["cost"]
        out.append({"asset_class": "mutual_fund", "symbol": r["scheme"], "isin": r["isin"], "folio": r["folio"],
                    "amc": r["amc"], "quantity": r["units"], "avg_cost": round(cost / r["units"], 4)
                    if cost is not None and r["units"] else None, "invested": cost, "last_price": r["nav"],
                    "mark_date": r["date"].isoformat() if r["date"] else None, "mark_source": "cas_valuation",
                    "marked": value is not None, "current_value": value,
                    "unrealized_pnl": round(value - cost, 2) if value is not None and cost is not None else None,
                    "unrealized_pct": round(100 * (value - cost) / cost, 2) if value is not None and cost else None,
                    "lots": []})
    return out


def _r2(x: float) -> float:
    return round(x + 0.0, 2)


def summary(con: duckdb.DuckDBPyConnection, market: Marks | None, source: str = IMPORTED) -> dict[str, Any]:
    """Totals. Realized P&L, charges, closed trades, win rate and holding period follow `source` (the same
    filter and default, ``imported`` = the broker account, as every analytics read); holdings, invested,
    current value, unrealized P&L and XIRR are the broker account's (imported tradebook, ledger and CAS):
    model portfolios are not money the broker holds and have their own dashboards."""
    held = holdings(con, market)
    eq = [h for h in held if h["asset_class"] == "equity"]
    mf = [h for h in held if h["asset_class"] == "mutual_fund"]
    where, params = _filters(source, None, None, "sell_date")
    r = rows(con, f"""SELECT coalesce(sum(gross_pnl), 0) AS realized, coalesce(sum(net_pnl), 0) AS net,
                             coalesce(sum(quantity * holding_days), 0) AS qd, coalesce(sum(quantity), 0) AS q
                      FROM realized WHERE {where}""", params)[0]
    sells = rows(con, f"""SELECT coalesce(sum(trades), 0) AS n, coalesce(sum(wins), 0) AS wins FROM pnl_daily
                          WHERE {where}""", params)[0]
    twhere, tparams = _filters(source, None, None, "trade_date")
    charges = con.execute(f"SELECT coalesce(sum(charges), 0), count(*) FROM trades WHERE {twhere}", tparams
                          ).fetchone() or (0.0, 0)
    ledger_charges = con.execute("SELECT coalesce(sum(debit - credit), 0) FROM ledger "
                                 "WHERE category IN ('charges', 'dp_charges')").fetchone() or (0.0,)
    oversold = unmatched_sells(con)

    def part(hs: list[dict[str, Any]]) -> dict[str, Any]:
        known = [h for h in hs if h["current_value"] is not None and h["invested"] is not None]
        unmarked = [h["symbol"] for h in hs if h["current_value"] is None]
        inv = _r2(sum(h["invested"] or 0 for h in hs))
        cur = _r2(sum(h["current_value"] for h in known))
        return {"invested": inv, "current_value": cur,
                "unrealized_pnl": _r2(sum(h["current_value"] - h["invested"] for h in known)), "holdings": len(hs),
                "unmarked": unmarked}

    equity, funds = part(eq), part(mf)
    flows, as_of = cash_flows(con, held)
    detail = xirr_detail(flows)
    rate = detail.rate
    return {
        "invested": _r2(equity["invested"] + funds["invested"]),
        "current_value": _r2(equity["current_value"] + funds["current_value"]),
        "realized_pnl": _r2(float(r["realized"])),
        "unrealized_pnl": _r2(equity["unrealized_pnl"] + funds["unrealized_pnl"]),
        "charges": _r2(float(charges[0])),
        "net_realized_pnl": _r2(float(r["net"])),
        "ledger_charges": _r2(float(ledger_charges[0])),
        "xirr": round(rate * 100, 2) if rate is not None else None,
        "xirr_as_of": as_of,
        "xirr_reason": detail.reason,  # why there is no rate (no_flows, one_sign, no_root), else None
        "win_rate": round(100.0 * sells["wins"] / sells["n"], 2) if sells["n"] else None,
        "closed_trades": int(sells["n"]),
        "trades": int(charges[1]),
        "avg_holding_days": round(float(r["qd"]) / float(r["q"]), 1) if r["q"] else None,
        "equity": equity,
        "mutual_funds": funds,
        "source": source,
        "unmatched_sells": oversold,
    }


def unmatched_sells(con: duckdb.DuckDBPyConnection, limit: int = 100) -> dict[str, Any]:
    """Imported sells FIFO could not match (more sold than held: a short sell, or buys missing from the
    imported history): they make no P&L, and are reported instead of dropped."""
    total = con.execute("SELECT count(*), coalesce(sum(quantity), 0) FROM unmatched").fetchone() or (0, 0.0)
    listed = rows(con, """SELECT symbol, trade_id, sell_date, quantity FROM unmatched
                          ORDER BY sell_date, symbol, trade_id LIMIT ?""", [limit])
    for x in listed:
        x["sell_date"] = x["sell_date"].isoformat()
    return {"count": int(total[0]), "quantity": float(total[1]), "sells": listed}


def cash_flows(con: duckdb.DuckDBPyConnection, held: list[dict[str, Any]]) -> tuple[list[tuple[str, float]],
                                                                                   str | None]:
    """Dated cash flows for XIRR (money in negative) and the valuation date.

    Equity: the ledger's funds added and withdrawn, valued at the end by the open holdings plus the
    ledger's last cash balance; without a ledger, the trades themselves (buys and charges out, sells in).
    Mutual funds: purchases out, redemptions and dividend payouts in, valued by the latest statement."""
    flows: list[tuple[str, float]] = []
    dates: list[str] = [h["mark_date"] for h in held if h.get("mark_date")]
    ledger = rows(con, "SELECT posting_date, debit, credit, balance, category FROM ledger ORDER BY posting_date")
    eq_value = sum(h["current_value"] or 0 for h in held if h["asset_class"] == "equity")
    if ledger:
        for e in ledger:
            d = e["posting_date"].isoformat()
            if e["category"] == "funds_added":
                flows.append((d, -(e["credit"] - e["debit"])))
            elif e["category"] == "funds_withdrawn":
                flows.append((d, e["debit"] - e["credit"]))
        dates.append(ledger[-1]["posting_date"].isoformat())
        cash = next((e["balance"] for e in reversed(ledger) if e["balance"] is not None), 0.0) or 0.0
        terminal_eq = eq_value + cash
    else:
        # one flow per day (the day's trades summed: the same NPV, and 100,000 trades are ~1,000 flows)
        for t in rows(con, """SELECT trade_date, sum(CASE WHEN side = 'buy' THEN -(value + charges)
                                                         ELSE value - charges END) AS flow
                              FROM trades WHERE source = 'imported' GROUP BY trade_date ORDER BY trade_date"""):
            d = t["trade_date"].isoformat()
            flows.append((d, float(t["flow"])))
            dates.append(d)
        terminal_eq = eq_value
    for t in rows(con, "SELECT date, amount, units, type FROM mf_transactions WHERE amount IS NOT NULL"):
        d, amt, typ = t["date"].isoformat(), float(t["amount"]), str(t["type"])
        if typ in ("PURCHASE", "PURCHASE_SIP"):
            flows.append((d, -abs(amt)))
        elif typ in ("REDEMPTION", "DIVIDEND_PAYOUT"):
            flows.append((d, abs(amt)))
        dates.append(d)
    mf_value = sum(h["current_value"] or 0 for h in held if h["asset_class"] == "mutual_fund")
    if not flows or not dates:
        return [], None
    as_of = max(dates)
    if terminal_eq + mf_value:
        flows.append((as_of, terminal_eq + mf_value))
    return flows, as_of

