"""The guides (docs/*.md) served read-only at `/help/<NAME>.md`, rendered to HTML, for the web app's Help menu.

They are read where the installed package knows to look: the source tree's `docs/` (a checkout, `make run`'s
editable install), else the copy a wheel installs under `<prefix>/share/tradertape/docs` (pyproject's
data-files). Markdown is rendered by markdown-it-py with raw HTML off (a guide's `<`, `>` are text, never
markup) and headings carry GitHub's anchors, so a guide's `OTHER.md#a-heading` links work as they do on GitHub.
"""

from __future__ import annotations

import html
import re
import sysconfig
from functools import lru_cache
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token

_CANDIDATES = (Path(__file__).resolve().parents[2] / "docs",
               Path(sysconfig.get_path("data")) / "share" / "tradertape" / "docs")
_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def docs_dir() -> Path | None:
    return next((d for d in _CANDIDATES if d.is_dir() and any(d.glob("*.md"))), None)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def guides() -> dict[str, str]:
    """File name -> title (its first `# ` heading), in the order of the file names."""
    root = docs_dir()
    if root is None:
        return {}
    out = {}
    for path in sorted(root.glob("*.md")):
        first = re.search(r"^# (.+)$", _FENCE.sub("", path.read_text(encoding="utf-8")), re.MULTILINE)
        out[path.name] = first.group(1).strip() if first else path.stem
    return out


def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False}).enable("table")

    def heading_ids_and_links(state: Any) -> None:
        tokens: list[Token] = state.tokens
        for i, tok in enumerate(tokens):
            if tok.type == "heading_open" and i + 1 < len(tokens):
                tok.attrSet("id", slug(tokens[i + 1].content))
            for child in tok.children or ():
                # a link out of docs/ (../README.md) names a file the app does not serve: keep its text only
                if child.type == "link_open" and str(child.attrGet("href") or "").startswith("../"):
                    del child.attrs["href"]

    md.core.ruler.push("heading_ids_and_links", heading_ids_and_links)
    return md


_MD = _markdown()


@lru_cache(maxsize=32)
def _render(path: Path, mtime_ns: int) -> str:  # (the mtime makes an edited guide render afresh)
    return _MD.render(path.read_text(encoding="utf-8"))


def page(name: str) -> str | None:
    """The guide `name` (e.g. "STRATEGIES.md") as a whole HTML page, or None when there is no such guide."""
    titles = guides()
    root = docs_dir()
    if name not in titles or root is None:  # only a listed file name: never a path
        return None
    path = root / name
    body = _render(path, path.stat().st_mtime_ns)
    nav = "".join(f'<li><a href="/help/{n}"{" aria-current=page" if n == name else ""}>{html.escape(t)}</a></li>'
                  for n, t in titles.items())
    return (f'<!doctype html><html lang="en-IN"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta name="color-scheme" content="light dark"><title>{html.escape(titles[name])} · TraderTape help'
            f'</title><link rel="icon" href="data:,"><link rel="stylesheet" href="/assets/app.css"></head>'
            f'<body class="guide"><header class="topbar"><a class="brand" href="/">TraderTape</a>'
            f'<span class="muted">Help</span></header><div class="layout"><nav id="nav" aria-label="Guides">'
            f'<ul>{nav}</ul></nav><main id="main" class="page guide-text">{body}</main></div></body></html>')
