"""import_kite against a stub of Kite Connect's REST API, driven by the official client."""

import json
import threading
from datetime import date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
from kiteconnect import KiteConnect

from domain.calendar import nse_calendar
from infra.bars.store import BarStore
from infra.kite.historical import KiteImportError, import_kite

API_KEY, ACCESS_TOKEN = "stubkey", "stubtoken"
INSTRUMENTS_CSV = (
    "instrument_token,exchange_token,tradingsymbol,name,last_price,expiry,strike,tick_size,lot_size,"
    "instrument_type,segment,exchange\n"
    "408065,1594,INFY,INFOSYS,0.0,,0.0,0.05,1,EQ,NSE,NSE\n"
    "2953217,11536,TCS,TATA CONSULTANCY SERV LT,0.0,,0.0,0.05,1,EQ,NSE,NSE\n"
    "256265,1001,NIFTY 50,NIFTY 50,0,,0,0,0,EQ,INDICES,NSE\n"
    "12073986,47164,BANKNIFTY18JAN23500CE,,2528.4,2018-01-25,23500.0,0.05,40,CE,NFO-OPT,NFO\n"
)
BAD_DAY = date(2024, 1, 3)  # the stub serves an inconsistent TCS candle that day
CAL = nse_calendar()


class KiteStub(BaseHTTPRequestHandler):
    requests: list[tuple[int, datetime, datetime]] = []

    def log_message(self, *args):  # keep pytest output clean
        pass

    def _send(self, status, body, content_type):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.headers.get("Authorization") != f"token {API_KEY}:{ACCESS_TOKEN}":
            error = {
                "status": "error",
                "message": "Incorrect `api_key` or `access_token`.",
                "error_type": "TokenException",
            }
            return self._send(403, json.dumps(error), "application/json")
        url = urlparse(self.path)
        if url.path == "/instruments/NSE":
            return self._send(200, INSTRUMENTS_CSV, "text/csv")
        parts = url.path.strip("/").split("/")
        if parts[:2] == ["instruments", "historical"] and parts[3] == "day":
            token = int(parts[2])
            query = parse_qs(url.query)
            start = datetime.strptime(query["from"][0], "%Y-%m-%d %H:%M:%S")
            end = datetime.strptime(query["to"][0], "%Y-%m-%d %H:%M:%S")
            type(self).requests.append((token, start, end))
            candles = [_candle(token, d) for d in CAL.trading_days(start.date(), end.date())]
            body = json.dumps({"status": "success", "data": {"candles": candles}})
            return self._send(200, body, "application/json")
        return self._send(404, json.dumps({"status": "error", "message": "not found"}), "application/json")


def rows_of(store: BarStore, symbol: str) -> int:
    coverage = store.coverage(symbol)
    assert coverage is not None, f"no bars stored for {symbol}"
    return coverage.rows


def _candle(token, day):
    base = 100.0 + (token % 97) + (day.toordinal() % 50)
    low, high = base - 2, base + 2
    if token == 2953217 and day == BAD_DAY:
        high = base - 5  # high below the close: must be rejected
    return [f"{day.isoformat()}T00:00:00+0530", base - 1, high, low, base, 1000 + day.day]


@pytest.fixture
def kite():
    KiteStub.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), KiteStub)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    root = f"http://127.0.0.1:{server.server_address[1]}"
    yield KiteConnect(api_key=API_KEY, access_token=ACCESS_TOKEN, root=root)
    server.shutdown()
    server.server_close()


def test_import_kite_long_range_is_fetched_in_chunks_of_at_most_2000_days(kite, tmp_path):
    store = BarStore(tmp_path)
    start, end = date(2015, 1, 1), date(2024, 12, 31)
    report = import_kite(store, kite, ["INFY", "NIFTY50"], start, end, min_interval=0)
    assert report.rejected == []
    spans = [(s.date(), e.date()) for token, s, e in KiteStub.requests if token == 408065]
    assert len(spans) == 2
    assert all((e - s).days + 1 <= 2000 for s, e in spans)
    assert spans[0][0] == start and spans[-1][1] == end and (spans[1][0] - spans[0][1]).days == 1
    trading_days = CAL.count_trading_days(start, end)
    assert rows_of(store, "INFY") == trading_days
    assert rows_of(store, "NIFTY50") == trading_days  # the index is stored under its space-free name
    assert report.imported == 2 * trading_days


def test_import_kite_candle_dates_are_the_ist_trading_day(kite, tmp_path):
    store = BarStore(tmp_path)
    import_kite(store, kite, ["INFY"], date(2024, 1, 1), date(2024, 1, 5), min_interval=0)
    rows = store.read_symbol("INFY")
    assert [r["date"] for r in rows] == CAL.trading_days(date(2024, 1, 1), date(2024, 1, 5))
    assert rows[0]["close"] == _candle(408065, date(2024, 1, 1))[4]


def test_import_kite_again_imports_nothing_new(kite, tmp_path):
    store = BarStore(tmp_path)
    import_kite(store, kite, ["INFY"], date(2024, 1, 1), date(2024, 3, 31), min_interval=0)
    again = import_kite(store, kite, ["INFY"], date(2024, 1, 1), date(2024, 3, 31), min_interval=0)
    assert again.imported == 0
    assert again.unchanged == again.rows_read > 0


def test_import_kite_unknown_symbol_is_reported_and_others_imported(kite, tmp_path):
    store = BarStore(tmp_path)
    report = import_kite(store, kite, ["NOSUCH", "infy"], date(2024, 1, 1), date(2024, 1, 31), min_interval=0)
    assert [(r.file, r.row) for r in report.rejected] == [("kite:NOSUCH", 0)]
    assert "NOSUCH" in report.rejected[0].reason
    assert store.symbols() == ["INFY"]


def test_import_kite_inconsistent_candle_is_rejected_with_its_number(kite, tmp_path):
    store = BarStore(tmp_path)
    report = import_kite(store, kite, ["TCS"], date(2024, 1, 1), date(2024, 1, 5), min_interval=0)
    [rejection] = report.rejected
    assert rejection.file == "kite:TCS" and rejection.row == 3  # candles of 1, 2, 3 January
    assert "high" in rejection.reason
    assert rows_of(store, "TCS") == 4  # the other four trading days


def test_import_kite_with_prefetched_instruments_skips_the_dump(kite, tmp_path):
    instruments = kite.instruments("NSE")
    KiteStub.requests = []
    report = import_kite(
        BarStore(tmp_path), kite, ["INFY"], date(2024, 1, 1), date(2024, 1, 5), instruments, min_interval=0
    )
    assert report.imported == 5
    assert [token for token, _, _ in KiteStub.requests] == [408065]


def test_import_kite_with_rejected_token_stops_with_login_advice(kite, tmp_path):
    kite.set_access_token("expired")
    with pytest.raises(KiteImportError, match="Log in to Kite again"):
        import_kite(BarStore(tmp_path), kite, ["INFY"], date(2024, 1, 1), date(2024, 1, 5), min_interval=0)
