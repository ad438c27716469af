from __future__ import annotations

from collections.abc import Iterator

import pytest
from enginekit import reset_seq


@pytest.fixture(autouse=True)
def _fresh_seq() -> Iterator[None]:
    """Every test numbers each device's events from 1 (``enginekit.ev``)."""
    reset_seq()
    yield
