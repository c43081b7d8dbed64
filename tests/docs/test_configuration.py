"""The configuration reference is generated from the settings class and is current."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from api.cli import main
from infra.config.reference import DEFAULT_OUTPUT, env_name, render
from infra.config.settings import Settings
from tests.docs.guides import ROOT, read


def test_configuration_reference_is_current() -> None:
    assert read(str(DEFAULT_OUTPUT)) == render(), (
        "docs/CONFIGURATION.md is stale: run `.venv/bin/tradertape config reference --write`"
    )


def test_every_setting_appears_with_its_default() -> None:
    text = read(str(DEFAULT_OUTPUT))
    for name, field in Settings.model_fields.items():
        row = next((line for line in text.splitlines() if line.startswith(f"| `{env_name(name)}` |")), None)
        assert row is not None, f"{env_name(name)} is missing from docs/CONFIGURATION.md"
        if field.default not in (None, ""):
            shown = str(field.default).lower() if isinstance(field.default, bool) else str(field.default)
            assert f"`{shown}`" in row, f"{env_name(name)}: default {field.default!r} not shown in {row!r}"


def test_check_command_flags_a_stale_reference(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stale = tmp_path / "CONFIGURATION.md"
    stale.write_text(render().replace("TRADERTAPE_PORT", "TRADERTAPE_PORTX"), encoding="utf-8")
    with pytest.raises(SystemExit) as exited:
        main(["config", "reference", "--check", "--output", str(stale)])
    assert exited.value.code == 1 and "out of date" in capsys.readouterr().err
    main(["config", "reference", "--write", "--output", str(stale)])
    assert stale.read_text(encoding="utf-8") == render()
    main(["config", "reference", "--check", "--output", str(ROOT / DEFAULT_OUTPUT)])
    assert "is current" in capsys.readouterr().out


def test_every_variable_the_code_reads_is_in_the_reference() -> None:
    text = read(str(DEFAULT_OUTPUT))
    documented = set(re.findall(r"^\| `(TRADERTAPE_[A-Z0-9_]+)` \|", text, re.MULTILINE))
    used = set()
    for package in ("domain", "commands", "projections", "api", "streams", "backtest", "infra"):
        for path in (ROOT / package).rglob("*.py"):
            used |= set(re.findall(r"TRADERTAPE_[A-Z0-9_]*[A-Z0-9]", path.read_text(encoding="utf-8")))
    missing = sorted(used - documented)
    assert not missing, (f"{', '.join(missing)} not in docs/CONFIGURATION.md: add a setting with a description, "
                         "or an entry in infra/config/reference.py TOOL_VARIABLES, then "
                         "`tradertape config reference --write`")
