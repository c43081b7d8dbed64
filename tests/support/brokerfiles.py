"""Builders of real broker files for tests and benches: Zerodha Console tradebooks and ledgers (XLSX via
openpyxl, CSV), CAMS-style and NSDL-style CAS PDFs (fpdf2, text-based tables camelot can read)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

TRADE_COLUMNS = ["Symbol", "ISIN", "Trade Date", "Exchange", "Segment", "Series", "Trade Type", "Auction",
                 "Quantity", "Price", "Trade ID", "Order ID", "Order Execution Time"]


def trade(symbol: str, day: str, side: str, qty: float, price: float, trade_id: str, time: str = "10:00:00",
          isin: str = "", order_id: str | None = None, segment: str = "EQ", exchange: str = "NSE") -> list[Any]:
    return [symbol, isin or f"INE{abs(hash(symbol)) % 10**6:06d}A01", day, exchange, segment, "EQ", side, "false",
            qty, price, trade_id, order_id or f"13000000{trade_id}", f"{day}T{time}"]


def tradebook_xlsx(rows: Sequence[Sequence[Any]], preamble: int = 8, client: str = "AB1234",
                   title_case: bool = True, footer: Sequence[Sequence[Any]] = (), column_a_blank: bool = True,
                   write_only: bool = False) -> bytes:
    """A Console-like tradebook: preamble rows (Client ID, title), the header, rows, then footer rows."""
    import openpyxl

    wb = openpyxl.Workbook(write_only=write_only)
    ws = wb.active if not write_only else wb.create_sheet("Tradebook")
    assert ws is not None
    pad = [None] if column_a_blank else []
    header = TRADE_COLUMNS if title_case else [c.lower().replace(" ", "_") for c in TRADE_COLUMNS]
    for i in range(preamble):
        if i == 0:
            ws.append([*pad, "Client ID", client])
        elif i == 2:
            ws.append([*pad, "Tradebook for Equity from 2023-04-01 to 2025-03-31"])
        else:
            ws.append([])
    ws.append([*pad, *header])
    for r in rows:
        ws.append([*pad, *r])
    for r in footer:
        ws.append([*pad, *r])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def tradebook_csv(rows: Sequence[Sequence[Any]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([c.lower().replace(" ", "_") for c in TRADE_COLUMNS])
    for r in rows:
        w.writerow(r)
    return buf.getvalue().encode()


LEDGER_COLUMNS = ["Particulars", "Posting Date", "Cost Center", "Voucher Type", "Debit", "Credit", "Net Balance"]


def ledger_xlsx(rows: Sequence[Sequence[Any]], preamble: int = 10) -> bytes:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    for i in range(preamble):
        ws.append([None, "Client ID", "AB1234"] if i == 0 else [None, "Ledger for Equity"] if i == 2 else [])
    ws.append([None, *LEDGER_COLUMNS])
    for r in rows:
        ws.append([None, *r])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def cams_pdf(folios: Sequence[dict[str, Any]], period: tuple[str, str] = ("01-Apr-2024", "31-Mar-2025"),
             password: str | None = None, marker: str = "CAMSCASWS") -> bytes:
    """folios: [{folio, amc, schemes: [{isin, name, txns: [[date, desc, amount, units, nav, balance]],
    valuation: (units, nav_date, nav, cost, value_date, value)}]}]"""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=8)
    pdf.add_page()

    def line(text: str) -> None:
        pdf.cell(0, 5, text, new_x="LMARGIN", new_y="NEXT")

    line(f"Consolidated Account Statement   {marker}")
    line(f"{period[0]} To {period[1]}")
    for f in folios:
        line(f"{f['amc']}")
        line(f"Folio No: {f['folio']}   PAN: ABCDE1234F   KYC: OK")
        for s in f["schemes"]:
            line(f"{s['isin']} - {s['name']}")
            with pdf.table(col_widths=(22, 70, 22, 22, 22, 22), first_row_as_headings=True) as t:
                for row in [["Date", "Transaction", "Amount", "Units", "NAV", "Balance"], *s["txns"]]:
                    r = t.row()
                    for c in row:
                        r.cell("" if c is None else str(c))
            u, nav_date, nav, cost, value_date, value = s["valuation"]
            line(f"Closing Unit Balance: {u}   NAV on {nav_date}: INR {nav}   Cost Value: {cost}   "
                 f"Market Value on {value_date}: INR {value}")
    if password:
        pdf.set_encryption(owner_password="owner-" + password, user_password=password)
    return bytes(pdf.output())


def nsdl_pdf(holdings: Sequence[Sequence[Any]], as_on: str = "31-Mar-2025", password: str | None = None) -> bytes:
    """holdings: [[isin, name, quantity, price, value]] as text lines."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=8)
    pdf.add_page()
    for text in ["NSDL Consolidated Account Statement", f"Statement for the period 01-Mar-2025 To {as_on}",
                 "ISIN  Security  Current Bal.  Market Price  Value"]:
        pdf.cell(0, 5, text, new_x="LMARGIN", new_y="NEXT")
    for h in holdings:
        pdf.cell(0, 5, "  ".join(str(x) for x in h), new_x="LMARGIN", new_y="NEXT")
    if password:
        pdf.set_encryption(owner_password="owner-" + password, user_password=password)
    return bytes(pdf.output())
