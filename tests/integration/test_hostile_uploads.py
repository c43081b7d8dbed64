"""Hostile files against a real server process: an XML bomb inside an XLSX, a zip bomb, a PDF bomb, a renamed
executable, a 1 GB body (declared and streamed). Each is refused with a 4xx, nothing is imported, the
server's memory stays bounded, and it keeps serving another user meanwhile."""

from __future__ import annotations

import io
import re
import socket
import time
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.integration.test_uploads_analytics import INFY
from tests.support.brokerfiles import tradebook_xlsx
from tests.support.processes import Server, tt_env

_ENTITIES = "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(2, 10))
BOMB_XML = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol1 "lololololololololololololololololololol">'
    + _ENTITIES + ']>\n<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
    '<row r="1"><c r="A1" t="inlineStr"><is><t>&lol9;</t></is></c></row></sheetData></worksheet>'
).encode()


def _replace_entry(xlsx: bytes, name: str, data: bytes, compress: int = zipfile.ZIP_DEFLATED) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(xlsx))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, data if info.filename == name else src.read(info.filename), compress)
    return out.getvalue()


def xml_bomb_xlsx() -> bytes:
    return _replace_entry(tradebook_xlsx(INFY), "xl/worksheets/sheet1.xml", BOMB_XML)


def zip_bomb_xlsx() -> bytes:
    return _replace_entry(tradebook_xlsx(INFY), "xl/worksheets/sheet1.xml", b"\0" * (300 * 1024 * 1024))


def pdf_bomb() -> bytes:
    """A one-page PDF whose content stream inflates from ~0.5 MB to 512 MB."""
    raw = b"0 0 m 1 1 l S\n" * (512 * 1024 * 1024 // 14)
    stream = zlib.compress(raw, 9)
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 600 800] /Contents 4 0 R >>",
            b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream"]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, o in enumerate(objs, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + o + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("hostile")
    srv = Server(tt_env(tmp, scheduler="false", pdf_parse_seconds=20), tmp / "serve.log")
    srv.tmp = tmp  # type: ignore[attr-defined]
    srv.start()
    yield srv
    srv.stop()


def login(srv: Server, email: str) -> requests.Session:
    s = requests.Session()
    s.headers["X-Requested-With"] = "tradertape"  # as the web app sends (CSRF, api/csrf.py)
    s.post(srv.url + "/api/auth/magic-link", json={"email": email}).raise_for_status()
    otp = None
    for _ in range(200):
        for f in (srv.tmp / "var" / "mail").glob("*.eml"):  # type: ignore[attr-defined]
            text = f.read_text()
            if f"To: {email}" in text:
                otp = re.search(r"code: (\d{6})", text).group(1)  # type: ignore[union-attr]
        if otp:
            break
        time.sleep(0.05)
    s.post(srv.url + "/api/auth/verify-link", json={"email": email, "otp": otp}).raise_for_status()
    return s


def rss_mb(srv: Server) -> float:
    assert srv.p is not None
    status = Path(f"/proc/{srv.p.pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]


def raw_upload(srv: Server, cookie: str, path: str, total: int, chunked: bool) -> int:
    """POST `total` bytes of junk as a multipart body; returns the status the server answered with."""
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
    length = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}"
    sock.sendall((f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: kite_session={cookie}\r\n"
                  "X-Requested-With: tradertape\r\n"
                  f"Content-Type: multipart/form-data; boundary=xyz\r\n{length}\r\n\r\n").encode())
    chunk = b"--xyz\r\n" + b"A" * (1024 * 1024)
    sent = 0
    try:
        while sent < total:
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
            sent += len(chunk)
            sock.settimeout(0.0)
            try:
                if sock.recv(1, socket.MSG_PEEK):
                    break  # the server answered before the body ended
            except (BlockingIOError, InterruptedError):
                pass
            finally:
                sock.settimeout(30)
    except (BrokenPipeError, ConnectionResetError):
        pass
    sock.settimeout(30)
    head = sock.recv(4096).decode(errors="replace")
    sock.close()
    assert sent < total, "the server read the whole body"
    return int(head.split(" ")[1])


def test_hostile_files_are_refused_and_the_server_keeps_serving(server: Server) -> None:
    attacker = login(server, "mallory@example.com")
    victim = login(server, "alice@example.com")
    start_rss = rss_mb(server)

    def refused(path: str, name: str, body: bytes, field: str = "files[]", **data: Any) -> str:
        r = attacker.post(server.url + f"/api/uploads/{path}", files=[(field, (name, body))], data=data, timeout=60)
        assert 400 <= r.status_code < 500, r.text
        # meanwhile the server serves others
        assert victim.get(server.url + "/api/analytics/summary", timeout=10).status_code == 200
        return str(r.json()["detail"])

    assert "XML bomb" in refused("tradebook", "bomb.xlsx", xml_bomb_xlsx())
    assert "zip bomb" in refused("tradebook", "zip.xlsx", zip_bomb_xlsx())
    assert "not a tradebook" in refused("tradebook", "tradebook.xlsx", b"MZ\x90\x00\x03" + b"\x00" * 4000)
    assert "not a PDF" in refused("cas", "cas.pdf", b"\x7fELF\x02\x01\x01" + b"\x00" * 4000, field="file")
    detail = refused("cas", "bomb.pdf", pdf_bomb(), field="file")
    assert "PDF" in detail or "limits" in detail
    assert "too large" in refused("ledger", "big.xlsx", b"PK\x03\x04" + b"\x00" * (21 * 1024 * 1024), field="file")

    cookie = attacker.cookies["kite_session"]
    assert cookie is not None
    assert raw_upload(server, cookie, "/api/uploads/tradebook", 1024**3, chunked=False) == 400
    assert raw_upload(server, cookie, "/api/uploads/ledger", 1024**3, chunked=True) == 400

    assert attacker.get(server.url + "/api/uploads/batches").json() == []
    assert attacker.get(server.url + "/api/analytics/trades").json() == []
    r = victim.post(server.url + "/api/uploads/tradebook", files=[("files[]", ("tb.xlsx", tradebook_xlsx(INFY)))])
    assert r.status_code == 200 and r.json()["imported"] == 5
    assert rss_mb(server) - start_rss < 400
