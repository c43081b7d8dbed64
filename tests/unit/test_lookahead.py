"""Look-ahead and recursion checks (backtest/research/lookahead.py): a leak is caught, the templates are clean."""

from __future__ import annotations

import numpy as np
import pytest

from backtest.engine import BacktestConfig
from backtest.research.lookahead import LookaheadSettings, lookahead_check
from domain.bars import BarMatrix
from domain.base_models import BASE_MODELS
from domain.errors import DomainError
from domain.indicators import FloatMatrix, IndicatorCache
from domain.rules import Indicator

CFG = BacktestConfig(start_date="2021-01-01", end_date="2022-06-30", starting_capital=1_000_000,
                     position_size_pct=10, max_positions=8)


def bars(n_symbols: int = 12, seed: int = 3) -> BarMatrix:
    rng = np.random.default_rng(seed)
    dates = np.arange(np.datetime64("2019-06-03"), np.datetime64("2022-07-01"), dtype="datetime64[D]")
    dates = dates[np.is_busday(dates)]
    n = len(dates)
    close = np.round(100 * np.exp(np.cumsum(rng.normal(0.0003, 0.02, (n_symbols, n)), axis=1)), 2)
    open_ = np.round(close * (1 + rng.normal(0, 0.006, close.shape)), 2)
    high = np.round(np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.008, close.shape))), 2)
    low = np.round(np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.008, close.shape))), 2)
    volume = np.round(rng.lognormal(12, 0.6, close.shape))
    return BarMatrix(symbols=tuple(f"S{i:02d}" for i in range(n_symbols)), dates=dates, open=open_, high=high,
                     low=low, close=close, volume=volume, sectors=tuple(f"X{i % 3}" for i in range(n_symbols)))


BARS = bars()


class PeekingCache(IndicatorCache):
    """SMA 'centred' on the day: the mean of the window ending 3 bars *after* it -- a classic leak (a
    centred moving average, or a resample joined without shifting)."""

    def _compute(self, ind: Indicator) -> FloatMatrix:
        out = super()._compute(ind)
        if ind.name == "sma":
            peek = np.full_like(out, np.nan)
            peek[:, :-3] = out[:, 3:]
            return peek
        return out


@pytest.mark.parametrize("base_model", sorted(BASE_MODELS))
def test_every_template_is_reported_clean(base_model: str) -> None:
    report = lookahead_check(BARS, {"base_model": base_model}, CFG, LookaheadSettings(cuts=4, seed=1))
    assert report["clean"], report["findings"][:3]
    assert report["findings"] == [] and set(report["differences"].values()) == {0}
    assert len(report["cuts"]) == 4 and report["cuts"] == sorted(report["cuts"])
    assert all("2021-01-01" < c < "2022-06-30" for c in report["cuts"])


def test_a_peeking_indicator_is_caught_with_the_day_and_what_changed() -> None:
    strategy = {"base_model": "sma_crossover"}
    report = lookahead_check(BARS, strategy, CFG, LookaheadSettings(cuts=3, seed=2),
                             cache_factory=PeekingCache)
    assert not report["clean"]
    diff = report["differences"]
    # the last 3 days before every cut read bars the cut run does not have
    assert diff["indicator"] > 0 and diff["entry_signal"] + diff["exit_signal"] > 0
    found = report["findings"]
    sma = [f for f in found if f["what"] == "indicator"]
    assert {f["name"] for f in sma} <= {"sma(10)", "sma(30)"} and sma
    for f in found:
        assert f["date"] <= f["cut"]  # every finding is about a day the cut run knows
    # the values a leak produced before the cut are given both ways
    first = sma[0]
    assert first["full"] is not None and first["full"] != first["cut_value"]
    # the same check with the honest cache finds nothing: the leak is the cache's
    assert lookahead_check(BARS, strategy, CFG, LookaheadSettings(cuts=3, seed=2))["clean"]


def test_a_leak_changes_trades_before_the_cut() -> None:
    """Over enough cuts a peeking SMA moves entries or exits, and the report says which."""
    report = lookahead_check(BARS, {"base_model": "sma_crossover"}, CFG, LookaheadSettings(cuts=12, seed=4),
                             cache_factory=PeekingCache)
    assert report["differences"]["entry"] + report["differences"]["exit"] + report["differences"]["equity"] > 0
    trade = next(f for f in report["findings"] if f["what"] in ("entry", "exit"))
    assert trade["symbol"] in BARS.symbols and trade["full"] != trade["cut_value"]


def test_recursion_shows_recursive_indicators_depend_on_the_start_and_sma_does_not() -> None:
    rsi_rules = {"all": [{"left": {"ind": "rsi", "period": 14}, "op": "<", "right": 40},
                         {"left": {"ind": "ema", "period": 50}, "op": "<", "right": {"ind": "close"}},
                         {"left": {"ind": "sma", "period": 20}, "op": "<", "right": {"ind": "close"}}]}
    strategy = {"base_model": "v3_dip_buyer", "entry_rules": rsi_rules}
    report = lookahead_check(BARS, strategy, CFG, LookaheadSettings(cuts=1, warmup_days=(30, 60, 300)))
    assert report["clean"]
    too_short, short, long_ = report["recursion"]
    assert [r["warmup_days"] for r in report["recursion"]] == [30, 60, 300]
    # 30 days cannot seed EMA(50): the window's first days have no value at all
    assert {r["name"]: r for r in too_short["indicators"]}["ema(50)"]["missing_values"] > 0
    by_name = {r["name"]: r for r in short["indicators"]}
    assert by_name["sma(20)"]["max_diff_pct"] == 0.0 and by_name["sma(20)"]["missing_values"] == 0
    assert by_name["ema(50)"]["max_diff_pct"] > 0 and by_name["rsi(14)"]["max_diff_pct"] > 0
    assert by_name["ema(50)"]["symbol"] in BARS.symbols and by_name["ema(50)"]["date"] >= "2021-01-01"
    long_by_name = {r["name"]: r for r in long_["indicators"]}
    # more warm-up, closer to the full history
    assert long_by_name["ema(50)"]["max_diff_pct"] < by_name["ema(50)"]["max_diff_pct"]
    assert short["entry_signals_changed"] >= long_["entry_signals_changed"]


def test_cuts_are_seeded() -> None:
    s = {"base_model": "bollinger_reversion"}
    a = lookahead_check(BARS, s, CFG, LookaheadSettings(cuts=3, seed=7, warmup_days=()))
    b = lookahead_check(BARS, s, CFG, LookaheadSettings(cuts=3, seed=7, warmup_days=()))
    c = lookahead_check(BARS, s, CFG, LookaheadSettings(cuts=3, seed=8, warmup_days=()))
    assert a == b and a["cuts"] != c["cuts"]


@pytest.mark.parametrize("kw, message", [
    ({"cuts": 0}, "cuts"), ({"cuts": 51}, "cuts"), ({"seed": -1}, "seed"), ({"warmup_days": (-1,)}, "warmup_days"),
])
def test_bad_settings_say_what_to_change(kw: dict[str, object], message: str) -> None:
    with pytest.raises(DomainError, match=message):
        lookahead_check(BARS, {"base_model": "sma_crossover"}, CFG, LookaheadSettings(**kw))  # type: ignore[arg-type]


def test_a_window_too_short_to_cut_is_refused() -> None:
    short = BacktestConfig(start_date="2022-06-28", end_date="2022-06-29", starting_capital=100_000)
    with pytest.raises(DomainError, match="at least 3 trading days"):
        lookahead_check(BARS, {"base_model": "sma_crossover"}, short)


def test_the_cli_text_names_each_finding_and_recursion_row() -> None:
    import json
    import re

    from backtest.research.jobs import TextTable
    from backtest.research.robustness import LOOKAHEAD

    report = lookahead_check(BARS, {"base_model": "sma_crossover"}, CFG,
                             LookaheadSettings(cuts=2, seed=2, warmup_days=(40,)), cache_factory=PeekingCache)
    findings = [{**f, "full": json.dumps(f["full"]), "cut_value": json.dumps(f["cut_value"])}
                for f in report["findings"]]
    recursion = [{"warmup_days": r["warmup_days"], "entry_signals_changed": r["entry_signals_changed"], **ind}
                 for r in report["recursion"] for ind in r["indicators"]]
    *lines, table = LOOKAHEAD.render(report, {"findings": findings, "recursion": recursion})
    assert all(isinstance(ln, str) for ln in lines) and isinstance(table, TextTable)
    text = [str(ln) for ln in lines]
    assert text[0].startswith(f"Look-ahead: FOUND DIFFERENCES over 2 cuts ({', '.join(report['cuts'])}): indicator ")
    first = report["findings"][0]
    assert text[1].startswith(f"  cut {first['cut']}: {first['what']} ")
    assert len([ln for ln in text if ln.startswith("  cut ")]) == min(20, len(findings))
    # the recursion check: a row per indicator and warm-up, the change to two decimals
    assert table.headers == ["warm-up days", "indicator", "largest change %", "entry signals changed"]
    assert [r[:2] for r in table.rows] == [[str(r["warmup_days"]), r["name"]] for r in recursion]
    assert {r[1] for r in table.rows} == {"sma(10)", "sma(30)"}  # the crossover's two SMAs
    assert all(r[2] == "no value" or re.fullmatch(r"[\d,]+\.\d\d", r[2]) for r in table.rows)
