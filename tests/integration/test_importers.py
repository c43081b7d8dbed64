import argparse
import gzip
import zipfile
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from backtest.cli import register
from infra.bars.importers import ImportFormatError, Rejection, import_csv
from infra.bars.store import BarStore

LONG_CSV = """symbol,date,open,high,low,close,volume
INFY,2024-01-01,1500,1520,1490,1510.5,100000
INFY,2024-01-02,1510,1530,1500,1525,120000
TCS,2024-01-01,3700,3750,3690,3740,50000
TCS,2024-01-02,3740,3760,3720,3725.25,55000
"""

OLD_BHAV = """SYMBOL,SERIES,OPEN,HIGH,LOW,CLOSE,LAST,PREVCLOSE,TOTTRDQTY,TOTTRDVAL,TIMESTAMP,TOTALTRADES,ISIN,
RELIANCE,EQ,2580,2600,2570,2590.5,2591,2575,1234567,3190000000,02-JAN-2024,98765,INE002A01018,
RELIANCE,BL,2580,2580,2580,2580,1000,2575,1000,2580000,02-JAN-2024,1,INE002A01018,
INFY,EQ,1600,1610,1590,1605,1605,1598,765432,1228000000,02-JAN-2024,54321,INE009A01021,
SGBJAN29,GB,6000,6010,5990,6005,6005,6000,10,60050,02-JAN-2024,5,IN0020200203,
"""

UDIFF_HEADER = (
    "TradDt,BizDt,Sgmt,Src,FinInstrmTp,FinInstrmId,ISIN,TckrSymb,SctySrs,XpryDt,FininstrmActlXpryDt,"
    "StrkPric,OptnTp,FinInstrmNm,OpnPric,HghPric,LwPric,ClsPric,LastPric,PrvsClsgPric,UndrlygPric,"
    "SttlmPric,OpnIntrst,ChngInOpnIntrst,TtlTradgVol,TtlTrfVal,TtlNbOfTxsExctd,SsnId,NewBrdLotQty,"
    "Rmks,Rsvd1,Rsvd2,Rsvd3,Rsvd4"
)
UDIFF = (
    UDIFF_HEADER + "\n" + "2024-07-08,2024-07-08,CM,NSE,STK,2885,INE002A01018,RELIANCE,EQ,,,,,RELIANCE INDUSTRIES LTD,"
    "3200.00,3220.00,3180.00,3210.50,3211.00,3190.00,,3210.50,,,5123456,16400000000.00,123456,F1,1,,,,,\n"
    + "2024-07-08,2024-07-08,CM,NSE,STK,1594,INE009A01021,INFY,EQ,,,,,INFOSYS LIMITED,"
    "1650.00,1665.00,1640.00,1660.00,1660.00,1648.00,,1660.00,,,3456789,5730000000.00,98765,F1,1,,,,,\n"
    + "2024-07-08,2024-07-08,CM,NSE,STK,9999,INE000000000,SOMEBOND,N1,,,,,SOME BOND,"
    "1000.00,1000.00,1000.00,1000.00,1000.00,1000.00,,1000.00,,,10,10000.00,1,F1,1,,,,,\n"
)


def rows_of(store: BarStore, symbol: str) -> int:
    coverage = store.coverage(symbol)
    assert coverage is not None, f"no bars stored for {symbol}"
    return coverage.rows


def write(path, text):
    path.write_text(text)
    return path


def test_import_long_csv_stores_every_row(tmp_path):
    store = BarStore(tmp_path / "data")
    report = import_csv(store, [write(tmp_path / "bars.csv", LONG_CSV)])
    assert (report.rows_read, report.imported, report.unchanged, report.rejected) == (4, 4, 0, [])
    m = store.read(["INFY", "TCS"])
    np.testing.assert_array_equal(m.close, [[1510.5, 1525.0], [3740.0, 3725.25]])
    np.testing.assert_array_equal(m.volume[1], [50000.0, 55000.0])


def test_import_same_file_again_imports_nothing_new(tmp_path):
    store = BarStore(tmp_path / "data")
    path = write(tmp_path / "bars.csv", LONG_CSV)
    import_csv(store, [path])
    fingerprint = store.fingerprint()
    again = import_csv(store, [path])
    assert (again.rows_read, again.imported, again.unchanged) == (4, 0, 4)
    assert store.fingerprint() == fingerprint


def test_import_per_symbol_file_takes_symbol_from_file_name(tmp_path):
    store = BarStore(tmp_path / "data")
    text = "Date,Open,High,Low,Close,Volume\n2024-01-01,10,11,9,10.5,100\n02-01-2024,10.5,12,10,11,200\n"
    report = import_csv(store, [write(tmp_path / "HDFCBANK.NS.csv", text)])
    assert report.imported == 2
    assert store.symbols() == ["HDFCBANK"]
    assert store.read_symbol("HDFCBANK")[-1]["date"] == date(2024, 1, 2)  # 02-01-2024 is day-first


def test_import_classic_bhavcopy_keeps_series_eq_only(tmp_path):
    store = BarStore(tmp_path / "data")
    report = import_csv(store, [write(tmp_path / "cm02JAN2024bhav.csv", OLD_BHAV)])
    assert (report.rows_read, report.imported, report.skipped, report.rejected) == (4, 2, 2, [])
    assert store.symbols() == ["INFY", "RELIANCE"]
    [row] = store.read_symbol("RELIANCE")
    assert (row["date"], row["close"], row["volume"]) == (date(2024, 1, 2), 2590.5, 1234567)


def test_import_udiff_bhavcopy_keeps_series_eq_only(tmp_path):
    store = BarStore(tmp_path / "data")
    path = write(tmp_path / "BhavCopy_NSE_CM_0_0_0_20240708_F_0000.csv", UDIFF)
    report = import_csv(store, [path])
    assert (report.imported, report.skipped) == (2, 1)
    [row] = store.read_symbol("INFY")
    assert (row["date"], row["open"], row["high"], row["low"], row["close"], row["volume"]) == (
        date(2024, 7, 8),
        1650.0,
        1665.0,
        1640.0,
        1660.0,
        3456789,
    )


def test_import_zipped_and_gzipped_bhavcopies(tmp_path):
    store = BarStore(tmp_path / "data")
    archive = tmp_path / "BhavCopy_NSE_CM_0_0_0_20240708_F_0000.csv.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("BhavCopy_NSE_CM_0_0_0_20240708_F_0000.csv", UDIFF)
    gz = tmp_path / "cm02JAN2024bhav.csv.gz"
    gz.write_bytes(gzip.compress(OLD_BHAV.encode()))
    report = import_csv(store, [tmp_path])  # a folder: every supported file in it
    assert report.imported == 4
    assert rows_of(store, "RELIANCE") == 2


def test_import_bad_rows_are_rejected_with_line_and_reason(tmp_path):
    store = BarStore(tmp_path / "data")
    text = (
        "symbol,date,open,high,low,close,volume\n"  # line 1
        "INFY,2024-01-01,1500,1520,1490,1510,100\n"  # 2 ok
        "INFY,2024-01-02,1500,1490,1480,1485,100\n"  # 3 high below open
        "INFY,2024-01-03,1500,1520,1490,1510,-5\n"  # 4 negative volume
        "INFY,2024-01-06,1500,1520,1490,1510,100\n"  # 5 Saturday
        "INFY,2024-01-01,1501,1520,1490,1510,100\n"  # 6 duplicate of line 2
        "INFY,2024-01-04,abc,1520,1490,1510,100\n"  # 7 not a number
        "INFY,2024-03-25,1500,1520,1490,1510,100\n"  # 8 Holi
        "INFY,2024-01-05,0,1520,1490,1510,100\n"  # 9 non-positive
        "INFY,5th Jan,1500,1520,1490,1510,100\n"  # 10 unreadable date
        "INFY,2024-01-08,1500,1520,1505,1510,100\n"  # 11 low above open
    )
    report = import_csv(store, [write(tmp_path / "bars.csv", text)])
    assert report.rows_read == 10 and report.imported == 1
    by_line = {r.row: r for r in report.rejected}
    assert sorted(by_line) == [3, 4, 5, 6, 7, 8, 9, 10, 11]
    assert all(r.file == "bars.csv" for r in report.rejected)
    assert "high 1490 is below" in by_line[3].reason
    assert "negative volume" in by_line[4].reason
    assert "not a trading day (Saturday)" in by_line[5].reason
    assert "duplicate" in by_line[6].reason and "line 2" in by_line[6].reason
    assert "unreadable open" in by_line[7].reason
    assert "holiday" in by_line[8].reason
    assert "non-positive" in by_line[9].reason
    assert "unreadable date" in by_line[10].reason
    assert "low 1505 is above" in by_line[11].reason
    assert report.rejected[0] == Rejection("bars.csv", 3, by_line[3].reason)
    assert rows_of(store, "INFY") == 1


def test_import_parquet_long_file(tmp_path):
    store = BarStore(tmp_path / "data")
    table = pa.table(
        {
            "symbol": ["SBIN", "SBIN"],
            "date": [date(2024, 1, 1), date(2024, 1, 2)],
            "open": [600.0, 610.0],
            "high": [615.0, 620.0],
            "low": [595.0, 605.0],
            "close": [610.0, 615.0],
            "volume": [1000, 2000],
            "adj_factor": [0.5, 1.0],
        }
    )
    pq.write_table(table, tmp_path / "sbin.parquet")
    report = import_csv(store, [tmp_path / "sbin.parquet"])
    assert report.imported == 2
    np.testing.assert_allclose(store.read(["SBIN"]).close[0], [305.0, 615.0])


def test_import_unrecognised_file_raises_and_imports_nothing(tmp_path):
    store = BarStore(tmp_path / "data")
    good = write(tmp_path / "a.csv", LONG_CSV)
    bad = write(tmp_path / "b.csv", "name,price,when,qty,x\nfoo,1,2,3,4\n")
    with pytest.raises(ImportFormatError, match=r"b\.csv.*unrecognised columns"):
        import_csv(store, [good, bad])
    assert store.is_empty()


def test_import_missing_path_raises_naming_it(tmp_path):
    with pytest.raises(ImportFormatError, match=r"nope\.csv"):
        import_csv(BarStore(tmp_path), [tmp_path / "nope.csv"])


def test_cli_import_csv_reports_counts_and_rejections(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="tradertape")
    register(parser.add_subparsers(dest="command", required=True))
    bad_row = "INFY,2024-01-06,1500,1520,1490,1510,100\n"  # a Saturday
    path = write(tmp_path / "bars.csv", LONG_CSV + bad_row)
    args = parser.parse_args(["data", "import-csv", str(path), "--data-dir", str(tmp_path / "data")])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "bars.csv:6" in out and "not a trading day" in out
    assert rows_of(BarStore(tmp_path / "data"), "INFY") == 2
