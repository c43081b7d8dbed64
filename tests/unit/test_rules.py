"""The rule language: parsing, defaults, and errors that name the offending path."""

from __future__ import annotations

import pytest

from domain.rules import Indicator, RuleError, parse_rules


def test_parse_round_trips_and_fills_default_periods() -> None:
    raw = {"all": [{"left": {"ind": "close"}, "op": ">", "right": {"ind": "sma"}},
                   {"any": [{"left": {"ind": "rsi", "period": 14}, "op": "<", "right": 30},
                            {"left": {"ind": "sma", "period": 10}, "op": "crosses_above",
                             "right": {"ind": "sma", "period": 30}}]}]}
    rules = parse_rules(raw, "entry_rules")
    assert rules.to_json()["all"][0]["right"] == {"ind": "sma", "period": 20}
    assert parse_rules(rules.to_json(), "x") == rules
    assert {i.name for i in rules.indicators()} == {"close", "sma", "rsi"}
    assert rules.lookback == 31  # sma 30 plus one bar for the cross


@pytest.mark.parametrize("raw,path", [
    ({"all": []}, "entry_rules.all"),
    ({"both": []}, "entry_rules"),
    ({"all": [{"left": {"ind": "vwap"}, "op": ">", "right": 1}]}, "entry_rules.all[0].left.ind"),
    ({"all": [{"left": {"ind": "sma", "period": 0}, "op": ">", "right": 1}]}, "entry_rules.all[0].left.period"),
    ({"all": [{"left": {"ind": "sma", "period": 501}, "op": ">", "right": 1}]}, "entry_rules.all[0].left.period"),
    ({"all": [{"left": {"ind": "sma", "period": 2.5}, "op": ">", "right": 1}]}, "entry_rules.all[0].left.period"),
    ({"all": [{"left": 1, "op": ">", "right": 2}]}, "entry_rules.all[0]"),
    ({"all": [{"left": {"ind": "close"}, "op": "=", "right": 2}]}, "entry_rules.all[0].op"),
    ({"all": [{"left": {"ind": "close"}, "right": 2}]}, "entry_rules.all[0].op"),
    ({"all": [{"left": {"ind": "close", "period": 5}, "op": ">", "right": 2}]}, "entry_rules.all[0].left.period"),
    ({"all": [{"any": [{"left": {"ind": "ema", "offset": -1}, "op": ">", "right": 1}]}]},
     "entry_rules.all[0].any[0].left.offset"),
    ({"all": [{"left": 3, "op": "crosses_above", "right": {"ind": "close"}}]}, "entry_rules.all[0].left"),
])
def test_invalid_rules_name_the_path(raw: object, path: str) -> None:
    with pytest.raises(RuleError) as info:
        parse_rules(raw, "entry_rules")
    assert info.value.path == path


def test_indicator_lookback_counts_offset_and_previous_bar() -> None:
    assert Indicator("rsi", 14).lookback == 15
    assert Indicator("highest", 55, offset=1, source="high").lookback == 56
