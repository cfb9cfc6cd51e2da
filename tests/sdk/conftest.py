"""Fixtures for the SDK runtime tests: one loopback model server per session, a harness per runtime."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sdk_support import MODES, Sdk
from support.model_server import ModelServer


@pytest.fixture(scope="session")
def model_server() -> Iterator[ModelServer]:
    """One loopback model server for the whole session."""
    with ModelServer() as server:
        yield server


@pytest.fixture(params=MODES, ids=lambda m: m.removesuffix("_sdk"))
def sdk(request: pytest.FixtureRequest, model_server: ModelServer, tmp_path: Path) -> Sdk:
    """A harness for each SDK runtime in turn."""
    return Sdk(mode=request.param, server=model_server, tmp=tmp_path)
