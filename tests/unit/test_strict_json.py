"""The strict JSON parser used for every request body."""

from __future__ import annotations

import json

import pytest

from api.guards import strict_json_loads
from domain.rules import RuleError, parse_rules


def test_plain_json_parses_as_usual() -> None:
    assert strict_json_loads(b'{"a": [1, 2.5, "x", null, true]}') == {"a": [1, 2.5, "x", None, True]}


@pytest.mark.parametrize("raw", ['{"a": NaN}', '[Infinity]', '[-Infinity]', '[1e400]', '["a\\u0000"]',
                                 '{"k\\u0000": 1}', '[[{"deep": "\\u0000"}]]'])
def test_non_finite_numbers_and_nul_are_refused(raw: str) -> None:
    with pytest.raises(json.JSONDecodeError):
        strict_json_loads(raw)


def test_domain_refuses_non_finite_rule_numbers_from_any_caller() -> None:
    with pytest.raises(RuleError) as info:
        parse_rules({"all": [{"left": {"ind": "close"}, "op": ">", "right": float("inf")}]}, "entry_rules")
    assert info.value.path == "entry_rules.all[0].right"


def test_domain_refuses_non_finite_params() -> None:
    from domain.strategies import SpecError, normalize_spec

    with pytest.raises(SpecError, match=r"params\.limit_offset_pct"):
        normalize_spec("v3_dip_buyer", None, None, {"limit_offset_pct": float("nan")})
