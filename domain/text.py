"""Text that displays as what it is: what the edge refuses (api/textguard.py) and what a name from elsewhere
(a Telegram user's name) is cleaned of before it is recorded.

- invalid Unicode: a lone surrogate, which no UTF-8 document (nor a stored event) can carry;
- control characters other than tab and line breaks (C0, DEL, C1: a bell, an ANSI colour escape) and the
  bidirectional embeddings, overrides and isolates (U+202A..U+202E, U+2066..U+2069) that make a name display
  as something else. The joiners Indic scripts need (U+200C, U+200D) and the plain direction marks (U+200E,
  U+200F) are kept.
"""

from __future__ import annotations

import re

# an NSE trading symbol as signals, tradebooks and alerts name it (INFY, M&M, BAJAJ-AUTO, NAM-INDIA): use fullmatch
NSE_SYMBOL = re.compile(r"[A-Z0-9][A-Z0-9&_.-]{0,29}")
SURROGATE = re.compile("[\ud800-\udfff]")
CONTROL = re.compile("[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def text_kind(text: str) -> str | None:
    """`unicode_invalid`, `text_invalid` or None for a text that may pass."""
    if SURROGATE.search(text):
        return "unicode_invalid"
    return "text_invalid" if CONTROL.search(text) else None


def safe_text(text: str) -> str:
    """`text` with lone surrogates, control characters (NUL too) and bidirectional overrides shown as U+FFFD:
    always encodable, and displayed as what it is."""
    return CONTROL.sub("\ufffd", SURROGATE.sub("\ufffd", text.replace("\x00", "\ufffd")))
