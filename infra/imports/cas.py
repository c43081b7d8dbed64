"""CAS PDFs: CAMS/KFintech mutual-fund statements and NSDL/CDSL demat statements.

Parsing runs in a child process (`python -m infra.imports.cas_worker`) with an address-space limit, a CPU-time
limit and a wall-clock timeout, so a hostile PDF (a decompression bomb, a pathological page) costs at
most those and cannot take the server down; the child gets the file through a private temporary file
and answers with JSON. The worker decrypts with pypdf (a wrong password is reported as such), reads
the text layer for the issuer, the statement period, folios and valuations, and uses camelot
(`stream` flavour: text-based tables, no Ghostscript or image conversion needed) for the transaction
tables.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any

from commands.imports_messages import ParsedMfTransaction
from infra.imports.console import UploadError, sniff

log = logging.getLogger(__name__)

# How the kernel ends a child that breaks its limits: RLIMIT_CPU (SIGXCPU, then SIGKILL), RLIMIT_FSIZE (SIGXFSZ),
# the out-of-memory killer (SIGKILL).
_LIMIT_SIGNALS = frozenset({signal.SIGXCPU, signal.SIGKILL, signal.SIGXFSZ})


@dataclass(frozen=True)
class CasLimits:
    seconds: float = 60.0
    memory_mb: int = 1536
    max_pages: int = 500


@dataclass
class ParsedCas:
    file_type: str
    period_from: str
    period_to: str
    pages: int
    transactions: list[ParsedMfTransaction] = field(default_factory=list)
    valuations: list[dict[str, Any]] = field(default_factory=list)
    holdings: list[dict[str, Any]] = field(default_factory=list)


def _limit(memory_mb: int, seconds: float) -> Any:
    def apply() -> None:  # runs in the child before exec
        mem = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        cpu = max(1, int(seconds))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024 * 1024, 64 * 1024 * 1024))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        os.setsid()

    return apply


def _broke_limits(proc: subprocess.CompletedProcess[bytes]) -> bool:
    """Whether a child that gave no answer was ended by one of its limits, not by a fault of its own: killed by
    the signal of a limit, or dead of a MemoryError outside the worker's own handling (importing a library)."""
    if proc.returncode < 0:
        return -proc.returncode in _LIMIT_SIGNALS
    return b"MemoryError" in proc.stderr[-4096:]


def parse_cas(name: str, data: bytes, password: str, limits: CasLimits | None = None) -> ParsedCas:
    limits = limits or CasLimits()
    if sniff(data) != "pdf":
        raise UploadError(f"{name}: not a PDF (a CAS statement is a PDF file)")
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "PYTHONPATH", "TMPDIR")}
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    with tempfile.TemporaryDirectory(prefix="tt-cas-") as tmp:
        path = os.path.join(tmp, "statement.pdf")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        request = json.dumps({"path": path, "password": password, "max_pages": limits.max_pages})
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "infra.imports.cas_worker"], input=request.encode(), capture_output=True,
                timeout=limits.seconds, env=env, cwd=tmp, preexec_fn=_limit(limits.memory_mb, limits.seconds),
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise UploadError(f"{name}: the PDF could not be read within {limits.seconds:g} s; "
                              "nothing was imported") from None
    try:
        answer = json.loads(proc.stdout.decode() or "{}")
    except ValueError:
        answer = {}
    if not answer.get("ok"):
        if answer.get("exception"):
            log.warning("CAS parser failed on %r: %s", name, answer["exception"])
        if answer.get("error"):
            raise UploadError(f"{name}: {answer['detail']}")
        if _broke_limits(proc):
            raise UploadError(f"{name}: the PDF could not be read within the server's limits "
                              f"(memory {limits.memory_mb} MB, {limits.seconds:g} s); nothing was imported")
        log.warning("CAS parser exited with %s without an answer on %r", proc.returncode, name)
        raise UploadError(f"{name}: the statement could not be read: the PDF may be damaged, or laid out unlike "
                          "the CAS statements this server reads; nothing was imported")
    txns = [ParsedMfTransaction(**t) for t in answer["transactions"]]
    return ParsedCas(answer["file_type"], answer["period_from"], answer["period_to"], answer["pages"], txns,
                     answer["valuations"], answer["holdings"])
