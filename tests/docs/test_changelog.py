"""The changelog and the running version agree: the OpenAPI document and /api/health show it."""

from __future__ import annotations

import re
from typing import Any

from infra.config.version import VERSION
from tests.docs.guides import read


def test_changelog_has_a_section_for_the_running_version() -> None:
    text = read("CHANGELOG.md")
    versions = re.findall(r"^## \[([^\]]+)\]", text, re.MULTILINE)
    assert versions[0] == "Unreleased", "the newest section is [Unreleased] (Keep a Changelog)"
    assert versions[1] == VERSION, f"the newest released section is {versions[1]}, the code says {VERSION}"
    assert re.search(rf"^## \[{re.escape(VERSION)}\] - \d{{4}}-\d{{2}}-\d{{2}}$", text, re.MULTILINE)


def test_openapi_and_health_show_the_version(api: Any) -> None:
    assert api.get("/api/openapi.json").json()["info"]["version"] == VERSION
    assert api.get("/api/health").json()["version"] == VERSION
