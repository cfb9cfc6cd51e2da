"""A CLI that hangs on ``--version`` no longer hangs ``runtimes`` or ``list_workers`` (issue 16): the probe has a
short time limit, kills the CLI's whole process group, and its outcome is cached per binary."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

import anyio
import pytest
from mcp import Client
from support.procs import pids_with_arg

from mcp_orchestrator.config import Settings
from mcp_orchestrator.runtimes.cli import versions
from mcp_orchestrator.server import build_server

pytestmark = pytest.mark.anyio

LIMIT = 1.0  # MCP_ORCHESTRATOR_VERSION_TIMEOUT for these tests
MARGIN = 4.0  # start-up and a loaded 2-core machine


@pytest.fixture(autouse=True)
def only_codex(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The other CLIs are absent, so the only probe is the fake codex's."""
    monkeypatch.setenv("MCP_ORCHESTRATOR_GEMINI_BIN", str(tmp_path / "no-gemini"))
    monkeypatch.setenv("MCP_ORCHESTRATOR_CLAUDE_BIN", str(tmp_path / "no-claude"))


def fake_cli(tmp_path: Path, body: str) -> Path:
    path = tmp_path / f"codex-{secrets.token_hex(4)}"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


async def codex_entry(client: Client) -> dict[str, object]:
    result = await client.call_tool("runtimes", {})
    assert not result.is_error, result.content
    assert result.structured_content is not None
    entries = result.structured_content["runtimes"]
    return next(r for r in entries if r["model"] == "codex_cli" and r["mode"] == "cli")


async def test_a_hung_version_probe_times_out_once_and_is_cached(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = f"36{secrets.randbelow(10**6):06d}"
    # The launcher starts a child and waits: both must be gone once the probe gives up.
    cli = fake_cli(tmp_path, f'if [ "$1" = --version ]; then sleep {marker} & sleep {marker}; fi')
    monkeypatch.setenv("MCP_ORCHESTRATOR_CODEX_BIN", str(cli))
    monkeypatch.setenv("MCP_ORCHESTRATOR_VERSION_TIMEOUT", str(LIMIT))
    async with Client(build_server(settings)) as client:
        before = versions.probe_count()
        start = time.monotonic()
        with anyio.fail_after(LIMIT + MARGIN):
            codex = await codex_entry(client)
        first = time.monotonic() - start
        assert first >= LIMIT  # it really waited for the CLI, then gave up
        assert codex["status"] == "unavailable"
        assert "did not answer within 1 s" in str(codex["detail"])
        assert not pids_with_arg(marker), "the hung CLI's process group outlived the probe"
        probes = versions.probe_count() - before
        assert probes == 1

        with anyio.fail_after(LIMIT):  # cached: no second wait
            again = await codex_entry(client)
            listed = await client.call_tool("list_workers", {})
        assert again == codex and not listed.is_error
        assert versions.probe_count() - before == probes  # no probe ran again


async def test_a_new_build_of_the_binary_is_probed_again(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli = fake_cli(tmp_path, 'echo "codex-cli 0.1.0"')
    monkeypatch.setenv("MCP_ORCHESTRATOR_CODEX_BIN", str(cli))
    async with Client(build_server(settings)) as client:
        assert (await codex_entry(client))["version"] == "0.1.0"
        count = versions.probe_count()
        assert (await codex_entry(client))["version"] == "0.1.0"
        assert versions.probe_count() == count
        cli.write_text('#!/bin/sh\necho "codex-cli 0.2.0"\n')
        stat = cli.stat()
        os.utime(cli, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # a later build, surely a new mtime
        upgraded = await codex_entry(client)
    assert upgraded["version"] == "0.2.0" and upgraded["status"] == "ready"
    assert versions.probe_count() == count + 1
