"""Machine placement on the local engine: one machine, this one; another is refused at spawn with a hint that
placement needs the Temporal engine, this one's name is accepted and recorded."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mcp_orchestrator.config import Settings
from mcp_orchestrator.errors import InvalidArgument
from mcp_orchestrator.service import Orchestrator

pytestmark = pytest.mark.anyio


@pytest.fixture
async def orch(tmp_path: Path) -> AsyncIterator[Orchestrator]:
    root = tmp_path / "root"
    root.mkdir()
    orch = Orchestrator(Settings(home=tmp_path / "home", roots=(root,), fsync=False, machine="here-1"))
    async with orch.running(take_over=False):
        yield orch


async def test_the_local_engine_refuses_another_machine_and_records_its_own(orch: Orchestrator) -> None:
    with pytest.raises(InvalidArgument) as refused:
        await orch.spawn_worker("me", "w", "mock", machine="build-2")
    assert "not this machine ('here-1')" in str(refused.value), refused.value
    assert "Temporal engine" in refused.value.hint and "--machine build-2" in refused.value.hint

    worker = await orch.spawn_worker("me", "w", "mock", machine="here-1")
    assert worker.machine == "here-1"
    assert (await orch.list_workers())[0].to_wire().machine == "here-1"
    assert (await orch.spawn_worker("me", "v", "mock")).machine is None  # unpinned, as before


@pytest.mark.parametrize("bad", ["", "a b", "x@y", "a/b", "-lead", "n" * 64])
async def test_a_machine_name_is_short_and_plain(orch: Orchestrator, bad: str) -> None:
    with pytest.raises(InvalidArgument, match="is not a machine name"):
        await orch.spawn_worker("me", "w", "mock", machine=bad)


def test_the_machine_defaults_to_the_environment_then_the_hostname() -> None:
    import socket

    assert Settings.from_env({"MCP_ORCHESTRATOR_MACHINE": "rack-7"}).machine == "rack-7"
    host = socket.gethostname()
    assert Settings.from_env({}).machine in (host, host.split(".")[0])
    with pytest.raises(ValueError, match="MCP_ORCHESTRATOR_MACHINE"):
        Settings.from_env({"MCP_ORCHESTRATOR_MACHINE": "no spaces"})
