from datetime import date

import numpy as np
import pyarrow.dataset as ds
import pytest

from domain.calendar import nse_calendar
from infra.bars.store import BarStore, MissingSymbolsError, clear_cache
from infra.bars.synthetic import generate
from infra.bars.universes import load_universe


def bar(symbol, day, close, volume=1000, **extra):
    row = {
        "symbol": symbol,
        "date": day,
        "open": close - 1,
        "high": close + 2,
        "low": close - 2,
        "close": close,
        "volume": volume,
    }
    row.update(extra)
    return row


ROWS = [
    bar("AAA", date(2024, 1, 1), 100.0),
    bar("AAA", date(2024, 1, 2), 101.0),
    bar("AAA", date(2024, 1, 3), 102.0),
    bar("BBB", date(2024, 1, 2), 50.0),
    bar("BBB", date(2024, 1, 3), 51.0),
    bar("AAA", date(2025, 1, 1), 110.0),
]


@pytest.fixture
def store(tmp_path):
    s = BarStore(tmp_path)
    s.write(ROWS)
    return s


def test_read_after_write_returns_the_written_bars_aligned_on_dates(store):
    m = store.read(["AAA", "BBB"])
    assert m.symbols == ("AAA", "BBB")
    assert m.dates.astype(str).tolist() == ["2024-01-01", "2024-01-02", "2024-01-03", "2025-01-01"]
    np.testing.assert_array_equal(m.close[0], [100.0, 101.0, 102.0, 110.0])
    np.testing.assert_array_equal(m.high[0], [102.0, 103.0, 104.0, 112.0])
    np.testing.assert_array_equal(m.volume[0], [1000.0] * 4)


def test_read_when_symbol_has_no_bar_that_day_gives_nan_and_zero_volume(store):
    m = store.read(["AAA", "BBB"])
    assert np.isnan(m.close[1, 0]) and np.isnan(m.open[1, 0]) and np.isnan(m.low[1, 0])
    assert m.volume[1, 0] == 0.0
    assert np.isnan(m.close[1, 3])
    assert m.close[1, 1] == 50.0


def test_read_with_date_range_includes_both_ends_only(store):
    m = store.read(["AAA", "BBB"], "2024-01-02", date(2024, 1, 3))
    assert m.dates.astype(str).tolist() == ["2024-01-02", "2024-01-03"]
    np.testing.assert_array_equal(m.close, [[101.0, 102.0], [50.0, 51.0]])


def test_read_with_calendar_has_every_trading_day_and_drops_others(tmp_path):
    s = BarStore(tmp_path)
    # 2024-03-23 is a Saturday: not on the calendar
    s.write([bar("AAA", date(2024, 3, 21), 10.0), bar("AAA", date(2024, 3, 23), 11.0)])
    m = s.read(["AAA"], "2024-03-21", "2024-03-26", calendar=nse_calendar())
    assert m.dates.astype(str).tolist() == ["2024-03-21", "2024-03-22", "2024-03-26"]
    assert m.close[0, 0] == 10.0
    assert np.isnan(m.close[0, 1:]).all()


def test_read_with_unknown_symbol_raises_naming_it_unless_nan_asked(store):
    with pytest.raises(MissingSymbolsError, match="ZZZ"):
        store.read(["AAA", "ZZZ"])
    m = store.read(["ZZZ", "AAA"], missing="nan")
    assert np.isnan(m.close[0]).all()
    assert m.close[1, 0] == 100.0


def test_read_with_sector_mapping_fills_sectors_in_symbol_order(store):
    m = store.read(["BBB", "AAA"], sectors={"AAA": "Power"})
    assert m.sectors == ("Unknown", "Power")


def test_write_same_rows_again_changes_nothing(store, tmp_path):
    fingerprint = store.fingerprint()
    files = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "bars" / "daily").iterdir()}
    result = store.write(ROWS)
    assert (result.inserted, result.updated, result.unchanged) == (0, 0, len(ROWS))
    assert store.fingerprint() == fingerprint
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "bars" / "daily").iterdir()} == files


def test_write_changed_value_updates_bar_and_fingerprint(store):
    before = store.fingerprint()
    result = store.write([bar("AAA", date(2024, 1, 2), 105.0)])
    assert (result.inserted, result.updated) == (0, 1)
    assert store.read(["AAA"], "2024-01-02", "2024-01-02").close[0, 0] == 105.0
    assert store.fingerprint() != before


def test_fingerprint_depends_on_content_not_on_write_history(tmp_path):
    one, two = BarStore(tmp_path / "one"), BarStore(tmp_path / "two")
    one.write(ROWS)
    two.write(ROWS[3:])
    two.write(ROWS[:3])
    assert one.fingerprint() == two.fingerprint()


def test_write_invalid_bar_raises_and_stores_nothing(tmp_path):
    s = BarStore(tmp_path)
    bad = bar("AAA", date(2024, 1, 2), 100.0, high=99.0)
    with pytest.raises(ValueError, match="AAA on 2024-01-02"):
        s.write([ROWS[0], bad])
    assert s.is_empty()
    with pytest.raises(ValueError, match="Duplicate"):
        s.write([ROWS[0], ROWS[0]])


def test_manifest_records_coverage_and_last_date(store, tmp_path):
    cov = store.coverage("AAA")
    assert (cov.first, cov.last, cov.rows) == (date(2024, 1, 1), date(2025, 1, 1), 4)
    assert store.coverage("NOPE") is None
    assert store.symbols() == ["AAA", "BBB"]
    assert store.last_date() == date(2025, 1, 1)
    assert (tmp_path / "bars" / "manifest.json").exists()


def test_data_survives_a_new_process(store, tmp_path):
    fingerprint = store.fingerprint()
    clear_cache()
    again = BarStore(tmp_path)
    assert again.fingerprint() == fingerprint
    np.testing.assert_array_equal(again.read(["AAA"]).close, store.read(["AAA"]).close)


def test_second_store_object_sees_writes_of_the_first(store, tmp_path):
    other = BarStore(tmp_path)
    assert other.read(["AAA"]).n_days == 4
    store.write([bar("AAA", date(2025, 1, 2), 111.0)])
    assert other.read(["AAA"]).n_days == 5


def test_dataset_is_plain_parquet_with_documented_schema(store):
    table = ds.dataset(store.dataset_dir, format="parquet").to_table()
    assert table.num_rows == len(ROWS)
    assert table.schema.names == ["symbol", "date", "open", "high", "low", "close", "volume", "adj_factor"]
    assert str(table.schema.field("date").type) == "date32[day]"


def test_apply_split_adjusts_history_so_no_fake_gap_appears(tmp_path):
    s = BarStore(tmp_path)
    # 1:2 split effective 2024-01-03: raw price halves overnight
    s.write(
        [
            bar("AAA", date(2024, 1, 1), 200.0, volume=100),
            bar("AAA", date(2024, 1, 2), 202.0, volume=100),
            bar("AAA", date(2024, 1, 3), 101.0, volume=200),
        ]
    )
    assert s.apply_split("AAA", "2024-01-03", 2) == 2
    adjusted = s.read(["AAA"])
    np.testing.assert_allclose(adjusted.close[0], [100.0, 101.0, 101.0])
    np.testing.assert_allclose(adjusted.volume[0], [200.0, 200.0, 200.0])
    np.testing.assert_allclose(s.read(["AAA"], adjusted=False).close[0], [200.0, 202.0, 101.0])
    # re-importing the raw rows (no adj_factor column) keeps the recorded split
    result = s.write([bar("AAA", date(2024, 1, 1), 200.0, volume=100)])
    assert result.unchanged == 1
    np.testing.assert_allclose(s.read(["AAA"]).close[0], [100.0, 101.0, 101.0])


def test_write_with_adj_factor_column_applies_it(tmp_path):
    s = BarStore(tmp_path)
    s.write([bar("AAA", date(2024, 1, 1), 200.0, adj_factor=0.5), bar("AAA", date(2024, 1, 2), 100.0)])
    np.testing.assert_allclose(s.read(["AAA"]).close[0], [100.0, 100.0])
    assert [r["adj_factor"] for r in s.read_symbol("AAA", adjusted=False)] == [0.5, 1.0]


def test_append_days_on_or_before_last_day_is_refused(store):
    with pytest.raises(ValueError, match="not after its last stored day"):
        store.append_days([bar("AAA", date(2024, 12, 31), 100.0)])
    result = store.append_days([bar("AAA", date(2025, 1, 2), 111.0), bar("CCC", date(2020, 1, 1), 5.0)])
    assert result.inserted == 2
    assert store.last_date() == date(2025, 1, 2)


def test_write_replace_mode_deletes_rows_not_given(store):
    result = store.write([bar("BBB", date(2024, 1, 3), 51.0)], mode="replace")
    assert (result.deleted, result.unchanged) == (1, 1)
    assert store.coverage("BBB").rows == 1
    assert store.coverage("AAA").rows == 4


def test_read_symbol_returns_bars_in_range_and_unknown_is_key_error(store):
    rows = store.read_symbol("AAA", "2024-01-02", "2024-01-03")
    assert [r["date"] for r in rows] == [date(2024, 1, 2), date(2024, 1, 3)]
    assert rows[0]["close"] == 101.0 and rows[0]["volume"] == 1000
    assert store.read_symbol("AAA", "2023-01-01", "2023-12-31") == []
    with pytest.raises(KeyError):
        store.read_symbol("ZZZ")


def test_last_bars_before_a_date_gives_latest_earlier_bar(store):
    assert store.last_bars(["AAA", "BBB", "ZZZ"])["AAA"]["close"] == 110.0
    before = store.last_bars(["AAA", "BBB"], before=date(2024, 1, 3))
    assert before["AAA"]["close"] == 101.0 and before["BBB"]["close"] == 50.0
    assert store.last_bars(["BBB"], before=date(2024, 1, 2)) == {}


def test_read_nifty_100_six_years_warm_gives_the_cold_answer(tmp_path):
    # Speed of the warm read is measured by bench/bars.py, not asserted here.
    s = BarStore(tmp_path)
    universe = load_universe("nifty_100")
    generate(s, universe, "2020-01-01", "2026-01-01")
    cold = s.read(universe.symbols, "2020-01-01", "2026-01-01")
    warm = s.read(universe.symbols, "2020-01-01", "2026-01-01")
    assert warm.close.shape == (100, nse_calendar().count_trading_days(date(2020, 1, 1), date(2026, 1, 1)))
    assert (warm.close == cold.close).all() and (warm.open == cold.open).all()
