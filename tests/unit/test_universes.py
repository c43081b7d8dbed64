import re

import pytest

from infra.bars.universes import Member, custom_universe, list_universes, load_universe


def test_load_nifty_50_has_50_members_with_sector_and_isin():
    u = load_universe("nifty_50")
    assert len(u) == 50
    assert len(set(u.symbols)) == 50
    assert all(m.sector and m.sector != "Unknown" for m in u.members)
    assert all(re.fullmatch(r"INE[0-9A-Z]{9}", m.isin) for m in u.members)
    assert u.member("RELIANCE").sector == "Oil Gas & Consumable Fuels"


def test_load_nifty_100_contains_every_nifty_50_member():
    n50, n100 = load_universe("nifty_50"), load_universe("nifty_100")
    assert len(n100) == 100
    assert set(n50.symbols) <= set(n100.symbols)


def test_universe_index_symbols_are_space_free_store_symbols():
    assert load_universe("nifty_50").index_symbol == "NIFTY50"
    assert load_universe("nifty_50").index_name == "NIFTY 50"
    assert load_universe("nifty_100").index_symbol == "NIFTY100"
    assert load_universe("nifty_100").index_name == "NIFTY 100"


def test_load_universe_unknown_name_raises_listing_choices():
    with pytest.raises(ValueError, match="nifty_50, nifty_100"):
        load_universe("sensex")


def test_load_universe_twice_returns_cached_object():
    assert load_universe("nifty_100") is load_universe("nifty_100")


def test_packaged_lists_have_no_placeholder_or_malformed_symbols():
    for u in list_universes():
        for s in u.symbols:
            assert re.fullmatch(r"[A-Z0-9&-]+", s), s
            assert not s.startswith("DUMMY")


def test_list_universes_names_smallest_first():
    assert [u.name for u in list_universes()] == ["nifty_50", "nifty_100"]


def test_custom_universe_normalises_and_dedupes_in_order():
    u = custom_universe([" nse:infy", "TCS", "INFY", "reliance"])
    assert u.symbols == ("INFY", "TCS", "RELIANCE")
    assert u.sector_of("INFY") == "Information Technology"
    assert u.name == "custom"


def test_custom_universe_with_unknown_symbol_raises_naming_it():
    with pytest.raises(ValueError, match=r"FOOBAR.*BAZ"):
        custom_universe(["INFY", "FOOBAR", "BAZ"], known=load_universe("nifty_50"))


def test_unknown_names_are_never_echoed_unless_they_are_symbols():
    with pytest.raises(ValueError) as err:
        load_universe("../../etc/passwd")
    assert str(err.value) == "Unknown universe; choose one of: nifty_50, nifty_100"
    for bad in ("INFY;rm", "../x", "BSE:INFY", "A" * 200_000, "TCS\u202e"):
        with pytest.raises(ValueError) as err:
            custom_universe(["INFY", "", bad])  # an empty entry is skipped but keeps its place
        assert str(err.value).startswith("symbols[3] is not a valid symbol: give an NSE trading symbol")
        assert bad.upper() not in str(err.value).upper()
    many = [f"ZZ{i}" for i in range(12)]
    with pytest.raises(ValueError) as err:
        custom_universe(["INFY", *many])
    assert str(err.value).startswith(f"Unknown symbol(s): {', '.join(many[:10])} and 2 more. ")


def test_custom_universe_outside_given_universe_is_refused():
    # in NIFTY 100 but not in NIFTY 50
    outsider = next(s for s in load_universe("nifty_100").symbols if s not in load_universe("nifty_50"))
    with pytest.raises(ValueError, match=outsider):
        custom_universe([outsider], known=load_universe("nifty_50"))


def test_custom_universe_with_empty_list_raises():
    with pytest.raises(ValueError, match="at least one symbol"):
        custom_universe(["  ", ""])


def test_custom_universe_from_plain_symbols_has_unknown_sector():
    u = custom_universe(["abc"], known=["ABC", Member("XYZ", "Xyz Ltd", "Power", "")])
    assert u.members[0].sector == "Unknown"
    assert custom_universe(["XYZ"], known=["ABC", Member("XYZ", "Xyz Ltd", "Power", "")]).sectors == ("Power",)


def test_custom_universe_keeps_index_of_known_universe():
    assert custom_universe(["INFY"], known=load_universe("nifty_50")).index_symbol == "NIFTY50"
