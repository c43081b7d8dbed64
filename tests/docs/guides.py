"""Reading the guides under docs/: their text, fenced blocks by tag, links."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

_FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Block:
    guide: str
    line: int
    info: str  # the fence's info string, e.g. "json strategy"
    text: str

    def json(self) -> Any:
        try:
            return json.loads(self.text)
        except json.JSONDecodeError as exc:
            raise AssertionError(f"{self.guide}:{self.line}: ```{self.info} block is not JSON: {exc}") from None

    @property
    def where(self) -> str:
        return f"{self.guide}:{self.line}"


def read(name: str) -> str:
    return (ROOT / name).read_text(encoding="utf-8")


def guides() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


def blocks(name: str, tag: str | None = None) -> list[Block]:
    """Fenced blocks of `name` (a path under the repository), those whose info string ends with `tag`
    as its second word when given (```json strategy)."""
    text = read(name)
    out = []
    for m in _FENCE.finditer(text):
        info = m.group(1).strip()
        words = info.split()
        if tag is not None and (len(words) < 2 or words[1] != tag):
            continue
        out.append(Block(name, text.count("\n", 0, m.start()) + 1, info, m.group(2)))
    return out
