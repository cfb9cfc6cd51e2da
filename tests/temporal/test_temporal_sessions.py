"""``continueSession`` on the Temporal engine: the next run's step resumes the session of the worker's last step,
as on the local engine (here: the fake codex CLI's thread, resumed with ``codex exec resume <id>``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.temporal_dev import DevServer
from support.temporal_machines import codex_env, fake_codex
from support.temporal_workers import temporal_settings, worker_process

from mcp_orchestrator.service import Orchestrator

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_continue_session_resumes_the_workers_last_session_from_the_cluster(
    temporal_server: DevServer, temporal_prefix: str, tmp_path: Path
) -> None:
    root = (tmp_path / "root").resolve()
    (root / "work").mkdir(parents=True)
    prefix = temporal_prefix.rstrip("-")
    env = codex_env(fake_codex(tmp_path), 0) | {"MCP_ORCHESTRATOR_WORKER_ENV": "FAKE_SECONDS"}  # the CLI sees it
    with worker_process(temporal_server, prefix, tmp_path / "worker", (root,), ["codex_cli/cli"], extra_env=env):
        settings = temporal_settings(temporal_server, prefix, tmp_path / "server", (root,))
        async with Orchestrator(settings).running() as orch:
            await orch.spawn_worker("t", "cx", "codex_cli", runtime_mode="cli", workdir=str(root / "work"))
            first = await orch.dispatch("t", "first turn", workers=["cx"])
            done = await orch.wait_run(first.run_id, 60)
            assert done.status == "completed", done
            assert done.steps[0].session_id == "thread-fake"
            assert "resume" not in done.steps[0].flags

            second = await orch.dispatch("t", "second turn", workers=["cx"], continue_session=True)
            again = await orch.wait_run(second.run_id, 60)
            assert again.status == "completed", again
            flags = again.steps[0].flags
            assert "resume" in flags and flags[flags.index("resume") + 1] == "thread-fake", flags

            fresh = await orch.dispatch("t", "third turn", workers=["cx"])  # without continueSession: a new one
            assert "resume" not in (await orch.wait_run(fresh.run_id, 60)).steps[0].flags
