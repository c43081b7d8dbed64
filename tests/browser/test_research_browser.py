"""The Research page: start a sweep from the form, follow it to its heatmap (the API's numbers, coloured) and its
best run; start a walk-forward and read its windows and stitched out-of-sample equity."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import App

SLOW = 240_000  # ms: the job runs a pool of backtests on a shared 2-core machine


@pytest.fixture(scope="module")
def signed_in(browser: Any, app: App) -> Any:
    ctx = app.context(browser, "researcher@example.com", viewport={"width": 1280, "height": 900})
    yield ctx
    ctx.close()


def _fill(page: Any, kind: str) -> None:
    page.get_by_label("Kind", exact=True).select_option(kind)
    page.get_by_label("Universe", exact=True).select_option("nifty_50")
    page.get_by_label("From", exact=True).fill("2024-01-01")
    page.get_by_label("To", exact=True).fill("2025-12-31")
    page.get_by_label("Parameter 1", exact=True).fill("stop_loss_pct")
    page.get_by_label("Values 1 (comma-separated)", exact=True).fill("5, 8")
    page.get_by_label("Parameter 2 (optional)", exact=True).fill("max_positions")
    page.get_by_label("Values 2", exact=True).fill("3, 10")


def test_sweep_heatmap_and_best_run(signed_in: Any, app: App) -> None:
    page = signed_in.new_page()
    page.goto(app.url + "/research")
    expect(page.get_by_role("heading", name="Research")).to_be_visible()
    _fill(page, "sweep")
    page.get_by_role("button", name="Start", exact=True).click()
    expect(page).to_have_url(re.compile(r"/research/sweeps/\d+$"))
    job_id = page.url.rsplit("/", 1)[1]
    heat = page.locator("#sweep-heatmap")
    expect(heat).to_be_visible(timeout=SLOW)
    s = app.session("researcher@example.com")
    api = s.get(f"{app.url}/api/research/sweeps/{job_id}/heatmap",
                params={"x": "stop_loss_pct", "y": "max_positions"}).json()
    cells = heat.locator("tbody td")
    expect(cells).to_have_count(4)
    shown = [c or None for c in cells.evaluate_all("els => els.map(e => e.dataset.value)")]
    assert shown == [None if v is None else str(v) for row in api["values"] for v in row]
    expect(page.locator("#sweep-results tbody tr")).to_have_count(4)
    page.locator("#best-run").click()
    expect(page).to_have_url(re.compile(r"/backtests/\d+$"))
    expect(page.locator("#metrics")).to_be_visible()


def test_walk_forward_windows_and_equity(signed_in: Any, app: App) -> None:
    page = signed_in.new_page()
    page.goto(app.url + "/research")
    _fill(page, "walk_forward")
    page.get_by_label("Windows", exact=True).fill("2")
    page.get_by_role("button", name="Start", exact=True).click()
    expect(page).to_have_url(re.compile(r"/research/walk-forward/\d+$"))
    expect(page.locator("#wf-windows tbody tr")).to_have_count(2, timeout=SLOW)
    expect(page.locator("#wf-equity .chart-box[data-ready='1']")).to_be_visible()
    expect(page.locator("[data-metric='wfe']")).to_be_visible()
    page.goto(app.url + "/research")
    expect(page.locator("#research-jobs tbody tr")).to_have_count(2)
