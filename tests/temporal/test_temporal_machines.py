"""Machine placement (issue 14): a worker spawned with ``machine`` has its steps, and its plans' git workspace
operations, executed by the worker processes of that machine only.

Two worker processes, "machine a" and "machine b", with data dirs and workdir roots of their own, serve the same
mock backend; the server (machine "server") sees neither root. A worker pinned to b whose workdir exists only
under b's root runs there, every step of it, in a single-worker run and in a multi-writer run that makes git
worktrees; a worker pinned to a machine nobody serves fails at once, saying so; a plan that places its workers
apart is refused at dispatch.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from support.temporal_dev import DevServer
from support.temporal_machines import Machine
from support.temporal_workers import call, temporal_settings, worker_process

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

ENDED = ("completed", "failed", "canceled")
CHOOSE = '[[mock@reviewer say={"choice":"w1","decision":"approve","reasons":"fine"}]]'


@dataclass
class Placed:
    """The two machines, their worker processes, and where the server keeps its data."""

    prefix: str
    a: Machine
    b: Machine
    proc_a: subprocess.Popen[str]
    proc_b: subprocess.Popen[str]
    server_home: Path


def _git(cwd: Path, *args: str) -> str:
    argv = ["git", "-C", str(cwd), "-c", "user.name=t", "-c", "user.email=t@localhost", *args]
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def placed(temporal_server: DevServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Placed]:
    """Machines a and b, each with a worker process (``--machine a`` / ``--machine b``) serving mock/mock."""
    import secrets

    base = tmp_path_factory.mktemp("machines")
    prefix = f"m{secrets.token_hex(4)}"
    a, b = Machine(base, "a"), Machine(base, "b")
    repo = b.root / "repo"
    repo.mkdir()
    _git(repo, "init", "--quiet", "--initial-branch=main")
    (repo / "app.txt").write_text("one\n")
    _git(repo, "add", "--all")
    _git(repo, "commit", "--quiet", "-m", "base")
    with (
        worker_process(temporal_server, prefix, a.worker_home, (a.root,), ["mock/mock"], machine="a") as proc_a,
        worker_process(temporal_server, prefix, b.worker_home, (b.root,), ["mock/mock"], machine="b") as proc_b,
    ):
        yield Placed(prefix, a, b, proc_a, proc_b, base / "server")


@asynccontextmanager
async def server(temporal_server: DevServer, placed: Placed) -> AsyncIterator[Client]:
    """An MCP server on machine "server": its roots hold neither machine's workdirs."""
    from mcp_orchestrator.server import build_server

    home = placed.server_home
    (home / "root").mkdir(parents=True, exist_ok=True)
    settings = temporal_settings(temporal_server, placed.prefix, home / "data", ((home / "root").resolve(),))
    settings = type(settings)(**{**settings.__dict__, "machine": "server"})
    async with Client(build_server(settings)) as c:
        yield c


async def ended(c: Client, run_id: str, within: float = 60.0) -> dict[str, Any]:
    with anyio.fail_after(within):
        while (run := await call(c, "get_run", runId=run_id, detail="full"))["status"] not in ENDED:  # noqa: ASYNC110
            await anyio.sleep(0.1)  # the run's workflow is followed by polling: nothing here to wait on
    return run


def on_b(placed: Placed, step: dict[str, Any]) -> bool:
    return str(step.get("executedBy") or "").endswith(f":{placed.proc_b.pid}")


async def test_a_worker_pinned_to_b_runs_every_step_on_b(temporal_server: DevServer, placed: Placed) -> None:
    async with server(temporal_server, placed) as c:
        work = str(placed.b.root / "work")  # only b's worker process may use it; a's refuses it
        spawned = await call(c, "spawn_worker", agentId="default", name="solo", model="mock", workdir=work, machine="b")
        assert spawned["machine"] == "b" and spawned["workdir"] == work
        listed = {w["name"]: w for w in (await call(c, "list_workers"))["workers"]}
        assert listed["solo"]["machine"] == "b"
        for _ in range(3):  # an unpinned worker would land on a about every other time
            run = await call(c, "dispatch_task", agentId="default", task="hello", workers=["solo"], waitSeconds=30)
            run = await ended(c, run["runId"])
            assert run["status"] == "completed", run
            assert all(on_b(placed, s) for s in run["steps"]), run["steps"]

        view = await call(c, "scheduler")
        queues = view["cluster"]["queues"]
        pinned = queues[f"{placed.prefix}.mock.mock@b"]
        assert pinned["pollers"] and all(f":{placed.proc_b.pid} " in p for p in pinned["pollers"]), pinned
        assert queues[f"{placed.prefix}.workspace@b"]["pollers"], queues


async def test_a_multi_writer_plan_pinned_to_b_makes_its_worktrees_on_b(
    temporal_server: DevServer, placed: Placed
) -> None:
    repo = placed.b.root / "repo"
    async with server(temporal_server, placed) as c:
        for name, role in (("w1", "writer"), ("w2", "writer"), ("rv", "reviewer")):
            await call(
                c, "spawn_worker", agentId="default", name=name, model="mock", role=role, workdir=str(repo), machine="b"
            )
        run = await call(
            c,
            "dispatch_task",
            agentId="default",
            task=f"edit app.txt {CHOOSE}",
            strategy="parallel_dual_write_review",
            workers=["w1", "w2", "rv"],
            waitSeconds=0,
        )
        run = await ended(c, run["runId"])
        assert run["status"] == "completed", run
        assert len(run["steps"]) == 3 and all(on_b(placed, s) for s in run["steps"]), run["steps"]
        for step in run["steps"][:2]:  # each writer worked in a worktree that b's worker process made in b's repo
            ws = step["workspace"]
            assert ws["isolated"] is True, ws
            assert ws["workdir"].startswith(str(repo / ".mcp-orchestrator" / "worktrees")), ws
        assert _git(repo, "worktree", "list").count("\n") == 0  # and removed at the end, there


async def test_a_worker_pinned_to_a_machine_nobody_serves_fails_at_once(
    temporal_server: DevServer, placed: Placed
) -> None:
    async with server(temporal_server, placed) as c:
        await call(c, "spawn_worker", agentId="default", name="lost", model="mock", workdir="/srv/app", machine="c")
        began = time.monotonic()
        run = await call(c, "dispatch_task", agentId="default", task="hello", workers=["lost"], waitSeconds=0)
        run = await ended(c, run["runId"], within=20)  # the queue timeout is 60 s here
        assert time.monotonic() - began < 15
        assert run["status"] == "failed", run
        (step,) = run["steps"]
        assert step["failureClass"] == "unavailable", step
        assert f"no worker process on machine c polls {placed.prefix}.mock.mock@c" in step["output"], step
        assert "--machine c" in step["output"], step


async def test_a_plan_that_places_its_workers_apart_is_refused_at_dispatch(
    temporal_server: DevServer, placed: Placed
) -> None:
    repo = str(placed.b.root / "repo")
    async with server(temporal_server, placed) as c:
        for name, role, machine in (("x1", "writer", "a"), ("x2", "writer", "b"), ("xr", "reviewer", "b")):
            await call(
                c, "spawn_worker", agentId="default", name=name, model="mock", role=role, workdir=repo, machine=machine
            )
        here = str((placed.server_home / "root").resolve())  # an unpinned worker's workdir: the server checks it
        await call(c, "spawn_worker", agentId="default", name="xu", model="mock", workdir=here)
        for workers, where in (
            (["x1", "x2", "xr"], "machine a: x1; machine b: x2, xr"),
            (["x2", "xu", "xr"], "machine b: x2, xr; unpinned: xu"),
        ):
            strategy = "parallel_dual_write_review"
            args = {"agentId": "default", "task": "edit", "strategy": strategy, "workers": workers, "waitSeconds": 0}
            result = await c.call_tool("dispatch_task", args)
            assert result.is_error, result.structured_content
            text = result.content[0].text  # type: ignore[union-attr]
            assert "placed apart" in text and where in text and "same machine" in text, text
        for name in ("x1", "x2", "xr", "xu"):  # nothing was accepted
            assert not (await call(c, "list_worker_runs", workerName=name))["runs"]
