"""Shares bought on NSE that Kite's holdings list under BSE, still in T+1 (`quantity` 0, `t1_quantity` N,
as in Zerodha's published holdings mock): the real agent process pushes the snapshot and the live
dashboard's reconciliation matches them by ISIN, then symbol -- no false "missing on NSE" / "extra on
BSE" -- while a real difference still shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.kite_live import kite_world

pytestmark = pytest.mark.filterwarnings("ignore:You should not use the 'timeout' argument")


def test_bse_listed_t1_holdings_reconcile_without_drift(tmp_path: Path) -> None:
    with kite_world(tmp_path) as w:
        pf, _ = w.portfolio(slots=1)
        assert w.once().returncode == 0, w.log
        (gtt,) = w.kite.gtts.values()
        w.kite.trigger(gtt["id"])
        w.kite.holdings_exchange = "BSE"
        w.kite.end_day()  # the next morning: the shares are T+1 holdings, listed under BSE
        (holding,) = w.kite.holdings.values()
        qty = gtt["orders"][0]["quantity"]
        assert (holding["exchange"], holding["quantity"], holding["t1_quantity"]) == ("BSE", 0, qty)
        assert w.once().returncode == 0, w.log  # reports the fill (from the order history) and the snapshot
        assert w.once().returncode == 0, w.log  # places the position's protective OCO (else: `gtt_missing`)

        def recon() -> dict:
            got = w.s.get(w.base + "/api/model/dashboard", params={"portfolio_id": pf["id"]}).json()
            return dict(got["reconciliation"])

        (pos,) = w.positions(pf["id"], "open")
        assert (pos["exchange"], pos["quantity"]) == ("NSE", qty)
        got = recon()
        assert got["synced_at"] and got["in_sync"] is True and got["drift"] == []
        account = w.s.get(w.base + "/api/portfolio/reconciliation").json()
        assert account["in_sync"] is True
        # a real difference still shows, under the model's exchange and symbol
        holding["t1_quantity"] = qty - 1
        w.once()
        (drift,) = recon()["drift"]
        assert (drift["kind"], drift["exchange"], drift["symbol"], drift["model_quantity"],
                drift["broker_quantity"]) == ("quantity", "NSE", pos["symbol"], qty, qty - 1)
