"""Fixtures shared by the model-portfolio tests."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from infra.bars.store import BarStore
from infra.bars.synthetic import generate
from infra.bars.universes import load_universe


@pytest.fixture
def market(api: Any) -> Any:
    """A signed-in user over synthetic nifty_50 history 2019-2020 (the model portfolios' universe)."""
    generate(BarStore(api.platform.settings.data_dir), load_universe("nifty_50"), date(2019, 1, 1),
             date(2020, 12, 31))
    api.login()
    return api
