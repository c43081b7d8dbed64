"""Agent payloads are validated models: a Kite holdings/positions snapshot keeps only the typed, checked
fields in its event (Kite's other fields are dropped), and a malformed field is a 422 naming where it
is -- never an event a projection cannot apply."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.test_agent_api import live  # noqa: F401  (the fixture)


def _kite_holding(symbol: str, qty: int) -> dict[str, Any]:
    """A holding as Kite's GET /portfolio/holdings answers it (zerodha/kiteconnect-mocks' fields)."""
    return {"tradingsymbol": symbol, "exchange": "NSE", "instrument_token": 408065, "isin": "INE009A01021",
            "product": "CNC", "price": 0, "quantity": qty, "used_quantity": 0, "t1_quantity": 0,
            "realised_quantity": qty, "authorised_quantity": 0, "authorised_date": "2025-01-17 00:00:00",
            "authorisation": {}, "opening_quantity": qty, "short_quantity": 0, "collateral_quantity": 0,
            "collateral_type": "", "discrepancy": False, "average_price": 1450.5, "last_price": 1460.0,
            "close_price": 1455.0, "pnl": 95.0, "day_change": 5.0, "day_change_percentage": 0.34,
            "mtf": {"quantity": 0, "used_quantity": 0, "average_price": 0, "value": 0, "initial_margin": 0}}


def _events(api: Any, kind: str) -> list[Any]:
    return [e for e in api.platform.store.read(0, 10_000) if e.type == kind]


def test_a_kite_snapshot_is_stored_as_its_checked_fields(live: Any) -> None:  # noqa: F811
    api = live
    r = api.post("/api/agent/sync-holdings", headers=api.agent,
                 json={"status": "success", "data": [_kite_holding("INFY", 10)]})
    assert r.status_code == 200 and r.json() == {"recorded": True, "holdings": 1}
    [event] = _events(api, "HoldingsSynced")
    [held] = event.data["holdings"]
    assert held["tradingsymbol"] == "INFY" and held["quantity"] == 10 and held["isin"] == "INE009A01021"
    assert "mtf" not in held and "authorised_date" not in held and "authorisation" not in held
    positions = {"net": [{"tradingsymbol": "TCS", "exchange": "NSE", "product": "CNC", "quantity": 2,
                          "average_price": 3500, "m2m": 1.5, "unrealised": 2.0}], "day": []}
    r = api.post("/api/agent/sync-positions", headers=api.agent, json={"status": "success", "data": positions})
    assert r.status_code == 200 and r.json() == {"recorded": True, "net": 1, "day": 0}
    [event] = _events(api, "PositionsSynced")
    assert event.data["net"][0]["average_price"] == 3500.0 and "m2m" not in event.data["net"][0]


@pytest.mark.parametrize(("path", "body", "where"), [
    ("/api/agent/sync-holdings", [{**_kite_holding("INFY", 1), "quantity": "lots"}], "holdings: 0.quantity"),
    ("/api/agent/sync-holdings", [{**_kite_holding("INFY", 1), "average_price": 1e300}], "holdings: 0.average_price"),
    ("/api/agent/sync-holdings", [_kite_holding("INFY", 1), _kite_holding("X" * 41, 1)], "holdings: 1.tradingsymbol"),
    ("/api/agent/sync-holdings", [_kite_holding("NSE INFY", 1)], "holdings: 0.tradingsymbol"),
    ("/api/agent/sync-holdings", [{**_kite_holding("INFY", 1), "isin": "IN-E009\u00e9"}], "holdings: 0.isin"),
    ("/api/agent/sync-positions", {"net": [{"quantity": 1}], "day": []}, "positions: net.0.tradingsymbol"),
    ("/api/agent/sync-positions", {"net": [], "day": "x"}, "positions: day"),
])
def test_a_malformed_snapshot_is_a_422_naming_the_field(live: Any, path: str, body: Any,  # noqa: F811
                                                         where: str) -> None:
    api = live  # a snapshot not in Kite's shape is a schema violation (docs/API-NOTES.md, Status codes)
    r = api.post(path, headers=api.agent, json=body)
    assert r.status_code == 422 and r.json()["detail"][0]["msg"].startswith(where), r.text
    assert "lots" not in r.text  # the value is not echoed
    assert not _events(api, "HoldingsSynced") and not _events(api, "PositionsSynced")


def test_session_invalid_takes_a_typed_reason(live: Any) -> None:  # noqa: F811
    api = live
    assert api.post("/api/agent/session-invalid", headers=api.agent, json={"reason": ["no"]}).status_code == 422
    r = api.post("/api/agent/session-invalid", headers=api.agent, json={"reason": "TokenException"})
    assert r.status_code == 200 and r.json()["connected"] is False
