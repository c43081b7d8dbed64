"""A backtest's pages as a trader reads them: the universe in words (NIFTY 50, "3 symbols") in the run's header and
the Compare table, and on a 390-px phone a trade's symbol and P&L on the screen without scrolling sideways."""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.conftest import App

USER = "backtest.reader@example.com"
SYMBOLS = ["RELIANCE", "TCS", "INFY"]


@pytest.fixture(scope="module")
def api(app: App) -> requests.Session:
    return app.session(USER)


@pytest.fixture(scope="module")
def runs(app: App, api: requests.Session) -> list[dict[str, Any]]:
    """Two runs of the SMA crossover template: one on NIFTY 50, one on a custom list of three symbols."""
    sma = next(t for t in api.get(app.url + "/api/strategies", params={"is_template": True}).json()
               if t["base_model"] == "sma_crossover")
    body = {"strategy_id": sma["id"], "start_date": "2024-06-01", "end_date": "2026-06-30",
            "starting_capital": 1_000_000, "position_size_pct": 10, "max_positions": 10}
    out = []
    for where in ({"universe": "nifty_50"}, {"symbols": SYMBOLS}):
        r = api.post(app.url + "/api/backtest/run", json={**body, **where})
        assert r.status_code == 200, r.text
        out.append(dict(r.json()))
    assert out[0]["trades"], "the NIFTY 50 run should have trades"
    return out


@pytest.fixture(scope="module")
def page(browser: Any, app: App, api: requests.Session) -> Any:
    ctx = app.context_of(browser, api, viewport={"width": 1280, "height": 900})
    yield ctx.new_page()
    ctx.close()


def test_the_universe_in_words_in_the_header_and_the_compare_table(page: Any, app: App,
                                                                     runs: list[dict[str, Any]]) -> None:
    nifty, custom = runs
    page.goto(app.url + f"/backtests/{nifty['id']}")
    line = page.locator("#run-line")
    expect(line).to_have_text(re.compile(r"^NIFTY 50 · 01 Jun 2024 \u2013 30 Jun 2026 · capital ₹10,00,000 · "))
    expect(line).not_to_contain_text("nifty_50")
    page.goto(app.url + f"/backtests/{custom['id']}")
    expect(page.locator("#run-line")).to_have_text(re.compile(r"^3 symbols · "))
    page.goto(app.url + f"/backtests/compare?ids={nifty['id']},{custom['id']}")
    universe = page.locator("#compare tbody tr", has=page.get_by_role("rowheader", name="Universe"))
    expect(universe.locator("td")).to_have_text(["NIFTY 50", "3 symbols"])


def test_format_names_universes_base_models_and_rule_parts_in_words(page: Any, app: App) -> None:
    page.goto(app.url + "/backtests")
    got = page.evaluate("""async () => {
      const f = await import('/assets/js/format.js');
      return [f.universe('nifty_100'), f.universe('nifty_50'), f.universe(null, ['A', 'B', 'C']),
        f.universe(null, ['A']), f.universe('nifty_next_50'), f.baseModel('v3_dip_buyer'), f.baseModel('mean_revert'),
        f.indicator('bb_upper'),
        f.indicator('avg_volume'), f.indicator('close'), f.operator('crosses_above'), f.operator('<='),
        f.choice('next_open'), f.choice('limit')];
    }""")
    assert got == ["NIFTY 100", "NIFTY 50", "3 symbols", "1 symbol", "NIFTY NEXT 50", "Dip buyer (v3)", "Mean revert",
                   "Bollinger upper band", "average volume", "close", "crosses above", "<=",
                   "Next open (market order)", "Limit (GTT below the close)"]


def test_on_a_phone_a_trades_symbol_and_pnl_are_on_the_screen(browser: Any, app: App, api: requests.Session,
                                                                runs: list[dict[str, Any]]) -> None:
    ctx = app.context_of(browser, api, viewport={"width": 390, "height": 844})
    try:
        pg = ctx.new_page()
        pg.goto(app.url + f"/backtests/{runs[0]['id']}")
        row = pg.locator("#trades tbody tr").first
        expect(row).to_be_visible()
        heads = pg.locator("#trades thead th").all_inner_texts()
        assert [h.strip() for h in heads[:4]] == ["Symbol", "P&L", "P&L %", "Exit reason"]
        for col in ("symbol", "pnl", "pnl_pct"):
            cell = row.locator(f'[data-col="{col}"]')
            expect(cell).to_be_visible()
            box = cell.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, f"{col} is off-screen: {box}"
        expect(row.locator('[data-col="pnl"]')).to_have_text(re.compile(r"^([+\u2212]?₹[\d,]+\.\d\d)$"))
    finally:
        ctx.close()
