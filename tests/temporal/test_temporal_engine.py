"""The Temporal engine across "machines": servers and worker processes that share only the cluster.

Each "machine" is a data directory and a workdir root of its own. A fake codex CLI (a real process
tree: the CLI and a child) stands in for a long step, so cancellation and a killed worker can be seen
in /proc.
"""

from __future__ import annotations

import os
import signal
from datetime import datetime, timedelta
from pathlib import Path

import anyio
import pytest
from mcp import Client
from support.procs import alive
from support.temporal_dev import DevServer
from support.temporal_machines import Machine, codex_env, fake_codex, long_run, served_machines
from support.temporal_workers import call, temporal_settings, worker_process

from mcp_orchestrator.server import build_server
from mcp_orchestrator.service import Orchestrator

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_a_run_dispatched_on_one_server_is_followed_and_canceled_from_another(
    temporal_server: DevServer, temporal_prefix: str, machines: tuple[Machine, Machine]
) -> None:
    a, _ = machines
    async with served_machines(temporal_server, temporal_prefix.rstrip("-"), machines, 60) as (ca, cb):
        run_id, tree = await long_run(ca, a)
        assert alive(tree) == tree

        seen = await call(cb, "get_run", runId=run_id)  # B holds nothing of it: it asks the cluster
        assert seen["status"] == "running"
        assert seen["steps"][0]["workerName"] == "cx"

        started = anyio.current_time()
        ended = await call(cb, "cancel_run", agentId="default", runId=run_id)
        assert ended["status"] == "canceled", ended["steps"]
        with anyio.fail_after(5):  # the activity's cancellation killed the tree on machine A
            while alive(tree):  # noqa: ASYNC110 - processes of another machine
                await anyio.sleep(0.05)
        assert anyio.current_time() - started < 10
        assert ended["steps"][0]["status"] == "canceled"

        with anyio.fail_after(10):  # and A's own copy of the run follows
            while (mine := await call(ca, "get_run", runId=run_id))["status"] != "canceled":  # noqa: ASYNC110
                await anyio.sleep(0.1)
        assert mine["steps"][0]["status"] == "canceled"


async def test_a_killed_worker_interrupts_its_step_within_the_heartbeat_timeout(
    temporal_server: DevServer, temporal_prefix: str, machines: tuple[Machine, Machine], tmp_path: Path
) -> None:
    a, b = machines
    prefix = temporal_prefix.rstrip("-")
    binary = fake_codex(tmp_path)
    with worker_process(temporal_server, prefix, b.worker_home, (a.root,), ["mock/mock"]):
        with worker_process(
            temporal_server, prefix, a.worker_home, (a.root,), ["codex_cli/cli"], extra_env=codex_env(binary, 60)
        ) as doomed:
            settings = temporal_settings(temporal_server, prefix, a.server_home, (a.root,))
            async with Client(build_server(settings)) as c:
                run_id, tree = await long_run(c, a)
                doomed.send_signal(signal.SIGKILL)
                doomed.wait()
                killed = anyio.current_time()
                ended = await call(c, "get_run", runId=run_id, waitSeconds=30)
                took = anyio.current_time() - killed
                for pid in alive(tree):  # orphans of the killed worker (see the README)
                    os.kill(pid, signal.SIGKILL)
        heartbeat = settings.temporal.heartbeat_seconds
        assert ended["status"] == "failed", ended
        assert ended["error"]["class"] == "interrupted", ended["error"]
        assert ended["steps"][0]["failureClass"] == "interrupted"
        assert took <= heartbeat + 2 + 1, took  # + 1 s: this test's own polling


async def test_panic_on_one_server_refuses_work_on_every_server_of_the_cluster(
    temporal_server: DevServer, temporal_prefix: str, machines: tuple[Machine, Machine]
) -> None:
    a, b = machines
    prefix = temporal_prefix.rstrip("-")
    with worker_process(temporal_server, prefix, b.worker_home, (b.root,), ["mock/mock"]):
        on_a = temporal_settings(temporal_server, prefix, a.server_home, (a.root,))
        on_b = temporal_settings(temporal_server, prefix, b.server_home, (b.root,))
        async with Client(build_server(on_a)) as ca, Client(build_server(on_b)) as cb:
            work = str(b.root / "work")
            await call(cb, "spawn_worker", agentId="default", name="m", model="mock", workdir=work)
            long = await call(cb, "dispatch_task", agentId="default", task="[[mock delay=60]]", waitSeconds=0)
            await call(ca, "panic", agentId="default", reason="stop everything")
            engaged = anyio.current_time()  # from here, every server refuses within a second
            while not (refused := await cb.call_tool("dispatch_task", {"agentId": "default", "task": "more"})).is_error:
                assert anyio.current_time() - engaged < 1.0, "B still accepts work a second after the panic"
                await anyio.sleep(0.05)
            assert "panic switch is engaged" in str(refused.content[0])
            ended = await call(cb, "get_run", runId=long["runId"], waitSeconds=10)
            assert ended["status"] == "canceled", ended  # B's running run was canceled from A

            async with Orchestrator(on_a).running(take_over=False) as operator:
                await operator.release_panic()
            with anyio.fail_after(5):  # within the servers' cache time
                while (await cb.call_tool("dispatch_task", {"agentId": "default", "task": "again"})).is_error:  # noqa: ASYNC110
                    await anyio.sleep(0.1)


async def test_interactive_runs_start_ahead_of_batch_ones_at_a_backend_cap(
    temporal_server: DevServer, temporal_prefix: str, machines: tuple[Machine, Machine]
) -> None:
    a, _ = machines
    prefix = temporal_prefix.rstrip("-")
    caps = {"MCP_ORCHESTRATOR_BACKEND_CAPS": "mock/mock=2"}
    with worker_process(temporal_server, prefix, a.worker_home, (a.root,), ["mock/mock"], extra_env=caps):
        settings = temporal_settings(temporal_server, prefix, a.server_home, (a.root,))
        async with Client(build_server(settings)) as c:
            work = str(a.root / "work")
            await call(c, "spawn_worker", agentId="default", name="m", model="mock", workdir=work)
            batch = [
                await call(
                    c,
                    "dispatch_task",
                    agentId="default",
                    task=f"b{i} [[mock delay=1]]",
                    priority="batch",
                    waitSeconds=0,
                )
                for i in range(6)
            ]
            inter = [
                await call(c, "dispatch_task", agentId="default", task=f"i{i} [[mock delay=1]]", waitSeconds=0)
                for i in range(3)
            ]
            runs = {
                r["runId"]: await call(c, "get_run", runId=r["runId"], waitSeconds=60, detail="full")
                for r in batch + inter
            }
    started = {run_id: run["steps"][0]["startedAt"] for run_id, run in runs.items()}
    assert all(run["status"] == "completed" for run in runs.values())
    # Once the interactive runs were queued (accepted, plus a moment for their workflows to schedule their
    # steps), a freed slot of the cap went to interactive work first: no batch step started between then
    # and the last interactive start. Before that, the batch runs had the cap to themselves.
    queued = datetime.fromisoformat(max(runs[r["runId"]]["createdAt"] for r in inter)) + timedelta(seconds=0.5)
    last_interactive = max(datetime.fromisoformat(started[r["runId"]]) for r in inter)
    between = [r for r in batch if queued < datetime.fromisoformat(started[r["runId"]]) < last_interactive]
    shown = sorted((started[r["runId"]][11:23], runs[r["runId"]]["task"][:2]) for r in batch + inter)
    assert not between, (queued, shown)
    assert any(datetime.fromisoformat(started[r["runId"]]) > last_interactive for r in batch), shown  # they waited


async def test_a_failed_step_keeps_its_failure_class_and_a_transient_one_is_retried(
    temporal_server: DevServer, temporal_prefix: str, machines: tuple[Machine, Machine]
) -> None:
    a, _ = machines
    prefix = temporal_prefix.rstrip("-")
    with worker_process(temporal_server, prefix, a.worker_home, (a.root,), ["mock/mock"]):
        settings = temporal_settings(temporal_server, prefix, a.server_home, (a.root,), retry_base_seconds=0.05)
        async with Client(build_server(settings)) as c:
            await call(c, "spawn_worker", agentId="default", name="m", model="mock", workdir=str(a.root / "work"))
            failed = await call(c, "dispatch_task", agentId="default", task="[[mock fail=auth]]", detail="full")
            flaky = await call(
                c, "dispatch_task", agentId="default", task="[[mock fail=rate_limited fail_times=1]]", detail="full"
            )
    assert failed["status"] == "failed"
    assert failed["error"]["class"] == "auth"
    assert failed["steps"][0]["attempt"] == 1  # auth is never retried
    assert flaky["status"] == "completed", flaky["error"]
    assert [x.get("failureClass") for x in flaky["steps"][0]["attempts"]] == ["rate_limited", None]


async def test_the_scheduler_view_shows_the_clusters_queues_and_their_workers(
    temporal_server: DevServer, temporal_prefix: str, machines: tuple[Machine, Machine]
) -> None:
    a, b = machines
    prefix = temporal_prefix.rstrip("-")
    with (
        worker_process(temporal_server, prefix, a.worker_home, (a.root,), ["mock/mock"]) as wa,
        worker_process(temporal_server, prefix, b.worker_home, (b.root,), ["mock/mock"]) as wb,
    ):
        settings = temporal_settings(temporal_server, prefix, a.server_home, (a.root,))
        async with Client(build_server(settings)) as c:
            await call(c, "spawn_worker", agentId="default", name="m", model="mock", workdir=str(a.root / "work"))
            view = await call(c, "scheduler")
    queues = view["cluster"]["queues"]
    assert set(queues) == {f"{prefix}.runs", f"{prefix}.workspace", f"{prefix}.mock.mock"}
    for queue in queues.values():
        pids = {p.split(":")[-1].split(" ")[0] for p in queue["pollers"]}
        assert {str(wa.pid), str(wb.pid)} <= pids, queue  # both "machines" poll every queue
