"""pytest-benchmark set-up for bench/: every benchmark runs pinned to one core."""

from __future__ import annotations

import pytest
from benchutil import pin_one_core


@pytest.fixture(scope="session", autouse=True)
def one_core() -> int | None:
    return pin_one_core()
