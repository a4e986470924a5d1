"""These tests run on both warehouse engines (docs/architecture.md §16)."""

from __future__ import annotations

import pytest

from tests.conftest import ENGINES


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return request.param
