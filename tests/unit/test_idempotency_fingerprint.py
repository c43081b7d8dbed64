"""A retried upload has the same fingerprint although its client chose a new multipart boundary, however
the body is cut into chunks; a changed file does not."""

from __future__ import annotations

import hashlib

from api.acks import _BodyHash


def _fingerprint(body: bytes, marker: bytes, size: int) -> str:
    digest = hashlib.sha256()
    h = _BodyHash(digest, marker)
    for i in range(0, len(body), size):
        h.update(body[i:i + size])
    h.finish()
    return digest.hexdigest()


def _multipart(boundary: bytes, content: bytes) -> bytes:
    return (b"--" + boundary + b'\r\nContent-Disposition: form-data; name="files[]"; filename="tb.csv"\r\n\r\n'
            + content + b"\r\n--" + boundary + b"--\r\n")


def test_the_boundary_does_not_count_but_the_content_does() -> None:
    a, b = b"boundary-aaaaaaaaaaaa", b"other-boundary-b"
    whole = _fingerprint(_multipart(a, b"x,y\n1,2\n" * 50), b"--" + a, 10_000)
    for size in (1, 3, 7, 16, 64):  # markers cut across chunk edges everywhere
        assert _fingerprint(_multipart(b, b"x,y\n1,2\n" * 50), b"--" + b, size) == whole
    assert _fingerprint(_multipart(b, b"x,y\n1,3\n" * 50), b"--" + b, 7) != whole
