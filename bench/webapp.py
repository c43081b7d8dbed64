"""The web app's budgets (issue 19), measured in Debian's Chromium against a real `tradertape serve` on loopback,
and the README screenshots regenerated from the same scene.

    .venv/bin/python bench/webapp.py                      # figures
    .venv/bin/python bench/webapp.py --screenshots docs/img  # also write desktop and 390-px screenshots

Budgets: Home and the portfolio dashboard interactive <= 500 ms with 20 open positions; a tick reaches the
positions table <= 100 ms after the server stamped it; the app's own JS+CSS <= 150 KB gzipped (vendored
libraries listed separately); a backtest result page with 400 trades rendered <= 300 ms after the answer arrives.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.processes import Server, otp_from_mail_dir, run_cli, tt_env  # noqa: E402

WEB = ROOT / "api" / "web"
USER = "bench.trader@example.com"


def sizes() -> None:
    def gz(paths: list[Path]) -> tuple[int, int]:
        raw = sum(p.stat().st_size for p in paths)
        return raw, sum(len(gzip.compress(p.read_bytes(), 9)) for p in paths)
    own = [WEB / "index.html", WEB / "assets" / "app.css", *sorted((WEB / "assets" / "js").rglob("*.js"))]
    raw, packed = gz(own)
    print(f"app's own JS+CSS+HTML: {len(own)} files, {raw / 1024:.1f} KB raw, {packed / 1024:.1f} KB gzipped "
          f"(budget 150 KB)")
    for p in sorted((WEB / "assets" / "vendor").glob("*.*js")):
        r, g = gz([p])
        print(f"  vendored {p.name}: {r / 1024:.1f} KB raw, {g / 1024:.1f} KB gzipped")


def sign_in(base: str, var: Path) -> requests.Session:
    s = requests.Session()
    s.headers["X-Requested-With"] = "tradertape"
    s.post(base + "/api/auth/magic-link", json={"email": USER}).raise_for_status()
    otp = otp_from_mail_dir(var / "mail", USER, timeout=15)
    s.post(base + "/api/auth/verify-link", json={"email": USER, "otp": otp}).raise_for_status()
    return s


def caught_up(base: str) -> None:
    for _ in range(300):
        if not requests.get(base + "/api/health", timeout=5).json().get("projection_lag"):
            return
        time.sleep(0.1)


def scene(base: str, env: dict[str, str], s: requests.Session, want: int = 20) -> int:
    """A paper portfolio with `want` open positions (entries at the next open); returns its id."""
    templates = s.get(base + "/api/strategies", params={"is_template": True}).json()
    t = next(x for x in templates if x["base_model"] == "v3_dip_buyer")
    fork = s.post(base + f"/api/strategies/{t['id']}/fork", json={"name": "Dips at the open"}).json()
    fields = ("name", "description", "base_model", "entry_rules", "exit_rules", "params", "is_active")
    body = {k: fork[k] for k in fields}
    body["params"]["entry_order"] = "next_open"
    body["entry_rules"]["all"][1]["right"] = 55  # RSI under 55: enough candidates to fill 20 slots in a few days
    body["exit_rules"] = {**body["exit_rules"], "max_hold_days": 60, "stop_loss_pct": 25, "target_pct": 40}
    s.put(base + f"/api/strategies/{fork['id']}", json=body).raise_for_status()
    pf = s.post(base + "/api/model/portfolios/deploy", json={
        "strategy_id": fork["id"], "name": "Dips, 20 slots", "mode": "paper", "capital": 5_000_000,
        "universe": "nifty_100", "position_size_pct": 4.5, "max_positions": want, "max_per_sector": 6}).json()
    for _ in range(40):
        s.post(base + "/api/model/scan", json={"portfolio_id": pf["id"]}).raise_for_status()
        pending = s.get(base + "/api/model/signals", params={"portfolio_id": pf["id"], "status": "pending_approval"})
        for sig in pending.json():
            s.post(base + f"/api/model/signals/{sig['id']}/approve")
        s.post(base + "/api/model/cart/place", json={"portfolio_id": pf["id"]})
        run_cli(env, "sim", "advance", "--days", "1")
        caught_up(base)
        n = len(s.get(base + "/api/model/positions", params={"portfolio_id": pf["id"], "status": "open"}).json())
        if n >= want:
            break
    print(f"scene: portfolio {pf['id']} with {n} open positions")
    return int(pf["id"])


TICK_PROBE = """async () => {
  const ticks = await import('/assets/js/ticks.js');
  window.__lat = [];
  const seen = new WeakMap();
  new MutationObserver((records) => {
    const now = performance.timeOrigin + performance.now();
    for (const r of records) {
      const cell = (r.target.nodeType === 1 ? r.target : r.target.parentElement).closest('[data-mark]');
      if (!cell) continue;
      const sym = cell.closest('tr').querySelector('[data-col=symbol] a').textContent.trim();
      const t = ticks.last.get('NSE:' + sym);
      if (t && seen.get(cell) !== t.timestamp) {
        seen.set(cell, t.timestamp);
        window.__lat.push(now - Date.parse(t.timestamp));
      }
    }
  }).observe(document.querySelector('#open-positions'), { subtree: true, characterData: true, childList: true });
}"""


# Installed in every document before the app's scripts: resolves when the page's rows are in the DOM and
# painted, in the page's own clock (performance.now(): 0 is the start of the navigation). Timing from Python
# around `wait_for_selector` measured Playwright's polling instead: it looks again after 0, 20, 50, 100, 100
# and then every 500 ms, so rows shown at 280 ms were "seen" at about 770 ms.
INTERACTIVE = """(() => {
  const wanted = %s;
  window.__ttInteractive = new Promise((done) => {
    const found = () => wanted.find((sel) => document.querySelector(sel));
    const watch = new MutationObserver(() => {
      const sel = found();
      if (!sel) return;
      watch.disconnect();
      const shown = performance.now();
      // the frame with the rows painted, then the main thread free again: the page answers input
      requestAnimationFrame(() => setTimeout(() => done({ sel, shown, painted: performance.now() }), 0));
    });
    watch.observe(document, { subtree: true, childList: true });
  });
})()"""


ARM = """() => {
  // resolves when the page stamps __ttResultRendered: no polling in the page while it renders
  window.__ttRendered = new Promise((done) => {
    let v;
    Object.defineProperty(window, '__ttResultRendered', { configurable: true, get: () => v,
      set: (x) => { v = x; done(x); } });
  });
  // and when both charts have drawn (the chart library is loaded when the first chart mounts)
  window.__ttCharts = new Promise((done) => {
    const seen = new Set();
    new MutationObserver((records) => {
      for (const r of records) seen.add(r.target.closest('figure').id);
      if (seen.has('equity-chart') && seen.has('drawdown-chart')) done(performance.now());
    }).observe(document.body, { subtree: true, attributes: true, attributeFilter: ['data-ready'] });
  });
}"""


def backtest_render(page: Any, base: str, runs: int = 3) -> None:
    """Runs the SMA template over nifty_100 from the form (about 400 trades) and times, in the page, from the
    moment the answer's last byte arrived (its resource timing) to the frame after the result page committed."""
    took, charts, trades = [], [], ""
    for _ in range(runs):
        page.goto(base + "/backtests")
        page.get_by_label("Strategy", exact=True).select_option(label="SMA Crossover 10/30 (template)")
        page.get_by_label("From", exact=True).fill("2024-12-01")
        page.get_by_label("Max positions", exact=True).fill("40")
        page.get_by_label("Position size %", exact=True).fill("2.5")
        page.evaluate(ARM)
        page.get_by_role("button", name="Run backtest").click()
        rendered = page.evaluate("() => window.__ttRendered")
        arrived = page.evaluate("performance.getEntriesByType('resource')"
                                ".filter((e) => e.name.endsWith('/api/backtest/run')).pop().responseEnd")
        took.append(rendered - arrived)
        charts.append(page.evaluate("() => window.__ttCharts") - arrived)
        trades = page.locator('[data-metric="total_trades"] .card-value').inner_text()
    print(f"backtest result page ({trades} trades): rendered {statistics.median(took):.0f} ms after the answer "
          f"arrived (median of {runs}: {', '.join(f'{t:.0f}' for t in took)} ms; budget 300 ms, 400 trades); "
          f"its two charts drawn {statistics.median(charts):.0f} ms after")


def screenshots(page: Any, base: str, pid: int, shots: Path) -> None:
    """README images: each page at 1280 px in the light theme and at 390 px (a phone) in the dark one."""
    shots.mkdir(parents=True, exist_ok=True)
    result = page.url  # the backtest result page the timing runs left open
    # a second, empty portfolio scanned once, so Approvals shows signals waiting (after the timings: Home had one)
    h = {"X-Requested-With": "tradertape"}
    first = page.request.get(base + "/api/model/portfolios").json()[0]
    pf = page.request.post(base + "/api/model/portfolios/deploy", headers=h, data={
        "strategy_id": first["strategy_id"], "name": "Dips, 5 slots", "mode": "paper", "capital": 1_000_000,
        "universe": "nifty_100", "position_size_pct": 10, "max_positions": 5}).json()
    page.request.post(base + "/api/model/scan", headers=h, data={"portfolio_id": pf["id"]})
    # a sweep of the dip buyer's RSI threshold and stop, for the Research page's heatmap
    job = page.request.post(base + "/api/research/sweeps", headers=h, data={
        "strategy_id": first["strategy_id"], "universe": "nifty_100", "start_date": "2023-01-01",
        "end_date": "2026-06-30", "starting_capital": 1_000_000, "position_size_pct": 10, "max_positions": 10,
        "grid": {"entry_rules.all.1.right": [25, 30, 35, 40, 45], "stop_loss_pct": [4, 6, 8, 10, 12]},
        "objective": "sharpe", "min_trades": 20}).json()
    for _ in range(600):
        if page.request.get(f"{base}/api/research/sweeps/{job['id']}").json()["status"] not in ("queued", "running"):
            break
        time.sleep(0.5)
    pages = (("home", base + "/", "#home-portfolios"), ("portfolio", f"{base}/portfolios/{pid}", "#open-positions"),
             ("approvals", base + "/approvals", "#cart"), ("backtest", result, "#trades"),
             ("research", f"{base}/research/sweeps/{job['id']}", "#sweep-heatmap"))
    for label, width, height, scheme in (("desktop", 1280, 900, "light"), ("phone", 390, 844, "dark")):
        page.emulate_media(color_scheme=scheme)
        page.set_viewport_size({"width": width, "height": height})
        for name, url, ready in pages:
            page.goto(url)
            page.wait_for_selector(ready)
            page.wait_for_timeout(800)  # charts drawn, a few ticks in
            page.screenshot(path=str(shots / f"{name}-{label}.png"))
    names = ", ".join(f"{n}-{w}.png" for n, *_ in pages for w in ("desktop", "phone"))
    print(f"screenshots written to {shots}: {names}")


def measure(base: str, cookie: dict[str, Any], pid: int, shots: Path | None) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        ctx = browser.new_context(viewport={"width": 1280, "height": 900})
        ctx.add_cookies([cookie])
        screens = (("home", "/", "#home-portfolios tbody tr[data-row]"),
                   ("portfolio dashboard", f"/portfolios/{pid}", "#open-positions tbody tr[data-row]"))
        ctx.add_init_script(INTERACTIVE % json.dumps([ready for *_, ready in screens]))
        page = ctx.new_page()
        for name, path, ready in screens:
            painted, shown, wall = [], [], []
            for _ in range(15):
                t0 = time.perf_counter()
                page.goto(base + path, wait_until="commit")
                seen = page.evaluate("window.__ttInteractive")
                wall.append((time.perf_counter() - t0) * 1000)
                assert seen["sel"] == ready, seen
                painted.append(seen["painted"])
                shown.append(seen["shown"])
            rows = page.locator(ready).count()
            print(f"{name} interactive (navigation start to its {rows} rows painted, in the page): median "
                  f"{statistics.median(painted[1:]):.0f} ms, p90 {sorted(painted[1:])[int(len(painted[1:]) * 0.9)]:.0f}"
                  f" ms, first {painted[0]:.0f} ms (budget 500 ms); rows in the DOM at "
                  f"{statistics.median(shown[1:]):.0f} ms; seen from Python {statistics.median(wall[1:]):.0f} ms")
        page.evaluate(TICK_PROBE)
        page.wait_for_timeout(8000)
        lat = sorted(page.evaluate("window.__lat"))
        if lat:
            print(f"tick -> positions table: {len(lat)} updates, p50 {lat[len(lat) // 2]:.0f} ms, "
                  f"p95 {lat[int(len(lat) * 0.95)]:.0f} ms, max {lat[-1]:.0f} ms (budget 100 ms)")
        else:
            print("tick -> positions table: no tick updates seen (is the simulated feed moving?)")

        backtest_render(page, base)
        if shots is not None:
            screenshots(page, base, pid, shots)
        browser.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--screenshots", type=Path, help="write README screenshots into this folder")
    args = ap.parse_args()
    sizes()
    (ROOT / "var").mkdir(exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="webbench-", dir=ROOT / "var"))
    env = tt_env(tmp, expiry_sweep_seconds=3600, paper_tick_fills="false", tick_always_open="true", tick_interval="0.5")
    # history up to yesterday: the scene's simulated days then reach today, so its signals expire in the future
    yesterday = (date.today() - timedelta(days=1)).isoformat()
    run_cli(env, "data", "generate", "--universe", "nifty_100", "--from", "2022-01-01", "--to", yesterday)
    server = Server(env, tmp / "serve.log").start()
    try:
        s = sign_in(server.url, tmp / "var")
        pid = scene(server.url, server.env, s)
        cookie = next(c for c in s.cookies if c.name == "kite_session")
        jar = {"name": cookie.name, "value": cookie.value or "", "url": server.url}
        measure(server.url, jar, pid, args.screenshots)
    except Exception:
        print((tmp / "serve.log").read_text()[-4000:], file=sys.stderr)
        raise
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
