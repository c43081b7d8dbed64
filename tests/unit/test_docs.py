"""The repository is self-contained: what README.md and docs/ point a reader to is in the repository."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_readme_and_docs_never_point_outside_the_repository() -> None:
    for doc in DOCS:
        text = doc.read_text()
        # any "../x" mentioned, linked or not (not the ellipsis of ".../leave"), stays in the repository
        for up in re.findall(r"(?<![.\w])\.\./[\w./-]*\w", text):
            target = (doc.parent / up).resolve()
            assert target.is_relative_to(ROOT) and target.exists(), f"{doc.name} points outside: {up}"
        for target in re.findall(r"\]\(([^)#\s]+)", text):  # markdown links
            if "://" not in target:
                assert (doc.parent / target).resolve().is_relative_to(ROOT), (doc.name, target)
                assert (doc.parent / target).exists(), (doc.name, target)
        for path in re.findall(r"`((?:docs|tests|bench)/[\w./-]+|\.env\.example)`", text):
            assert (ROOT / path).exists() or (doc.parent / path).exists(), (doc.name, path)


def test_the_contract_and_the_architecture_ship_in_docs() -> None:
    for name in ("API.md", "ARCHITECTURE.md", "API-NOTES.md", "DESIGN.md"):
        assert (ROOT / "docs" / name).stat().st_size > 1000, name
    readme = (ROOT / "README.md").read_text()
    assert "docs/ARCHITECTURE.md" in readme and "docs/API.md" in readme
