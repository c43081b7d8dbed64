"""The CAS parser's child process (see `infra.imports.cas`): reads {"path", "password", "max_pages"} as JSON on
stdin and writes the parsed statement, or {"ok": false, "error", "detail"}, as JSON on stdout.

Statement layouts (CAMS/KFintech detailed CAS; NSDL/CDSL consolidated account statements):
- issuer markers as casparser detects them: `CAMSCASWS`, `KFINCASWS`, `NSDL Consolidated Account
  Statement`, `Central Depository Services (India) Limited`;
- the period: `01-Apr-2024 To 31-Mar-2025`;
- per folio `Folio No: 12345678 / 90` (with `AMC` or a `... Mutual Fund` line), per scheme
  `<ISIN> - <scheme name>` (optionally after `Scheme:`), then the transaction table
  `Date | Transaction | Amount | Units | NAV | Balance` (negative amounts in parentheses), and the
  valuation line `Closing Unit Balance: ... NAV on <date>: INR ... Cost Value: ... Market Value on
  <date>: INR ...`;
- demat holdings: lines `<ISIN> <security name> <quantity> <price> <value>`.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import datetime
from typing import Any

DATE = r"\d{2}-[A-Za-z]{3}-\d{4}"
NUM = r"\(?-?[\d,]+(?:\.\d+)?\)?"


class Failure(Exception):
    def __init__(self, error: str, detail: str) -> None:
        super().__init__(detail)
        self.error = error
        self.detail = detail


def iso(d: str) -> str:
    return datetime.strptime(d.strip(), "%d-%b-%Y").date().isoformat()


def num(s: str | None) -> float | None:
    if s is None:
        return None
    t = s.strip().replace(",", "").replace("INR", "").strip()
    if not t or t in ("-", "--"):
        return None
    neg = t.startswith("(") and t.endswith(")")
    v = float(t.strip("()"))
    return -v if neg else v


def classify(description: str, units: float | None, amount: float | None) -> str:
    d = description.lower()
    if units is None:
        if "stamp" in d:
            return "STAMP_DUTY_TAX"
        if "stt" in d or "securities transaction tax" in d:
            return "STT_TAX"
        if "tds" in d:
            return "TDS_TAX"
        if "dividend" in d or "idcw" in d:
            return "DIVIDEND_PAYOUT"
        return "MISC"
    if units > 0:
        if any(w in d for w in ("reinvest",)):
            return "DIVIDEND_REINVEST"
        if "switch" in d:
            return "SWITCH_IN"
        if any(w in d for w in ("sip", "systematic", "instalment", "installment")):
            return "PURCHASE_SIP"
        return "PURCHASE"
    if any(w in d for w in ("reversal", "rejection", "dishonoured", "dishonored")):
        return "REVERSAL"
    if "switch" in d:
        return "SWITCH_OUT"
    return "REDEMPTION"


def detect(text: str) -> str:
    if "CAMSCASWS" in text:
        return "CAMS"
    if "KFINCASWS" in text:
        return "KFINTECH"
    if "NSDL Consolidated Account Statement" in text or "About NSDL" in text:
        return "NSDL"
    if "Central Depository Services (India) Limited" in text:
        return "CDSL"
    raise Failure("not_cas", "not a CAS statement this server can read (no CAMS, KFintech, NSDL or CDSL marker); "
                             "upload the original PDF the registrar or depository emailed, not a re-printed copy")


def period(text: str) -> tuple[str, str]:
    m = re.search(rf"({DATE})\s*(?:To|to|TO|-)\s*({DATE})", text)
    if m:
        return iso(m.group(1)), iso(m.group(2))
    m = re.search(rf"as on\s*({DATE})", text, re.IGNORECASE)
    if m:
        return iso(m.group(1)), iso(m.group(1))
    raise Failure("malformed", "page 1: no statement period found")


def mf_statement(path: str, password: str, texts: list[str]) -> dict[str, Any]:
    import camelot

    try:
        tables = camelot.read_pdf(path, password=password or None, pages="all", flavor="stream")
    except Exception as exc:  # camelot raises many types for an unreadable page
        raise Failure("malformed", f"the transaction tables cannot be read ({type(exc).__name__})") from exc
    folio = amc = scheme = isin = ""
    txns: list[dict[str, Any]] = []
    vals: list[dict[str, Any]] = []
    for table in tables:
        page = int(table.page)
        for cells in table.df.values.tolist():
            cells = [str(c).strip() for c in cells]
            line = "  ".join(c for c in cells if c)
            if not line:
                continue
            m = re.search(r"Folio No\s*[:.]?\s*([\w/ -]+?)(?:\s{2,}|\s+PAN|\s+AMC|\s+KYC|$)", line)
            if m:
                folio = m.group(1).strip()
                a = re.search(r"AMC\s*:\s*(.+?)(?:\s{2,}|\s+PAN|$)", line)
                if a:
                    amc = a.group(1).strip()
                continue
            if re.search(r"Mutual Fund\s*$", line) and not re.match(DATE, line):
                amc = line.strip()
                continue
            m = re.match(r"(?:Scheme\s*:\s*)?(INF[A-Z0-9]{9})\s*-\s*(.+)$", line)
            if m:
                isin, scheme = m.group(1), m.group(2).strip()
                continue
            if "Closing Unit Balance" in line:
                vals.append(valuation(line, page, folio, amc, scheme, isin))
                continue
            if re.fullmatch(DATE, cells[0] or ""):
                txns.append(transaction(cells, page, folio, amc, scheme, isin))
    if not txns and not vals:
        raise Failure("malformed", "no folio, transaction or valuation found in the statement")
    return {"transactions": txns, "valuations": vals, "holdings": []}


def transaction(cells: list[str], page: int, folio: str, amc: str, scheme: str, isin: str) -> dict[str, Any]:
    if not scheme:
        raise Failure("malformed", f"page {page}: a transaction before any scheme line ({cells[0]})")
    rest = [c for c in cells[1:] if c]
    if not rest:
        raise Failure("malformed", f"page {page}: transaction of {cells[0]} has no description")
    description = rest[0]
    numbers = rest[1:]
    try:
        values = [num(x) for x in numbers]
    except ValueError:
        raise Failure("malformed", f"page {page}: transaction of {cells[0]} ({description[:40]}): "
                                   f"{' | '.join(numbers)[:60]} are not numbers") from None
    amount = values[0] if values else None
    units = values[1] if len(values) > 1 else None
    nav = values[2] if len(values) > 2 else None
    balance = values[3] if len(values) > 3 else None
    return {"page": page, "folio": folio, "amc": amc, "scheme": scheme, "isin": isin, "date": iso(cells[0]),
            "description": description, "type": classify(description, units, amount), "amount": amount,
            "units": units, "nav": nav, "balance": balance}


def valuation(line: str, page: int, folio: str, amc: str, scheme: str, isin: str) -> dict[str, Any]:
    def grab(pattern: str) -> re.Match[str] | None:
        return re.search(pattern, line, re.IGNORECASE)

    units = grab(rf"Closing Unit Balance\s*:?\s*({NUM})")
    nav = grab(rf"NAV on\s*({DATE})\s*:?\s*(?:INR|Rs\.?)?\s*({NUM})")
    value = grab(rf"(?:Market Value|Valuation) on\s*({DATE})\s*:?\s*(?:INR|Rs\.?)?\s*({NUM})")
    cost = grab(rf"Cost Value\s*:?\s*(?:INR|Rs\.?)?\s*({NUM})")
    if units is None or value is None:
        raise Failure("malformed", f"page {page}: the valuation line of {scheme or folio} cannot be read")
    return {"folio": folio, "amc": amc, "scheme": scheme, "isin": isin, "date": iso(value.group(1)),
            "units": num(units.group(1)), "nav": num(nav.group(2)) if nav else None,
            "cost": num(cost.group(1)) if cost else None, "value": num(value.group(2))}


def demat_statement(texts: list[str], period_to: str) -> dict[str, Any]:
    holdings = []
    pattern = re.compile(rf"^(IN[A-Z0-9]{{10}})\s+(.+?)\s+({NUM})\s+({NUM})\s+({NUM})\s*$")
    for page, text in enumerate(texts, start=1):
        for raw in text.splitlines():
            line = raw.strip()
            m = pattern.match(line)
            if not m:
                if re.match(r"^IN[A-Z0-9]{10}\s", line):
                    raise Failure("malformed", f"page {page}: holding line {line[:60]!r} cannot be read")
                continue
            name = m.group(2).strip()
            sym = re.match(r"^([A-Z0-9&-]+)\s+-\s+", name)
            holdings.append({"isin": m.group(1), "name": name, "symbol": sym.group(1) if sym else "",
                             "quantity": num(m.group(3)), "price": num(m.group(4)), "value": num(m.group(5)),
                             "date": period_to})
    if not holdings:
        raise Failure("malformed", "no holdings found in the demat statement")
    return {"transactions": [], "valuations": [], "holdings": holdings}


def parse(req: dict[str, Any]) -> dict[str, Any]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    path, password = req["path"], req.get("password") or ""
    try:
        reader = PdfReader(path)
        if reader.is_encrypted:
            if not password:
                raise Failure("password_required", "the PDF is password-protected: send its password in the "
                                                   "field password")
            if not reader.decrypt(password):
                raise Failure("wrong_password", "wrong password for this PDF (CAMS/KFintech statements use the "
                                                "password you chose when requesting them; NSDL often PAN + "
                                                "date of birth)")
        n = len(reader.pages)
        if n > int(req.get("max_pages", 500)):
            raise Failure("too_large", f"the PDF has {n} pages (at most {req.get('max_pages')})")
        texts = []
        for i, page in enumerate(reader.pages, start=1):
            try:
                texts.append(page.extract_text() or "")
            except Exception as exc:
                raise Failure("malformed", f"page {i} cannot be read: the file may be damaged; download the "
                              "statement again") from exc
    except Failure:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise Failure("malformed", "not a readable PDF: the file may be damaged or cut short; download the "
                      "statement again") from exc
    full = "\n".join(texts)
    kind = detect(full)
    start, end = period(full)
    body = mf_statement(path, password, texts) if kind in ("CAMS", "KFINTECH") else demat_statement(texts, end)
    return {"ok": True, "file_type": kind, "period_from": start, "period_to": end, "pages": n, **body}


def main() -> None:
    try:
        req = json.loads(sys.stdin.read())
        out = parse(req)
    except Failure as f:
        out = {"ok": False, "error": f.error, "detail": f.detail}
    except MemoryError:
        out = {"ok": False, "error": "limits", "detail": "the PDF needs more memory than the server allows"}
    sys.stdout.write(json.dumps(out))


if __name__ == "__main__":
    main()
