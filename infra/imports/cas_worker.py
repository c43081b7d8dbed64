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
- demat holdings: lines `<ISIN> <security name> <quantity> <price> <value>`, per demat account (an account's
  holdings follow its `DP Id: ... Client Id: ...` line; one CAS lists every account of the PAN, so one ISIN
  may be held in several accounts, but once per account).

Every figure is checked (finite; quantities, units, prices and values not negative, except a transaction's
amount and units; none beyond any plausible holding), and a failure names the page and the row, never the
text of the file: the whole statement is refused, as imports are all-or-nothing. Any exception this module
does not expect is reported as an unreadable statement, never as a resource limit (only a MemoryError is).
"""

from __future__ import annotations

import json
import math
import re
import sys
from datetime import datetime
from typing import Any

DATE = r"\d{2}-[A-Za-z]{3}-\d{4}"
NUM = r"\(?-?[\d,]+(?:\.\d+)?\)?"
# Bounds no real statement reaches: no company or scheme has issued 10^12 shares or units, and 10^15 rupees is
# above the value of every listed company together.
MAX_QUANTITY = 1e12
MAX_RUPEES = 1e15
DONE_NOTHING = "nothing was imported"


class Failure(Exception):
    def __init__(self, error: str, detail: str) -> None:
        super().__init__(detail)
        self.error = error
        self.detail = detail


def iso(d: str) -> str:
    return datetime.strptime(d.strip(), "%d-%b-%Y").date().isoformat()


def day(d: str, where: str) -> str:
    """`iso`, or a Failure saying that `where` holds a date that does not exist (31-Feb-2024, 31-Xyz-2024);
    the text itself is not repeated."""
    try:
        return iso(d)
    except ValueError:
        raise Failure("malformed", f"{where} holds a date that does not exist; {DONE_NOTHING}") from None


def num(s: str | None) -> float | None:
    if s is None:
        return None
    t = s.strip().replace(",", "").replace("INR", "").strip()
    if not t or t in ("-", "--"):
        return None
    neg = t.startswith("(") and t.endswith(")")
    inner = t[1:-1] if neg else t
    if neg and inner.startswith("-"):
        raise ValueError("a number both in parentheses and with a minus sign")
    v = float(inner)
    return -v if neg else v


def checked(v: float | None, where: str, what: str, *, limit: float, signed: bool = False) -> float | None:
    """`v` if it is finite, not negative (unless `signed`) and at most `limit` in size; else a Failure naming
    `where` and `what` (never the number as the file wrote it)."""
    if v is None:
        return None
    if not math.isfinite(v):
        reason = "is not a finite number"
    elif v < 0 and not signed:
        reason = "is negative"
    elif abs(v) > limit:
        reason = "is beyond any plausible " + ("amount" if limit == MAX_RUPEES else "holding")
    else:
        return v
    raise Failure("malformed", f"{where}: {what} {reason}; {DONE_NOTHING}")


def figure(s: str | None, where: str, what: str, *, limit: float, signed: bool = False) -> float | None:
    try:
        v = num(s)
    except ValueError:
        raise Failure("malformed", f"{where}: {what} is not a number; {DONE_NOTHING}") from None
    return checked(v, where, what, limit=limit, signed=signed)


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


def period(texts: list[str]) -> tuple[str, str]:
    text = "\n".join(texts)

    def where(pos: int) -> str:
        end = 0
        for page, t in enumerate(texts, start=1):
            end += len(t) + 1
            if pos < end:
                return f"page {page}: the statement period"
        return "the statement period"

    m = re.search(rf"({DATE})\s*(?:To|to|TO|-)\s*({DATE})", text)
    if m:
        return day(m.group(1), where(m.start())), day(m.group(2), where(m.start()))
    m = re.search(rf"as on\s*({DATE})", text, re.IGNORECASE)
    if m:
        return day(m.group(1), where(m.start())), day(m.group(1), where(m.start()))
    raise Failure("malformed", "page 1: no statement period found")


def mf_statement(path: str, password: str, texts: list[str]) -> dict[str, Any]:
    import camelot

    try:
        tables = camelot.read_pdf(path, password=password or None, pages="all", flavor="stream")
    except MemoryError:
        raise
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
    numbers = (rest[1:] + [""] * 4)[:4]
    where = f"page {page}: the transaction of {cells[0]}"
    date = day(cells[0], f"page {page}: a transaction")
    amount = figure(numbers[0], where, "amount", limit=MAX_RUPEES, signed=True)
    units = figure(numbers[1], where, "units", limit=MAX_QUANTITY, signed=True)
    nav = figure(numbers[2], where, "NAV", limit=MAX_RUPEES)
    balance = figure(numbers[3], where, "unit balance", limit=MAX_QUANTITY)
    return {"page": page, "folio": folio, "amc": amc, "scheme": scheme, "isin": isin, "date": date,
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
    where = f"page {page}: the valuation of {isin or 'a scheme'}"
    return {"folio": folio, "amc": amc, "scheme": scheme, "isin": isin, "date": day(value.group(1), where),
            "units": figure(units.group(1), where, "the closing unit balance", limit=MAX_QUANTITY),
            "nav": figure(nav.group(2), where, "the NAV", limit=MAX_RUPEES) if nav else None,
            "cost": figure(cost.group(1), where, "the cost value", limit=MAX_RUPEES) if cost else None,
            "value": figure(value.group(2), where, "the market value", limit=MAX_RUPEES)}


ACCOUNT_SECTION = re.compile(r"^(?:(NSDL|CDSL)\s+demat\s+account|Mutual\s+Fund\s+Folios?)\b", re.IGNORECASE)
DP_ACCOUNT = re.compile(r"DP\s*Id\s*:?\s*([A-Z0-9]+).*?Client\s*Id\s*:?\s*(\d+)", re.IGNORECASE)


def demat_statement(texts: list[str], period_to: str) -> dict[str, Any]:
    """The holdings of every demat account in the statement. One CAS lists all the accounts of a PAN (NSDL and
    CDSL, each under its `DP Id: ... Client Id: ...` line), so the same ISIN may appear once per account; twice
    in one account with the same quantity it is one holding (kept once), with different quantities the
    statement contradicts itself and is refused. Under `Mutual Fund Folios` one scheme may be held in several
    folios, so an ISIN may repeat there."""
    holdings: list[dict[str, Any]] = []
    pattern = re.compile(rf"^(IN[A-Z0-9]{{10}})\s+(.+?)\s+({NUM})\s+({NUM})\s+({NUM})\s*$")
    account: tuple[str, ...] | None = ("statement",)  # None: under Mutual Fund Folios, where an ISIN may repeat
    sections = 0
    seen: dict[tuple[tuple[str, ...], str], tuple[str, dict[str, Any]]] = {}
    for page, text in enumerate(texts, start=1):
        row = 0
        for raw in text.splitlines():
            line = raw.strip()
            section = ACCOUNT_SECTION.match(line)
            if section:
                sections += 1
                account = (f"section {sections}",) if section.group(1) else None
            dp = DP_ACCOUNT.search(line)
            if dp:
                account = ("dp", dp.group(1).upper(), dp.group(2))
            m = pattern.match(line)
            if not m:
                if re.match(r"^IN[A-Z0-9]{10}\s", line):
                    row += 1
                    raise Failure("malformed", f"page {page}, holding {row}: the line cannot be read as ISIN, "
                                               f"security, quantity, price and value; {DONE_NOTHING}")
                continue
            row += 1
            isin = m.group(1)
            where = f"page {page}, holding {row} (ISIN {isin})"
            quantity = figure(m.group(3), where, "the quantity", limit=MAX_QUANTITY)
            price = figure(m.group(4), where, "the price", limit=MAX_RUPEES)
            value = figure(m.group(5), where, "the value", limit=MAX_RUPEES)
            name = m.group(2).strip()
            sym = re.match(r"^([A-Z0-9&-]+)\s+-\s+", name)
            holding = {"isin": isin, "name": name, "symbol": sym.group(1) if sym else "",
                       "quantity": quantity, "price": price, "value": value, "date": period_to}
            if account is not None:
                first = seen.get((account, isin))
                if first is not None:
                    if first[1]["quantity"] != quantity:
                        raise Failure("malformed", f"{where}: the ISIN is listed twice in one demat account "
                                                   f"with different quantities (also {first[0]}); {DONE_NOTHING}")
                    continue  # the same holding again (a repeated row): one holding
                seen[(account, isin)] = (f"page {page}, holding {row}", holding)
            holdings.append(holding)
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
            except MemoryError:
                raise
            except Exception as exc:
                raise Failure("malformed", f"page {i} cannot be read: the file may be damaged; download the "
                              "statement again") from exc
    except Failure:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise Failure("malformed", "not a readable PDF: the file may be damaged or cut short; download the "
                      "statement again") from exc
    kind = detect("\n".join(texts))
    start, end = period(texts)
    body = mf_statement(path, password, texts) if kind in ("CAMS", "KFINTECH") else demat_statement(texts, end)
    return {"ok": True, "file_type": kind, "period_from": start, "period_to": end, "pages": n, **body}


UNREADABLE = ("the statement could not be read: the PDF may be damaged, or laid out unlike the CAS statements "
              f"this server reads; {DONE_NOTHING}")


def ran_out_of_memory(exc: BaseException) -> bool:
    """Whether `exc` is, or was raised while handling, a MemoryError (a library may wrap one in its own)."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, MemoryError):
            return True
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return False


def main() -> None:
    try:
        req = json.loads(sys.stdin.read())
        out = parse(req)
    except Failure as f:
        out = {"ok": False, "error": f.error, "detail": f.detail}
    except Exception as exc:  # a parser's bug or a layout it does not expect: unreadable, not a resource limit
        if ran_out_of_memory(exc):
            out = {"ok": False, "error": "limits", "detail": "the PDF needs more memory than the server allows"}
        else:
            out = {"ok": False, "error": "malformed", "detail": UNREADABLE, "exception": type(exc).__name__}
    sys.stdout.write(json.dumps(out))


if __name__ == "__main__":
    main()
