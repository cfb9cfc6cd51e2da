"""Helpers of the readiness tests: a bin directory of real binaries, the secrets no report may contain."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from support.cli_harness import CLI_MODELS, cli_binary

from mcp_orchestrator.runtimes.cli import ADAPTERS

__all__ = ["SECRETS", "link_bin"]

# The keys the loopback homes and this environment use: no report may ever contain one.
SECRETS = ("loopback-codex-key", "loopback-gemini-key", "loopback-claude-key", "loopback-openai-key")


def link_bin(tmp_path: Path, models: tuple[str, ...] = CLI_MODELS) -> Path:
    """A temporary bin directory with links to ``models``' real binaries and ``node``; skips when one is missing."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for model in models:
        binary = cli_binary(model)
        if binary is None:
            pytest.skip(f"{ADAPTERS[model].binary} is not installed: run scripts/install-clis")
        (bin_dir / ADAPTERS[model].binary).symlink_to(binary)
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    if not (bin_dir / "node").exists():
        (bin_dir / "node").symlink_to(node)
    return bin_dir
