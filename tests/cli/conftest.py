"""Fixtures for the CLI runtime tests: the real binaries and one loopback model server per session.

The binaries come from ``MCP_ORCHESTRATOR_{CODEX,GEMINI,CLAUDE}_BIN``, else ``.tools/clis``
(``scripts/install-clis``), else ``PATH``; a test that needs a missing one is skipped with the
reason. The runtime itself only ever looks at the variables and ``PATH``: the tests hand it the
variables explicitly.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.cli_harness import CLI_MODELS, Harness, cli_binary, require_cli
from support.loopback import loopback_env
from support.model_server import ModelServer

from mcp_orchestrator.runtimes.cli import ADAPTERS


@pytest.fixture(scope="session")
def model_server() -> Iterator[ModelServer]:
    """One loopback model server for the whole session."""
    with ModelServer() as server:
        yield server


@pytest.fixture(scope="session")
def base_environ(tmp_path_factory: pytest.TempPathFactory, model_server: ModelServer) -> dict[str, str]:
    """The environment the runtime filters from: the test process's, plus loopback settings and binaries."""
    root = tmp_path_factory.mktemp("cli-homes")
    home = root / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_ORCHESTRATOR_")}
    env.update(loopback_env(model_server.url, root))
    env["HOME"] = str(home)
    for model in CLI_MODELS:
        binary = cli_binary(model)
        if binary is not None:
            env[ADAPTERS[model].bin_env] = binary
    return env


@pytest.fixture(params=CLI_MODELS, ids=lambda m: m.removesuffix("_cli"))
def cli(
    request: pytest.FixtureRequest, model_server: ModelServer, base_environ: dict[str, str], tmp_path: Path
) -> Harness:
    """A harness for each real CLI in turn (skipped when its binary is missing)."""
    model: str = request.param
    require_cli(model)
    return Harness(model=model, server=model_server, environ=dict(base_environ), tmp=tmp_path)
