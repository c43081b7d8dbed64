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
def researcher(app: App) -> Any:
    """The researcher's API session (one sign-in for the module: sign-in emails per address are limited)."""
    return app.session("researcher@example.com")


@pytest.fixture(scope="module")
def signed_in(browser: Any, app: App) -> Any:
    ctx = app.context(browser, "researcher@example.com", viewport={"width": 1280, "height": 900})
    yield ctx
    ctx.close()


def _fill_backtest(page: Any, kind: str) -> None:
    page.get_by_label("Kind", exact=True).select_option(kind)
    page.get_by_label("Universe", exact=True).select_option("nifty_50")
    page.get_by_label("From", exact=True).fill("2024-01-01")
    page.get_by_label("To", exact=True).fill("2025-12-31")


def _fill(page: Any, kind: str) -> None:
    _fill_backtest(page, kind)
    page.get_by_label("Parameter 1", exact=True).fill("stop_loss_pct")
    page.get_by_label("Values 1 (comma-separated)", exact=True).fill("5, 8")
    page.get_by_label("Parameter 2 (optional)", exact=True).fill("max_positions")
    page.get_by_label("Values 2", exact=True).fill("3, 10")


def _start(page: Any, route: str) -> str:
    """Press Start on the filled form; the job's page opens. Its id."""
    page.get_by_role("button", name="Start", exact=True).click()
    expect(page).to_have_url(re.compile(rf"/research/{route}/\d+$"))
    return str(page.url.rsplit("/", 1)[1])


def _finished(page: Any, app: App, researcher: Any, route: str, ready: str) -> dict[str, Any]:
    """Press Start on the filled form and wait on the job's page until `ready` shows; the job as the API has it."""
    job_id = _start(page, route)
    expect(page.locator(ready)).to_be_visible(timeout=SLOW)
    return dict(researcher.get(f"{app.url}/api/research/{route}/{job_id}").json())


def test_sweep_heatmap_and_best_run(signed_in: Any, app: App, researcher: Any) -> None:
    page = signed_in.new_page()
    page.goto(app.url + "/research")
    expect(page.get_by_role("heading", name="Research")).to_be_visible()
    _fill(page, "sweep")
    # the parameters are offered in words, and the one typed is said back with the strategy's own value
    expect(page.locator("#sweep-params option[value='entry_rules.all.1.right']")).to_have_text("entry: rsi(14) < x")
    expect(page.locator("#f-p1-hint")).to_have_text("stop loss % (now 7)")
    expect(page.locator("#f-p2-hint")).to_have_text("max positions")
    job_id = _start(page, "sweeps")
    heat = page.locator("#sweep-heatmap")
    expect(heat).to_be_visible(timeout=SLOW)
    s = researcher
    api = s.get(f"{app.url}/api/research/sweeps/{job_id}/heatmap",
                params={"x": "stop_loss_pct", "y": "max_positions"}).json()
    cells = heat.locator("tbody td")
    expect(cells).to_have_count(4)
    shown = [c or None for c in cells.evaluate_all("els => els.map(e => e.dataset.value)")]
    assert shown == [None if v is None else str(v) for row in api["values"] for v in row]
    expect(page.locator("#sweep-results tbody tr")).to_have_count(4)
    # the universe in words, and no worker id (that is in the tooltip only)
    line = page.locator("#job-line")
    expect(line).to_contain_text(" · NIFTY 50 · 01 Jan 2024 \u2013 31 Dec 2025 · 4 backtests")
    expect(line).not_to_contain_text(re.compile(r"nifty_50|local:| on "))
    expect(page.locator("#job-backtests")).to_have_attribute("title", re.compile(r"^run by \S+"))
    expect(page.get_by_role("heading", name="Heatmap: best Sharpe per cell")).to_be_visible()
    # parameters in words: the table's headers, the axes' choices and the heatmap's axes
    expect(heat.locator("#heat-x-label")).to_have_text("stop loss % \u2192")
    expect(heat.locator("#heat-y-label")).to_have_text("max positions \u2193")
    expect(page.locator("#heat-x option")).to_have_text(["stop loss %", "max positions"])
    expect(page.locator("#sweep-results thead")).to_contain_text("stop loss %")
    # the same parameter for rows and columns: said, instead of a heatmap that vanishes
    page.locator("#heat-y").select_option("stop_loss_pct")
    expect(page.locator("#heat-same")).to_have_text("Choose two different parameters for rows and columns.")
    expect(heat).to_have_count(0)
    page.locator("#heat-y").select_option("max_positions")
    expect(page.locator("#heat-same")).to_have_count(0)
    expect(heat.locator("tbody td")).to_have_count(4)
    # the cells can show another figure of each cell's best combination: its drawdown, the smallest in green
    page.locator("#heat-value").select_option(label="Max drawdown %")
    expect(page.get_by_role("heading", name="Heatmap: Max drawdown % of the best Sharpe per cell")).to_be_visible()
    dd = s.get(f"{app.url}/api/research/sweeps/{job_id}/heatmap",
               params={"x": "stop_loss_pct", "y": "max_positions", "metric": "max_drawdown"}).json()
    wanted = [None if v is None else str(v) for row in dd["values"] for v in row]
    expect(cells.first).to_have_attribute("data-value", wanted[0] or "")
    shown = [c or None for c in cells.evaluate_all("els => els.map(e => e.dataset.value)")]
    assert shown == wanted
    smallest = min(float(v) for v in wanted if v is not None)
    best = cells.nth(wanted.index(next(v for v in wanted if v is not None and float(v) == smallest)))
    assert "background: rgb(171, 237, 171)" in (best.get_attribute("style") or "")  # hsl(120 65% 80%): green
    # the combinations recorded as backtest runs open from their rank (the form asks for the best one)
    job = s.get(f"{app.url}/api/research/sweeps/{job_id}").json()
    links = page.locator("#sweep-results tbody .run-link")
    expect(links).to_have_count(len(job["run_ids"]))
    hrefs = links.evaluate_all("els => els.map(e => e.getAttribute('href'))")
    assert hrefs == [f"/backtests/{i}" for i in job["run_ids"]]
    page.locator("#best-run").click()
    expect(page).to_have_url(re.compile(r"/backtests/\d+$"))
    expect(page.locator("#metrics")).to_be_visible()


def test_sweep_with_constraints_and_several_runs_recorded(signed_in: Any, app: App, researcher: Any) -> None:
    """The form's constraints leave combinations out before anything runs, and its `top_n` records that many of the
    best as backtest runs, each opening from its rank."""
    page = signed_in.new_page()
    page.goto(app.url + "/research")
    _fill(page, "sweep")
    page.get_by_label("Constraints (optional)", exact=True).fill("max_positions > stop_loss_pct")
    page.get_by_label("Best combinations to record as backtests", exact=True).fill("2")
    job = _finished(page, app, researcher, "sweeps", "#sweep-results")
    assert job["params"]["constraints"] == ["max_positions > stop_loss_pct"] and job["params"]["top_n"] == 2
    # stop 5 and 8 against max positions 3 and 10: only the two with 10 positions are run
    assert job["total"] == 2 and sorted(r["params"]["max_positions"] for r in job["results"]) == [10, 10]
    expect(page.locator("#sweep-results tbody tr")).to_have_count(2)
    eligible = sum(1 for r in job["results"] if r["eligible"])
    assert len(job["run_ids"]) == min(2, eligible)
    expect(page.locator("#sweep-results tbody .run-link")).to_have_count(len(job["run_ids"]))


def test_walk_forward_windows_and_equity(signed_in: Any, app: App, researcher: Any) -> None:
    page = signed_in.new_page()
    page.goto(app.url + "/research")
    _fill(page, "walk_forward")
    page.get_by_label("Windows", exact=True).fill("2")
    wf_id = _start(page, "walk-forward")
    expect(page.locator("#wf-windows tbody tr")).to_have_count(2, timeout=SLOW)
    expect(page.locator("#wf-equity .chart-box[data-ready='1']")).to_be_visible()
    expect(page.locator("[data-metric='wfe']")).to_be_visible()
    wf = researcher.get(f"{app.url}/api/research/walk-forward/{wf_id}")
    wfe = wf.json()["summary"]["walk_forward_efficiency"]
    for i, w in enumerate(wf.json()["windows"]):  # each window's choice in words, with its values
        p = w["params"]
        expect(page.locator("#wf-windows tbody tr").nth(i)).to_contain_text(
            f"stop loss % = {p['stop_loss_pct']}, max positions = {p['max_positions']}" if p else "none eligible")
    expect(page.locator("[data-metric='wfe'] .card-sub")).to_have_text(
        "undefined: the in-sample CAGR was not positive" if wfe is None else "out-of-sample CAGR ÷ in-sample CAGR")
    page.goto(app.url + "/research")
    jobs = researcher.get(f"{app.url}/api/research/jobs").json()
    assert len(jobs) >= 2  # the sweeps before it and this walk-forward, newest first
    expect(page.locator("#research-jobs tbody tr")).to_have_count(len(jobs))
    newest = page.locator("#research-jobs tbody tr").first  # named in words, with what it tested
    expect(newest.locator('[data-col="kind"]')).to_have_text("Walk-forward")
    expect(newest.locator('[data-col="strategy"]')).to_have_text(re.compile(r" · NIFTY 50$"))


def test_monte_carlo_percentiles_and_distributions(signed_in: Any, app: App, researcher: Any) -> None:
    page = signed_in.new_page()
    page.goto(app.url + "/research")
    _fill_backtest(page, "monte_carlo")
    expect(page.get_by_label("Parameter 1", exact=True)).to_have_count(0)  # no grid for a Monte Carlo
    page.get_by_label("Simulations", exact=True).fill("300")
    page.get_by_label("Seed", exact=True).fill("7")
    job = _finished(page, app, researcher, "monte-carlo", "#mc-returns-percentiles")
    table = page.locator("#mc-returns-percentiles")
    returns = next(r for r in job["results"] if r["method"] == "returns")
    assert returns["simulations"] == 300 and returns["seed"] == 7
    # the table shows the API's percentiles of each metric, in the order asked (5th .. 95th)
    for metric in ("final_equity", "cagr", "max_drawdown"):
        cells = table.locator(f"tr[data-metric='{metric}'] td[data-value]")
        shown = [float(v) for v in cells.evaluate_all("els => els.map(e => e.dataset.value)")]
        assert shown == pytest.approx(list(returns[metric]["percentiles"].values()))
    expect(table.locator("thead th")).to_have_text(["Metric", "Backtest", "5th", "25th", "50th", "75th", "95th",
                                                    "Mean"])
    # the distribution: one bar per histogram bin, the counts adding up to the paths
    bars = page.locator("#mc-returns-hist-final_equity .bar")
    expect(bars).to_have_count(len(returns["final_equity"]["histogram"]["counts"]))
    counts = [int(c) for c in bars.evaluate_all("els => els.map(e => e.dataset.count)")]
    assert counts == returns["final_equity"]["histogram"]["counts"] and sum(counts) == 300
    # the reshuffled trades' own figures are the closed trades from exit to exit, not the run's: said so
    expect(page.locator("#mc-trades-percentiles thead th").nth(1)).to_have_text("Trades in order")
    expect(page.locator("#mc-trades-percentiles caption")).to_contain_text("can differ from the run's own figures")
    # reshuffled trades all end at one equity: said in words, not drawn as one lone bar
    trades = next(r for r in job["results"] if r["method"] == "trades")
    assert len({round(v) for v in trades["final_equity"]["percentiles"].values()}) == 1
    expect(page.locator("#mc-trades-hist-final_equity .same")).to_have_text(
        re.compile(r"^₹[\d,]+\.\d\d in every path$"))
    expect(page.locator("#mc-trades-hist-final_equity .bar")).to_have_count(0)
    ruin = page.locator("[data-metric='mc-returns-ruin'] .card-value")
    expect(ruin).to_have_text(f"{returns['probability_of_ruin'] * 100:.1f} %")
    page.locator("#best-run").click()
    expect(page).to_have_url(re.compile(rf"/backtests/{job['best_run_id']}$"))


def test_lookahead_check_verdict_findings_and_recursion(signed_in: Any, app: App, researcher: Any) -> None:
    page = signed_in.new_page()
    page.goto(app.url + "/research")
    _fill_backtest(page, "lookahead")
    page.get_by_label("Cut days", exact=True).fill("2")
    page.get_by_label("Warm-ups to try (trading days, comma-separated)", exact=True).fill("40")
    job = _finished(page, app, researcher, "lookahead", "[data-metric='lookahead-verdict']")
    assert job["status"] == "done"
    verdict = "Clean: nothing changed" if job["summary"]["clean"] else "Look-ahead found"
    expect(page.locator("[data-metric='lookahead-verdict'] .card-value")).to_have_text(verdict)
    rows = page.locator("#lookahead-recursion tbody tr")
    expect(rows).to_have_count(len(job["recursion"]))
    assert job["recursion"] and all(r["warmup_days"] <= 40 for r in job["recursion"])
    expect(rows.first.locator("td").nth(1)).to_have_text(job["recursion"][0]["name"])
    if job["results"]:
        expect(page.locator("#lookahead-findings tbody tr")).to_have_count(len(job["results"]))
    else:
        expect(page.locator("#lookahead-findings")).to_contain_text("No findings")


def _no_post(page: Any) -> list[str]:
    """The research jobs the page asks the API to start, from now on."""
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.method == "POST" and "/api/research/" in r.url else None)
    return sent


def test_the_form_refuses_the_same_parameter_twice_on_its_field(signed_in: Any, app: App) -> None:
    page = signed_in.new_page()
    page.goto(app.url + "/research")
    _fill(page, "sweep")
    sent = _no_post(page)
    page.get_by_label("Values 1 (comma-separated)", exact=True).fill("5, 7")
    page.get_by_label("Parameter 2 (optional)", exact=True).fill("stop_loss_pct")
    page.get_by_label("Values 2", exact=True).fill("8, 9")
    err = page.locator('[data-error-for="p2"]')
    expect(err).to_have_text("Parameter 1 is already stop loss %: choose a different parameter, "
                             "or put all its values in Values 1.")
    expect(page.get_by_label("Parameter 2 (optional)", exact=True)).to_have_attribute("aria-describedby", "f-p2-err")
    page.get_by_role("button", name="Start", exact=True).click()
    expect(page.get_by_label("Parameter 2 (optional)", exact=True)).to_be_focused()
    expect(page).to_have_url(app.url + "/research")
    assert sent == []
    page.get_by_label("Parameter 2 (optional)", exact=True).fill("max_positions")
    expect(err).to_have_count(0)


def test_the_form_checks_the_values_on_their_field(signed_in: Any, app: App) -> None:
    page = signed_in.new_page()
    page.goto(app.url + "/research")
    _fill(page, "sweep")
    sent = _no_post(page)
    values = page.get_by_label("Values 1 (comma-separated)", exact=True)
    values.fill("5, 7, abc")
    err = page.locator('[data-error-for="v1"]')
    expect(err).to_have_text("Value 3 (\u201cabc\u201d) is not a number: give numbers separated by commas, "
                             "like 5, 7.5, 10.")
    expect(values).to_have_attribute("aria-invalid", "true")
    page.get_by_role("button", name="Start", exact=True).click()
    expect(values).to_be_focused()
    assert sent == []
    values.fill("5, 7, 5")
    expect(err).to_have_text("5 is given twice: give each value once.")
    page.get_by_label("Values 2", exact=True).fill("")
    page.get_by_role("button", name="Start", exact=True).click()
    expect(page.locator('[data-error-for="v2"]')).to_have_text(re.compile("^Give at least one value"))
    values.fill("5, 7.5, 10")
    expect(err).to_have_count(0)
    assert sent == []


def test_the_form_counts_the_combinations_and_says_the_limit(signed_in: Any, app: App) -> None:
    page = signed_in.new_page()
    page.goto(app.url + "/research")
    _fill(page, "sweep")
    sent = _no_post(page)
    size = page.locator("#grid-size")
    expect(size).to_have_text("2 \u00d7 2 = 4 combinations. At most 5,000 backtests per job.")
    page.get_by_label("Values 1 (comma-separated)", exact=True).fill("5, 7, 10")
    page.get_by_label("Values 2", exact=True).fill("3, 5, 8, 10")
    expect(size).to_have_text("3 \u00d7 4 = 12 combinations. At most 5,000 backtests per job.")
    page.get_by_label("Parameter 2 (optional)", exact=True).fill("")
    page.get_by_label("Values 2", exact=True).fill("")
    expect(size).to_have_text("3 combinations. At most 5,000 backtests per job.")
    # more than the API takes: said before sending, and not sent
    page.get_by_label("Parameter 2 (optional)", exact=True).fill("max_positions")
    page.get_by_label("Values 1 (comma-separated)", exact=True).fill(", ".join(str(x) for x in range(1, 101)))
    page.get_by_label("Values 2", exact=True).fill(", ".join(str(x) for x in range(1, 61)))
    expect(size).to_have_text("100 \u00d7 60 = 6,000 combinations: more than the 5,000 backtests a job may run. "
                              "Use fewer values.")
    page.get_by_role("button", name="Start", exact=True).click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    assert sent == []
    # a walk-forward runs the grid in every window, and each window's choice once more
    page.get_by_label("Kind", exact=True).select_option("walk_forward")
    page.get_by_label("Values 1 (comma-separated)", exact=True).fill("5, 8")
    page.get_by_label("Values 2", exact=True).fill("3, 10")
    page.get_by_label("Windows", exact=True).fill("4")
    expect(size).to_have_text("2 \u00d7 2 = 4 combinations in each of 4 windows, and each window's choice out of "
                              "sample: 20 backtests. At most 5,000 backtests per job.")


def test_a_large_grid_asks_first_and_a_running_job_cancels_unambiguously(signed_in: Any, app: App,
                                                                         researcher: Any) -> None:
    page = signed_in.new_page()
    page.goto(app.url + "/research")
    _fill(page, "sweep")
    sent = _no_post(page)
    page.get_by_label("Values 1 (comma-separated)", exact=True).fill(", ".join(str(x) for x in range(1, 60)))
    page.get_by_label("Values 2", exact=True).fill(", ".join(str(x) for x in range(1, 51)))
    size = page.locator("#grid-size")
    expect(size).to_contain_text("59 \u00d7 50 = 2,950 combinations: that takes a while; you will be asked to confirm.")
    page.get_by_role("button", name="Start", exact=True).click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading")).to_have_text("Run 2,950 backtests?")
    expect(dialog).to_contain_text("2,950 combinations, one backtest each")
    dialog.get_by_role("button", name="Cancel", exact=True).click()  # not now: nothing is sent
    expect(dialog).to_have_count(0)
    assert sent == []
    page.get_by_role("button", name="Start", exact=True).click()
    dialog.get_by_role("button", name="Run 2,950 backtests", exact=True).click()
    expect(page).to_have_url(re.compile(r"/research/sweeps/\d+$"))
    job_id = page.url.rsplit("/", 1)[1]
    assert len(sent) == 1
    try:
        # the cancel dialog's buttons say what they do: keep it running, or cancel it
        page.get_by_role("button", name="Cancel job", exact=True).click()
        ask = page.get_by_role("dialog", name="Cancel this job?")
        expect(ask.get_by_role("button")).to_have_text(["Keep running", "Cancel job"])
        ask.get_by_role("button", name="Keep running").click()
        expect(ask).to_have_count(0)
        assert researcher.get(f"{app.url}/api/research/sweeps/{job_id}").json()["status"] in ("queued", "running")
        page.get_by_role("button", name="Cancel job", exact=True).click()
        ask.get_by_role("button", name="Cancel job").click()
        expect(page.locator("#job-line .badge")).to_have_text("cancelled", timeout=30_000)
    finally:
        researcher.delete(f"{app.url}/api/research/sweeps/{job_id}")  # cancels it if the test stopped early
