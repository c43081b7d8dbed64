"""Reconciliation of live positions against Kite's holdings: matched by ISIN, then symbol (never by
exchange), with T+1 shares held. Rows are those of Zerodha's published holdings mock (kiteconnect-mocks
`holdings.json`): SBIN reported under BSE with 7 shares in T+1, RELIANCE and WIPRO bought yesterday."""

from __future__ import annotations

from typing import Any

from domain.broker import held_quantity, reconcile


def row(symbol: str, exchange: str, isin: str, quantity: int, t1: int, used: int = 0) -> dict[str, Any]:
    return {"tradingsymbol": symbol, "exchange": exchange, "isin": isin, "product": "CNC", "quantity": quantity,
            "t1_quantity": t1, "used_quantity": used, "realised_quantity": quantity, "opening_quantity": quantity + t1}


MOCK = [row("SBIN", "BSE", "INE062A01020", 11, 7), row("RELIANCE", "NSE", "INE002A01018", 0, 2),
        row("WIPRO", "BSE", "INE075A01022", 0, 4), row("BHEL", "BSE", "INE257A01026", 11, 1)]


def test_t1_shares_are_held() -> None:
    assert [held_quantity(h) for h in MOCK] == [18, 2, 4, 12]


def test_bse_reported_holdings_match_nse_positions_without_drift() -> None:
    model = {("NSE", "SBIN"): 18, ("NSE", "RELIANCE"): 2, ("NSE", "WIPRO"): 4, ("NSE", "BHEL"): 12}
    assert reconcile(model, MOCK) == []


def test_a_symbol_kite_spells_differently_matches_by_isin() -> None:
    holdings = [row("L&TFH", "BSE", "INE498L01015", 1, 0)]
    assert reconcile({("NSE", "LTF"): 1}, holdings, isins={"LTF": "INE498L01015"}) == []
    (extra, missing) = reconcile({("NSE", "LTF"): 1}, holdings)  # without the ISIN they are two instruments
    assert (missing.kind, missing.symbol, extra.kind, extra.symbol, extra.exchange) == \
        ("missing", "LTF", "extra", "L&TFH", "BSE")


def test_real_drift_names_the_models_exchange_and_symbol() -> None:
    model = {("NSE", "SBIN"): 20, ("NSE", "RELIANCE"): 2, ("NSE", "WIPRO"): 4, ("NSE", "INFY"): 5}
    drifts = [d.to_dict() for d in reconcile(model, MOCK)]
    assert drifts == [
        {"kind": "extra", "exchange": "BSE", "symbol": "BHEL", "model_quantity": 0, "broker_quantity": 12,
         "difference": 12},
        {"kind": "missing", "exchange": "NSE", "symbol": "INFY", "model_quantity": 5, "broker_quantity": 0,
         "difference": -5},
        {"kind": "quantity", "exchange": "NSE", "symbol": "SBIN", "model_quantity": 20, "broker_quantity": 18,
         "difference": -2},
    ]


def test_todays_trades_count_through_cnc_net_positions() -> None:
    # 5 SBIN sold today from the holdings (Kite: used_quantity 5 and a -5 CNC net position), 3 INFY bought
    holdings = [row("SBIN", "BSE", "INE062A01020", 11, 7, used=5)]
    net = [{"tradingsymbol": "SBIN", "exchange": "NSE", "product": "CNC", "quantity": -5},
           {"tradingsymbol": "INFY", "exchange": "NSE", "product": "CNC", "quantity": 3},
           {"tradingsymbol": "INFY", "exchange": "NSE", "product": "MIS", "quantity": 50}]
    assert reconcile({("NSE", "SBIN"): 13, ("NSE", "INFY"): 3}, holdings, net) == []
