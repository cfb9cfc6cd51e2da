"""What following runs costs the cluster: the server that accepted the runs queries their workflows at one pace
for all of them (``engine/temporal/pacing.py``), not every half second each."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from support.temporal_dev import DevServer
from support.temporal_workers import temporal_settings, worker_process

from mcp_orchestrator.engine.temporal.engine import FOLLOW_RATE, TemporalEngine
from mcp_orchestrator.service import Orchestrator

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_the_follower_spends_one_bounded_query_rate_on_all_its_runs(
    temporal_server: DevServer, temporal_prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    queries = 0
    query = TemporalEngine.record

    async def counted(self: TemporalEngine, *args: object, **kwargs: object) -> object:
        nonlocal queries
        queries += 1
        return await query(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(TemporalEngine, "record", counted)  # counts the real queries; each still goes out
    root = (tmp_path / "root").resolve()
    root.mkdir()
    prefix = temporal_prefix.rstrip("-")
    with worker_process(temporal_server, prefix, tmp_path / "worker", (root,), ["mock/mock"]):
        settings = temporal_settings(temporal_server, prefix, tmp_path / "server", (root,))
        async with Orchestrator(settings).running() as orch:
            await orch.spawn_worker("t", "m", "mock", workdir=str(root))
            ids = [(await orch.dispatch("t", f"[[mock delay=6]] {i}", workers=["m"])).run_id for i in range(30)]
            with anyio.fail_after(20):  # every run seen running (its first query came)
                while any([(await orch.get_run(run_id)).status != "running" for run_id in ids]):  # noqa: ASYNC110
                    await anyio.sleep(0.05)
            before, start = queries, anyio.current_time()
            await anyio.sleep(2.0)  # the window measured (30 runs in flight throughout), not a wait for anything
            rate = (queries - before) / (anyio.current_time() - start)
            # Each run queried every 0.5 s would be 60 a second; one pace for all of them spends FOLLOW_RATE.
            assert rate <= FOLLOW_RATE * 1.25, rate
            for run_id in ids:
                assert (await orch.wait_run(run_id, 30)).status == "completed"
