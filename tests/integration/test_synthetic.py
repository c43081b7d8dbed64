import argparse
from datetime import date

import numpy as np
import pytest

from backtest.cli import register
from domain.calendar import nse_calendar
from infra.bars.store import BarStore
from infra.bars.synthetic import extend, generate
from infra.bars.universes import custom_universe, load_universe

NIFTY_50 = load_universe("nifty_50")
CAL = nse_calendar()


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """NIFTY 100 (with both indices) over 2019-2024: enough days for volatility statistics."""
    store = BarStore(tmp_path_factory.mktemp("history"))
    generate(store, load_universe("nifty_100"), "2019-01-01", "2024-12-31", seed=7)
    return store


def _files(store):
    return {p.name: p.read_bytes() for p in sorted(store.dataset_dir.iterdir())}


def test_generate_same_seed_twice_gives_byte_identical_files(tmp_path):
    a, b = BarStore(tmp_path / "a"), BarStore(tmp_path / "b")
    generate(a, NIFTY_50, "2023-01-01", "2024-06-30", seed=42)
    generate(b, NIFTY_50, "2023-01-01", "2024-06-30", seed=42)
    assert a.fingerprint() == b.fingerprint()
    assert _files(a) == _files(b)


def test_generate_other_seed_gives_other_prices(tmp_path):
    a, b = BarStore(tmp_path / "a"), BarStore(tmp_path / "b")
    generate(a, NIFTY_50, "2024-01-01", "2024-03-31", seed=1)
    generate(b, NIFTY_50, "2024-01-01", "2024-03-31", seed=2)
    assert not np.array_equal(a.read(NIFTY_50.symbols).close, b.read(NIFTY_50.symbols).close)


def test_generate_writes_only_calendar_trading_days(history):
    m = history.read(["RELIANCE"])
    expected = CAL.trading_days_array(date(2019, 1, 1), date(2024, 12, 31))
    np.testing.assert_array_equal(m.dates, expected)


def test_generated_bars_have_consistent_ohlc_on_the_tick(history):
    u = load_universe("nifty_100")
    m = history.read(u.symbols)
    o, h, lo, c = m.open, m.high, m.low, m.close
    assert np.isfinite(c).all()
    assert (lo <= np.minimum(o, c)).all() and (h >= np.maximum(o, c)).all()
    assert (lo > 0).all() and (m.volume > 0).all()
    for field in (o, h, lo, c):
        ticks = field * 20
        np.testing.assert_allclose(ticks, np.round(ticks), atol=1e-6)


def test_generated_daily_volatility_is_realistic(history):
    u = load_universe("nifty_100")
    close = history.read(u.symbols).close
    vol = np.std(np.diff(np.log(close), axis=1), axis=1) * 100
    assert 1.2 <= float(np.median(vol)) <= 2.5
    assert vol.min() > 0.9 and vol.max() < 3.2
    index_vol = np.std(np.diff(np.log(history.read(["NIFTY50", "NIFTY100"]).close), axis=1), axis=1) * 100
    assert ((index_vol > 0.6) & (index_vol < 1.6)).all()


def test_generated_returns_have_fat_tails_gaps_and_volume_reacts_to_moves(history):
    u = load_universe("nifty_100")
    m = history.read(u.symbols)
    r = np.diff(np.log(m.close), axis=1)
    z = (r - r.mean(axis=1, keepdims=True)) / r.std(axis=1, keepdims=True)
    assert float(np.mean(z**4)) > 4.0  # a normal distribution has 3
    gaps = np.abs(np.log(m.open[:, 1:] / m.close[:, :-1]))
    assert 0.005 < float(np.mean(gaps > 0.02)) < 0.10
    corr = np.corrcoef(np.abs(r).ravel(), np.log(m.volume[:, 1:]).ravel())[0, 1]
    assert corr > 0.05


def test_generated_stocks_move_together_through_market_and_sector(history):
    u = load_universe("nifty_100")
    r = np.diff(np.log(history.read(u.symbols).close), axis=1)
    corr = np.corrcoef(r)
    sectors = np.array(u.sectors)
    same = sectors[:, None] == sectors[None, :]
    off_diagonal = ~np.eye(len(sectors), dtype=bool)
    assert 0.1 < corr[off_diagonal].mean() < 0.6
    assert corr[same & off_diagonal].mean() > corr[~same].mean() + 0.05


def test_start_prices_are_plausible(history):
    first = history.read(load_universe("nifty_100").symbols, "2019-01-01", "2019-01-01").close[:, 0]
    assert first.min() >= 45 and first.max() <= 5500
    assert np.unique(np.round(np.log10(first))).size >= 3  # spread across magnitudes


def test_index_tracks_its_members(history):
    m = history.read([*NIFTY_50.symbols, "NIFTY50"])
    members = np.diff(np.log(m.close[:-1]), axis=1).mean(axis=0)
    index = np.diff(np.log(m.close[-1]))
    assert np.corrcoef(members, index)[0, 1] > 0.9
    assert 7000 < m.close[-1, 0] < 9500  # starts near its base level
    assert (m.volume[-1] == 0).all()


def test_extend_five_then_five_equals_extend_ten(tmp_path):
    a, b = BarStore(tmp_path / "a"), BarStore(tmp_path / "b")
    for s in (a, b):
        generate(s, NIFTY_50, "2024-01-01", "2024-06-28", seed=5)
    first = extend(a, NIFTY_50, 5)
    second = extend(a, NIFTY_50, 5)
    both = extend(b, NIFTY_50, 10)
    assert first + second == both
    assert both[0] == date(2024, 7, 1) and all(CAL.is_trading_day(d) for d in both)
    assert a.fingerprint() == b.fingerprint()


def test_generate_then_extend_equals_generating_the_longer_range(tmp_path):
    stepwise, at_once = BarStore(tmp_path / "a"), BarStore(tmp_path / "b")
    generate(stepwise, NIFTY_50, "2024-01-01", "2024-03-28", seed=9)
    added = extend(stepwise, NIFTY_50, 7, seed=9)
    generate(at_once, NIFTY_50, "2024-01-01", added[-1], seed=9)
    assert stepwise.fingerprint() == at_once.fingerprint()


def test_extend_uses_the_seed_recorded_by_generate(tmp_path):
    recorded, explicit = BarStore(tmp_path / "a"), BarStore(tmp_path / "b")
    for s in (recorded, explicit):
        generate(s, NIFTY_50, "2024-01-01", "2024-02-29", seed=11)
    extend(recorded, NIFTY_50, 3)
    extend(explicit, NIFTY_50, 3, seed=11)
    assert recorded.fingerprint() == explicit.fingerprint()


def test_generate_adjacent_ranges_equals_one_range(tmp_path):
    split, whole = BarStore(tmp_path / "a"), BarStore(tmp_path / "b")
    generate(split, NIFTY_50, "2023-06-01", "2023-12-31")
    generate(split, NIFTY_50, "2024-01-01", "2024-03-31")
    generate(whole, NIFTY_50, "2023-06-01", "2024-03-31")
    assert split.fingerprint() == whole.fingerprint()


def test_extend_on_empty_store_is_refused_with_advice(tmp_path):
    with pytest.raises(ValueError, match="generate"):
        extend(BarStore(tmp_path), NIFTY_50, 5)


def test_generate_custom_universe_has_no_index_but_same_member_prices(tmp_path):
    full, small = BarStore(tmp_path / "a"), BarStore(tmp_path / "b")
    generate(full, NIFTY_50, "2024-01-01", "2024-02-29")
    generate(small, custom_universe(["INFY", "TCS"]), "2024-01-01", "2024-02-29")
    assert small.symbols() == ["INFY", "TCS"]
    # a stock's path depends on (seed, symbol, date), not on which other stocks are generated
    np.testing.assert_array_equal(full.read(["INFY", "TCS"]).close, small.read(["INFY", "TCS"]).close)


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="tradertape")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return args.func(args)


def test_cli_data_generate_writes_universe_and_info_summarises_it(tmp_path, capsys):
    code = run_cli(
        "data",
        "generate",
        "--universe",
        "nifty_50",
        "--from",
        "2024-01-01",
        "--to",
        "2024-01-31",
        "--seed",
        "3",
        "--data-dir",
        str(tmp_path),
    )
    assert code == 0
    store = BarStore(tmp_path)
    assert store.symbols() == sorted([*NIFTY_50.symbols, "NIFTY50"])
    assert store.last_date() == date(2024, 1, 31)
    assert store.meta("synthetic") == {"seed": 3, "universe": "nifty_50"}
    capsys.readouterr()
    assert run_cli("data", "info", "--data-dir", str(tmp_path)) == 0
    out = capsys.readouterr().out
    assert "2024-01-01 .. 2024-01-31" in out and "seed 3" in out


def test_cli_data_generate_with_end_before_start_fails_with_message(tmp_path, capsys):
    code = run_cli("data", "generate", "--from", "2024-02-01", "--to", "2024-01-01", "--data-dir", str(tmp_path))
    assert code == 2
    assert "before" in capsys.readouterr().out
    assert BarStore(tmp_path).is_empty()


def test_extend_past_the_holiday_table_never_trades_on_republic_day(tmp_path):
    """`sim advance` from late January 2027 (past NSE's published table) must skip 26 January."""
    store = BarStore(tmp_path / "a")
    small = custom_universe(["INFY", "TCS"], NIFTY_50)
    generate(store, small, "2027-01-18", "2027-01-22", seed=3)
    added = extend(store, small, 5)
    assert date(2027, 1, 26) not in added
    assert added == [date(2027, 1, 25), date(2027, 1, 27), date(2027, 1, 28), date(2027, 1, 29), date(2027, 2, 1)]
