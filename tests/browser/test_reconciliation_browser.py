"""The reconciliation in the web app: a live portfolio whose GTT fired while the agent was offline (its order
found nowhere at Kite) and whose position then waits for its protective GTT. The real agent process against
the Kite stub reports both; the broker page and the portfolio dashboard say so in words, and the dashboard's
signal names the unresolved fill."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support.kite_live import kite_world

pytestmark = pytest.mark.filterwarnings("ignore:You should not use the 'timeout' argument")


def test_unresolved_fill_and_missing_protection_are_shown(browser: Any, tmp_path: Path) -> None:
    with kite_world(tmp_path) as w:
        pf, entry, gtt, oid = w.fill_kite_forgot()
        assert w.once().returncode == 0, w.log
        ctx = browser.new_context(viewport={"width": 1280, "height": 900})
        ctx.add_cookies([{"name": c.name, "value": c.value or "", "url": w.base} for c in w.s.cookies])
        page = ctx.new_page()
        try:
            page.goto(w.base + "/broker")
            row = page.locator("#drift tbody tr").filter(has_text="Fill unresolved")
            expect(row).to_contain_text(entry["symbol"])
            expect(row).to_contain_text(f"GTT {gtt['id']} triggered, but Kite order {oid} is found nowhere")

            page.goto(w.base + f"/portfolios/{pf['id']}")
            section = page.get_by_role("region", name="Reconciliation with Kite")
            expect(section).to_contain_text("Drift found")
            expect(section.locator("#portfolio-drift tbody tr")).to_contain_text("Fill unresolved")
            note = page.locator("#portfolio-signals tbody tr").filter(has_text="Fill unresolved")
            expect(note).to_contain_text(f"GTT {gtt['id']}, Kite order {oid} found nowhere")

            w.kite.keep_history = True  # Kite answers again: the fill is recorded, the OCO not placed yet
            assert w.once().returncode == 0, w.log
            page.reload()
            section = page.get_by_role("region", name="Reconciliation with Kite")
            (pos,) = w.positions(pf["id"], "open")
            missing = section.locator("#portfolio-drift tbody tr").filter(has_text="No protective GTT")
            expect(missing).to_contain_text(f"(not placed): the model's stop ₹{pos['stop_loss']:,.2f}")
            expect(section).not_to_contain_text("Fill unresolved")
            page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
        finally:
            ctx.close()
