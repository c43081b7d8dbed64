"""The CAS parser's child process (infra/imports/cas_worker.py) on statement text, and how the parent reads a
child that gave no answer (infra/imports/cas.py): a statement that is wrong says what is wrong and where, never
the file's text; only a real limit breach is reported as one."""

from __future__ import annotations

import io
import json
import signal
import subprocess
from typing import Any

import pytest

from infra.imports import cas_worker
from infra.imports.cas import _broke_limits
from infra.imports.cas_worker import Failure, demat_statement, num, period

INFY = "INE009A01021 INFY - INFOSYS LIMITED {} 1,650.00 9,900.00"


def run_main(monkeypatch: pytest.MonkeyPatch, parse: Any) -> dict[str, Any]:
    monkeypatch.setattr(cas_worker, "parse", parse)
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps({"path": "x.pdf"})))
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    cas_worker.main()
    return dict(json.loads(out.getvalue()))


def test_an_unexpected_exception_is_an_unreadable_statement_not_a_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(req: dict[str, Any]) -> dict[str, Any]:
        raise KeyError("secret text from the file")

    answer = run_main(monkeypatch, broken)
    assert (answer["ok"], answer["error"], answer["exception"]) == (False, "malformed", "KeyError")
    assert answer["detail"].startswith("the statement could not be read")
    assert "secret" not in answer["detail"] and "limit" not in answer["detail"]


def test_a_memory_error_even_wrapped_by_a_library_is_a_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    def wrapped(req: dict[str, Any]) -> dict[str, Any]:
        try:
            raise MemoryError
        except MemoryError as exc:
            raise RuntimeError("a library's own error") from exc

    answer = run_main(monkeypatch, wrapped)
    assert (answer["ok"], answer["error"]) == (False, "limits")


def test_a_child_without_an_answer_broke_a_limit_only_if_a_limit_ended_it() -> None:
    def child(returncode: int, stderr: bytes = b"") -> subprocess.CompletedProcess[bytes]:
        return subprocess.CompletedProcess([], returncode, b"", stderr)

    assert _broke_limits(child(-signal.SIGXCPU))
    assert _broke_limits(child(-signal.SIGKILL))
    assert _broke_limits(child(1, b"Traceback (most recent call last):\n...\nMemoryError\n"))
    assert not _broke_limits(child(-signal.SIGSEGV))
    assert not _broke_limits(child(1, b"Traceback (most recent call last):\n...\nValueError: bad\n"))


@pytest.mark.parametrize("text", ["Statement for the period 01-Mar-2025 To 31-Feb-2024",
                                  "Statement for the period 01-Mar-2025 To 31-Xyz-2024",
                                  "Holdings as on 30-Feb-2025"])
def test_a_period_with_a_date_that_does_not_exist(text: str) -> None:
    with pytest.raises(Failure) as e:
        period(["NSDL Consolidated Account Statement", text])
    assert (e.value.error, e.value.detail) == (
        "malformed", "page 2: the statement period holds a date that does not exist; nothing was imported")


def test_numbers() -> None:
    assert (num("1,650.00"), num("(5)"), num("-5"), num(""), num("--")) == (1650.0, -5.0, -5.0, None, None)
    with pytest.raises(ValueError):
        num("(-5)")  # neither negative nor positive: not a number


def refused(*pages: str) -> str:
    with pytest.raises(Failure) as e:
        demat_statement(list(pages), "2025-03-31")
    assert e.value.error == "malformed"
    return e.value.detail


@pytest.mark.parametrize(("quantity", "reason"), [
    ("(5)", "the quantity is negative"),
    ("-99999999999999999999", "the quantity is negative"),
    ("9" * 400, "the quantity is not a finite number"),
    ("2,000,000,000,000", "the quantity is beyond any plausible holding"),
    ("(-5)", "the quantity is not a number"),
])
def test_a_holding_that_cannot_be_true(quantity: str, reason: str) -> None:
    detail = refused("NSDL Consolidated Account Statement\n" + INFY.format(6) + "\n" + INFY.format(quantity))
    assert detail == f"page 1, holding 2 (ISIN INE009A01021): {reason}; nothing was imported"


def test_an_unreadable_holding_line_is_not_repeated() -> None:
    detail = refused("INE009A01021 PRIVATE NOTE OF THE OWNER")
    assert detail.startswith("page 1, holding 1: the line cannot be read") and "PRIVATE" not in detail


def test_one_isin_twice_in_one_account_with_different_quantities() -> None:
    assert refused(INFY.format(6), "x\n" + INFY.format(10)) == (
        "page 2, holding 1 (ISIN INE009A01021): the ISIN is listed twice in one demat account with different "
        "quantities (also page 1, holding 1); nothing was imported")
    account = "NSDL Demat Account\nDP Id: IN300126 Client Id: 11111111\n"
    assert "listed twice" in refused(account + INFY.format(6) + "\n" + INFY.format(10))


def test_one_isin_in_several_accounts_or_folios() -> None:
    """A CAS lists every demat account of the PAN (and, under Mutual Fund Folios, one scheme may sit in
    several folios): those are separate holdings; the same row twice in one account is one."""
    text = "\n".join([
        "NSDL Demat Account", "DP Id: IN300126 Client Id: 11111111", INFY.format(6), INFY.format(6),
        "CDSL Demat Account", "DP Id: 12081600 Client Id: 22222222", INFY.format(10),
        "Mutual Fund Folios", "INF109K01Z48 ICICI BLUECHIP 10.5 100.00 1,050.00",
        "INF109K01Z48 ICICI BLUECHIP 2.5 100.00 250.00",
    ])
    holdings = demat_statement([text], "2025-03-31")["holdings"]
    assert [(h["isin"], h["quantity"]) for h in holdings] == [
        ("INE009A01021", 6.0), ("INE009A01021", 10.0), ("INF109K01Z48", 10.5), ("INF109K01Z48", 2.5)]
