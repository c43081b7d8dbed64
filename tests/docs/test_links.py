"""Links inside docs/, the README and the changelog resolve: files exist, #anchors name a heading."""

from __future__ import annotations

import re
from pathlib import Path

from api.web.guides import slug as _slug  # the anchors the Help pages give their headings
from tests.docs.guides import ROOT, guides

_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def _anchors(path: Path) -> set[str]:
    text = _FENCE.sub("", path.read_text(encoding="utf-8"))
    return {_slug(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", text, re.MULTILINE)}


def _documents() -> list[Path]:
    return [ROOT / "README.md", ROOT / "CHANGELOG.md", *guides()]


def test_every_link_resolves() -> None:
    broken = []
    for doc in _documents():
        text = _FENCE.sub("", doc.read_text(encoding="utf-8"))
        for target in _LINK.findall(text):
            if re.match(r"^[a-z]+:", target):  # http(s), mailto: not checked offline
                continue
            file_part, _, anchor = target.partition("#")
            dest = (doc.parent / file_part).resolve() if file_part else doc
            if not dest.exists():
                broken.append(f"{doc.name}: {target} (no such file)")
            elif ROOT not in dest.parents and dest != ROOT:
                broken.append(f"{doc.name}: {target} (outside the repository)")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                broken.append(f"{doc.name}: {target} (no heading with that anchor)")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_readme_links_every_guide() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for guide in guides():
        assert f"(docs/{guide.name})" in readme, f"README.md does not link docs/{guide.name}"
    assert "(CHANGELOG.md)" in readme
