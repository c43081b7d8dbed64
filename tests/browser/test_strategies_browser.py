"""The Strategies pages in words, as a trader reads them: base models by their titles (not `v3_dip_buyer`), the
rules' indicators and operators and the entry-order options named, the description said once, and on a 390-px
phone each strategy a card whose Updated time and Fork / Backtest buttons are on the screen."""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.conftest import App

USER = "strategy.reader@example.com"
CODES = re.compile(r"v3_dip_buyer|crosses_(above|below)|bb_(upper|lower)|avg_volume|next_open")


@pytest.fixture(scope="module")
def api(app: App) -> requests.Session:
    return app.session(USER)


@pytest.fixture(scope="module")
def fork(app: App, api: requests.Session) -> dict[str, Any]:
    return app.dip_buyer(api, "Words dips")


@pytest.fixture(scope="module")
def page(browser: Any, app: App, api: requests.Session) -> Any:
    ctx = app.context_of(browser, api, viewport={"width": 1280, "height": 900})
    yield ctx.new_page()
    ctx.close()


def test_the_list_names_base_models_in_words(page: Any, app: App, fork: dict[str, Any]) -> None:
    page.goto(app.url + "/strategies?tab=templates")
    table = page.locator("#strategies")
    row = table.locator("tbody tr", has=page.get_by_role("link", name="V3 Dip Buyer", exact=True))
    expect(row.locator('[data-col="base_model"]')).to_have_text("Dip buyer (v3)")
    expect(table).not_to_contain_text(CODES)
    page.goto(app.url + "/strategies")
    mine = page.locator(f'#strategies tbody tr[data-row="{fork["id"]}"]')
    expect(mine.locator('[data-col="base_model"]')).to_have_text("Dip buyer (v3)")


def test_the_edit_page_names_codes_in_words_and_keeps_their_values(page: Any, app: App, fork: dict[str, Any]) -> None:
    page.goto(app.url + f"/strategies/{fork['id']}")
    expect(page.get_by_role("heading", name="Words dips")).to_be_visible()
    model = page.get_by_label("Base model", exact=True)
    expect(model.locator("option:checked")).to_have_text("Dip buyer (v3)")
    expect(model).to_have_value("v3_dip_buyer")
    expect(page.get_by_role("group", name="Parameters of Dip buyer (v3)")).to_be_visible()
    order = page.get_by_label("entry order", exact=True)
    expect(order.locator("option")).to_have_text(["Next open (market order)", "Limit (GTT below the close)"])
    assert order.locator("option").evaluate_all("os => os.map(o => o.value)") == ["next_open", "limit"]
    expect(order).to_have_value("next_open")
    expect(page.locator("#f-params\\.entry_order-hint")).not_to_contain_text("next_open")
    op = page.locator("#f-entry_rules\\.all\\.0\\.op")
    expect(op.locator("option")).to_have_text(["<", "<=", ">", ">=", "crosses above", "crosses below"])
    indicator = page.locator("#f-entry_rules\\.all\\.0\\.right\\.ind")
    labels = indicator.locator("option").all_inner_texts()
    assert "Bollinger upper band" in labels and "average volume" in labels and "SMA" in labels
    # the words are labels only: the value sent is still the code
    indicator.select_option(label="Bollinger upper band")
    expect(indicator).to_have_value("bb_upper")
    op.select_option(label="crosses above")
    expect(op).to_have_value("crosses_above")
    texts = page.locator("form[aria-label='Strategy']").evaluate(
        "f => [...f.querySelectorAll('option, legend, label, small, p')].map(e => e.textContent).join('\\n')")
    assert not CODES.search(texts), CODES.search(texts)
    with page.expect_request(lambda r: r.method == "PUT" and r.url.endswith(f"/api/strategies/{fork['id']}")) as sent:
        page.get_by_role("button", name="Save", exact=True).click()
    rule = sent.value.post_data_json["entry_rules"]["all"][0]
    assert rule["op"] == "crosses_above" and rule["right"]["ind"] == "bb_upper"
    assert sent.value.post_data_json["params"]["entry_order"] == "next_open"


def test_the_description_is_said_once(page: Any, app: App, fork: dict[str, Any], api: requests.Session) -> None:
    models = api.get(app.url + "/api/strategies/base-models").json()
    about = next(m for m in models if m["name"] == "v3_dip_buyer")["description"]
    page.goto(app.url + f"/strategies/{fork['id']}")
    box = page.get_by_label("Description", exact=True)
    expect(box).to_have_value(fork["description"])
    assert fork["description"] == about  # the template's description is its base model's
    # said in the box only; the base model's conviction is still explained under it
    expect(page.locator("#model-about")).to_have_text(re.compile(r"^Conviction: "))
    text = page.locator("form[aria-label='Strategy']").inner_text()
    assert about not in text
    # a description of the trader's own: the base model's is then shown, named
    box.fill("My own dips, my own words.")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("#model-about")).to_have_text(re.compile(r"^Dip buyer \(v3\): Buys stocks .* Conviction: "))


def test_on_a_phone_the_list_shows_updated_and_the_actions(browser: Any, app: App, api: requests.Session,
                                                            fork: dict[str, Any]) -> None:
    ctx = app.context_of(browser, api, viewport={"width": 390, "height": 844})
    try:
        pg = ctx.new_page()
        pg.goto(app.url + "/strategies")
        row = pg.locator(f'#strategies tbody tr[data-row="{fork["id"]}"]')
        expect(row).to_be_visible()
        expect(row.locator('[data-col="updated_at"]')).to_have_text(re.compile(r"IST$"))
        for target in (row.locator('[data-col="updated_at"]'), row.get_by_role("button", name="Fork Words dips"),
                       row.get_by_role("link", name="Backtest")):
            expect(target).to_be_visible()
            box = target.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, f"off-screen: {box}"
        assert pg.evaluate("document.documentElement.scrollWidth") <= 390
    finally:
        ctx.close()
