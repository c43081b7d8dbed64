"""The Strategies guide covers the whole catalog the API accepts, and its example strategies are valid."""

from __future__ import annotations

import re
from typing import Any

import pytest

from api.schemas import StrategyCreate
from domain.base_models import BASE_MODELS, COMMON_PARAMS, Param
from domain.rules import (
    INDICATORS,
    MAX_CONDITIONS,
    MAX_DEPTH,
    MAX_OFFSET,
    MAX_PERIOD,
    OPERATORS,
    PRICE_FIELDS,
    SOURCE_DEFAULTS,
)
from domain.strategies import EXIT_KEYS
from tests.docs.guides import blocks, read

GUIDE = "docs/STRATEGIES.md"


def _section(text: str, heading: str) -> str:
    """From the heading line to the next heading of the same or a higher level."""
    start = text.index(heading)
    level = len(heading) - len(heading.lstrip("#"))
    rest = text[start + len(heading):]
    m = re.search(rf"^#{{1,{level}}} ", rest, re.MULTILINE)
    return rest[: m.start()] if m else rest


def _row(text: str, name: str) -> str:
    rows = [line for line in text.splitlines() if line.startswith(f"| `{name}` |")]
    assert rows, f"no table row for `{name}`"
    return rows[0]


def _num(value: float) -> str:
    return f"{value:g}" if float(value) != int(value) else str(int(value))


def _check_param_row(row: str, p: Param) -> None:
    assert p.type in row, f"{p.name}: type {p.type} not in {row!r}"
    if p.enum:
        for option in p.enum:
            assert f"`{option}`" in row, f"{p.name}: option {option} not in {row!r}"
    else:
        assert _num(p.default) in row.split("|")[3], f"{p.name}: default {p.default} not in {row!r}"
        assert f"{_num(p.minimum or 0)}-{_num(p.maximum or 0)}" in row, f"{p.name}: range not in {row!r}"


def test_every_base_model_and_parameter_is_described() -> None:
    text = read(GUIDE)
    for model in BASE_MODELS.values():
        section = _section(text, f"### `{model.name}`")
        assert model.title in section.splitlines()[0]
        for p in model.params:
            _check_param_row(_row(section, p.name), p)
        for key, value in model.default_overrides.items():  # e.g. v3_dip_buyer's limit entry
            assert f"{_num(value) if not isinstance(value, str) else value}" in _row(text, key)
    common = _section(text, "### Parameters every base model takes")
    for p in COMMON_PARAMS:
        _check_param_row(_row(common, p.name), p)


def test_every_strategy_field_is_described() -> None:
    section = _section(read(GUIDE), "## The strategy body")
    for name in StrategyCreate.model_fields:
        _row(section, name)


def test_every_indicator_with_its_parameters_and_sources_is_described() -> None:
    section = _section(read(GUIDE), "### Indicators")
    for name, period in INDICATORS.items():
        cells = [c.strip() for c in _row(section, name).split("|")]
        takes, default_period, default_source = cells[2], cells[3], cells[4]
        assert ("`period`" in takes) == (period is not None), f"{name}: takes {takes!r}"
        assert ("`source`" in takes) == (name in SOURCE_DEFAULTS), f"{name}: takes {takes!r}"
        assert ("`std`" in takes) == (name in ("bb_upper", "bb_lower")), f"{name}: takes {takes!r}"
        assert "`offset`" in takes
        assert default_period == (str(period) if period is not None else "—"), f"{name}: period {default_period!r}"
        if name in SOURCE_DEFAULTS:
            assert default_source == f"`{SOURCE_DEFAULTS[name]}`", f"{name}: source {default_source!r}"
    sources = _section(read(GUIDE), "### Indicators").split("| `ind` |")[0]
    for field in PRICE_FIELDS:
        assert f"`{field}`" in sources, f"price source {field} is not listed"
    limits = _section(read(GUIDE), "## The rule language")
    assert f"at most {MAX_DEPTH} levels" in limits and f"at most {MAX_CONDITIONS} conditions" in limits
    assert f"from 1 to {MAX_PERIOD}" in limits and f"offsets from 0 to {MAX_OFFSET}" in limits


def test_every_operator_and_exit_key_is_described() -> None:
    text = read(GUIDE)
    operators = _section(text, "### Operators")
    for op in OPERATORS:
        _row(operators, op)
    exits = _section(text, "## Exit rules")
    for key in EXIT_KEYS:
        _row(exits, key)


@pytest.fixture
def client(api: Any) -> Any:
    api.login()
    return api


def _strategy_blocks() -> list[Any]:
    out = []
    for guide in ("docs/STRATEGIES.md", "docs/BACKTESTING.md", "README.md"):
        out.extend(blocks(guide, "strategy"))
    return out


def test_every_example_strategy_is_accepted_by_the_api(client: Any) -> None:
    examples = _strategy_blocks()
    assert len(examples) >= 7
    for block in examples:
        r = client.post("/api/strategies", json=block.json())
        assert r.status_code == 201, f"{block.where}: {r.status_code} {r.text}"


def test_template_examples_spell_out_the_defaults(client: Any) -> None:
    titles = {m.title.replace(" (v3)", ""): m.name for m in BASE_MODELS.values()}
    seen = set()
    for block in blocks(GUIDE, "strategy"):
        body = block.json()
        if body["name"] not in titles:
            continue
        seen.add(body["base_model"])
        spelled = client.post("/api/strategies", json=body).json()
        default = client.post("/api/strategies", json={"name": "d", "base_model": body["base_model"]}).json()
        for key in ("entry_rules", "exit_rules", "params"):
            assert spelled[key] == default[key], f"{block.where}: {key} differs from the base model's defaults"
    assert seen == set(BASE_MODELS)
