"""Fixtures of the Temporal engine tests (the dev server itself is the session's, in ``tests/conftest.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.temporal_machines import Machine


@pytest.fixture
def machines(tmp_path: Path) -> tuple[Machine, Machine]:
    """Two "machines" A and B: a data dir and a workdir root each."""
    return Machine(tmp_path, "a"), Machine(tmp_path, "b")
