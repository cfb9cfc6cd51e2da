"""A worker process refuses a step attempt of a worker the cluster holds as stopped, even in a run that the stop's
signal never reached (a run another server started just before the stop, which visibility listed too late)."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from support.temporal_dev import DevServer
from support.temporal_workers import temporal_settings, worker_process

from mcp_orchestrator.contracts import utcnow
from mcp_orchestrator.engine.temporal import registry
from mcp_orchestrator.engine.temporal.engine import TemporalEngine
from mcp_orchestrator.service import Orchestrator

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_a_step_of_a_worker_stopped_unbeknown_to_its_run_is_refused_by_the_worker_process(
    temporal_server: DevServer, temporal_prefix: str, tmp_path: Path
) -> None:
    root = (tmp_path / "root").resolve()
    root.mkdir()
    prefix = temporal_prefix.rstrip("-")
    backends = ["codex_cli/mock", "gemini_cli/mock"]
    with worker_process(temporal_server, prefix, tmp_path / "worker", (root,), backends):
        settings = temporal_settings(temporal_server, prefix, tmp_path / "server", (root,))
        async with Orchestrator(settings).running() as orch:
            await orch.spawn_worker("t", "w", "codex_cli", runtime_mode="mock", workdir=str(root))
            await orch.spawn_worker("t", "r", "gemini_cli", runtime_mode="mock", workdir=str(root))
            run = await orch.dispatch(
                "t", "[[mock delay=1.5]] write it", strategy="codex_writes_gemini_reviews", workers=["w", "r"]
            )
            with anyio.fail_after(20):  # the writer's step runs; the reviewer's is to come
                while not (await orch.get_run(run.run_id)).steps:  # noqa: ASYNC110
                    await anyio.sleep(0.05)
            engine = orch.engine
            assert isinstance(engine, TemporalEngine)
            reviewer = await registry.read(engine.client, prefix, "r")
            assert reviewer is not None
            stopped = reviewer.model_copy(update={"status": "stopped", "updated_at": utcnow()})
            # The stop as the cluster records it, with no signal to the run: the run never hears of it.
            await registry.write(engine.client, prefix, stopped, new=False)
            done = await orch.wait_run(run.run_id, 60)
    writer, review = done.steps
    assert writer.status == "completed", writer
    assert review.status == "canceled", review
    assert review.output == "canceled: the worker was stopped", review
    assert done.status == "canceled", done
