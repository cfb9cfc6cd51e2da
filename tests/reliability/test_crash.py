"""Crash safety of the data directory (issue #2, acceptance points 4 and 5).

Real server processes on one data directory: a ``kill -9`` in the middle of twenty runs, four
servers writing at once, corrupt and half-written documents found at start-up, and concurrent
read-modify-writes through the store from several processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from support.executors import inline
from support.records import full
from support.servers import REPO, ServerProcess, stdio_params

from mcp_orchestrator.contracts import RunRecord, Step, WorkerRecord, utcnow
from mcp_orchestrator.service.orchestrator import new_run_id
from mcp_orchestrator.store import JsonRunStore
from mcp_orchestrator.store.slots import document


@pytest.fixture
def server_env(server_env: dict[str, str]) -> dict[str, str]:
    """This module tests the serving process's own scheduler and leases: ``serve`` in inline mode."""
    return inline(server_env)


# ---- helpers ----------------------------------------------------------------------------------


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float) -> None:
    """Poll ``check`` until it holds; fail after ``seconds``."""
    with anyio.fail_after(seconds):
        while True:
            if await check():
                return
            await anyio.sleep(0.05)


@asynccontextmanager
async def http_servers(env: dict[str, str], logs: Path, count: int) -> AsyncIterator[list[ServerProcess]]:
    """Start ``count`` HTTP servers on one data directory (in parallel) and stop them afterwards."""
    servers = [ServerProcess(env, logs / f"server-{i}.log") for i in range(count)]
    try:
        async with anyio.create_task_group() as tg:
            for s in servers:
                tg.start_soon(s.ready)
        yield servers
    finally:
        for s in servers:
            s.stop()


async def call(client: Client, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    """Call a tool that must succeed; return its structured result."""
    result = await client.call_tool(tool, full(tool, args), read_timeout_seconds=60)
    assert not result.is_error, f"{tool}({args}) failed: {result.content}"
    assert result.structured_content is not None
    return result.structured_content


async def all_run_ids(client: Client, limit: int = 200, **flt: Any) -> list[str]:
    """Every run id through ``list_worker_runs`` pagination, in the order served."""
    ids: list[str] = []
    cursor: str | None = None
    while True:
        args: dict[str, Any] = {"limit": limit, **flt}
        if cursor is not None:
            args["cursor"] = cursor
        page = await call(client, "list_worker_runs", args)
        ids.extend(r["runId"] for r in page["runs"])
        cursor = page.get("nextCursor")
        if cursor is None:
            return ids


def outside_quarantine(home: Path, pattern: str) -> Iterator[Path]:
    return (p for p in home.rglob(pattern) if p.relative_to(home).parts[0] != "quarantine")


def assert_every_document_parses(home: Path) -> None:
    docs = list(outside_quarantine(home, "*.json"))
    assert docs
    for path in docs:
        json.loads(path.read_bytes())
    leftovers = list(outside_quarantine(home, "*.tmp-*"))
    assert leftovers == [], f"half-written temporary files left behind: {leftovers}"


def quarantine_entries(home: Path) -> list[str]:
    return sorted(p.name for p in (home / "quarantine").iterdir() if not p.name.endswith(".reason.txt"))


def dead_pid() -> int:
    """The pid of a process that has exited (and was reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# ---- (a) kill -9 in the middle of twenty runs ------------------------------------------------


@pytest.mark.slow
@pytest.mark.anyio
async def test_kill9_mid_run_then_restart_interrupts_every_run(
    server_env: dict[str, str], data_home: Path, tmp_path: Path
) -> None:
    workers = [f"crash-{i}" for i in range(5)]
    async with http_servers(server_env, tmp_path / "logs-a", 1) as (server,):
        async with Client(server.url) as client:
            for name in workers:
                await call(client, "spawn_worker", {"agentId": "crasher", "name": name, "model": "mock"})
            dispatched = []
            for i in range(20):
                run = await call(
                    client,
                    "dispatch_task",
                    {
                        "agentId": "crasher",
                        "task": f"long task {i} [[mock delay=30]]",
                        "workers": [workers[i % len(workers)]],
                        "waitSeconds": 0,
                    },
                )
                dispatched.append(run["runId"])

            async def all_running() -> bool:
                return len(await all_run_ids(client, status="running")) == 20

            async def all_busy() -> bool:
                return len((await call(client, "list_workers", {"status": "busy"}))["workers"]) == len(workers)

            await eventually(all_running, 30)
            await eventually(all_busy, 30)
        server.kill9()

    # What the dead process left on disk: every run still claims to be running, workers busy.
    store = JsonRunStore(data_home, fsync=False)
    assert {store.get_run(r).status for r in dispatched} == {"running"}
    assert sorted(store.active_run_ids()) == sorted(dispatched)
    assert {w.status for w in store.list_workers()} == {"busy"}

    async with Client(stdio_params(server_env)) as client:
        ids = await all_run_ids(client, limit=7)
        assert sorted(ids) == sorted(dispatched)
        for run_id in dispatched:
            run = await call(client, "get_run", {"runId": run_id})
            assert run["status"] == "failed", run
            assert run["error"]["class"] == "interrupted"
            assert run["endedAt"] is not None
            assert {s["status"] for s in run["steps"]} <= {"failed", "completed"}
            assert all(s["failureClass"] == "interrupted" for s in run["steps"] if s["status"] == "failed")
        assert await all_run_ids(client, status="running") == []
        assert await all_run_ids(client, status="accepted") == []
        listed = (await call(client, "list_workers", {}))["workers"]
        assert {w["name"]: w["status"] for w in listed} == dict.fromkeys(workers, "idle")
        # The freed workers take new work.
        done = await call(client, "dispatch_task", {"agentId": "crasher", "task": "after the crash", "waitSeconds": 30})
        assert done["status"] == "completed"

    assert list((data_home / "active").iterdir()) == []
    assert quarantine_entries(data_home) == []
    assert_every_document_parses(data_home)
    for path in (data_home / "workers").glob("*.json"):
        assert WorkerRecord.model_validate_json(document(path.read_bytes())).current_run_id is None


# ---- (b) four server processes writing one data directory ------------------------------------


@pytest.mark.slow
@pytest.mark.anyio
async def test_four_servers_share_one_data_directory(
    server_env: dict[str, str], data_home: Path, tmp_path: Path
) -> None:
    per_server = 100
    dispatched: list[list[str]] = [[] for _ in range(4)]

    async def drive(index: int, url: str) -> None:
        agent, worker = f"agent-{index}", f"worker-{index}"
        async with Client(url) as client:
            await call(client, "spawn_worker", {"agentId": agent, "name": worker, "model": "mock"})
            for i in range(per_server):
                run = await call(
                    client,
                    "dispatch_task",
                    {"agentId": agent, "task": f"task {index}/{i}", "workers": [worker], "waitSeconds": 0},
                )
                dispatched[index].append(run["runId"])
            for run_id in dispatched[index]:
                run = await call(client, "get_run", {"runId": run_id, "waitSeconds": 60})
                assert run["status"] == "completed", run

    async with http_servers(server_env, tmp_path / "logs-b", 4) as servers:
        async with anyio.create_task_group() as tg:
            for i, server in enumerate(servers):
                tg.start_soon(drive, i, server.url)

        expected = {run_id for ids in dispatched for run_id in ids}
        assert len(expected) == 4 * per_server
        # Every server sees every run, whoever wrote it.
        for server in (servers[0], servers[3]):
            async with Client(server.url) as client:
                listed = await all_run_ids(client, limit=37)
                assert len(listed) == len(set(listed)) == 4 * per_server
                assert set(listed) == expected
                assert listed == sorted(listed, reverse=True)
                completed = await all_run_ids(client, status="completed")
                assert set(completed) == expected
                for i in range(4):
                    mine = await all_run_ids(client, workerName=f"worker-{i}")
                    assert set(mine) == set(dispatched[i])
        async with Client(servers[1].url) as client:
            for run_id in sorted(expected):
                run = await call(client, "get_run", {"runId": run_id})
                assert run["status"] == "completed"
                assert len(run["steps"]) == 1
                assert run["steps"][0]["status"] == "completed"
            workers = (await call(client, "list_workers", {}))["workers"]
            assert sorted((w["name"], w["status"]) for w in workers) == [(f"worker-{i}", "idle") for i in range(4)]

    assert quarantine_entries(data_home) == []
    assert list((data_home / "active").iterdir()) == []
    assert_every_document_parses(data_home)


@pytest.mark.slow
@pytest.mark.anyio
async def test_idempotency_keys_hold_across_server_processes(
    server_env: dict[str, str], data_home: Path, tmp_path: Path
) -> None:
    """Four servers dispatch the same 20 keys for one agent at once: 20 runs, one per key."""
    keys = [f"key-{i}" for i in range(20)]
    seen: dict[str, set[str]] = {k: set() for k in keys}

    async def drive(url: str, order: list[str]) -> None:
        async with Client(url) as client:
            for key in order:
                args = {"agentId": "same", "task": f"once {key}", "idempotencyKey": key, "waitSeconds": 0}
                seen[key].add((await call(client, "dispatch_task", args))["runId"])

    async with http_servers(server_env, tmp_path / "logs-idem", 4) as servers:
        async with Client(servers[0].url) as client:
            await call(client, "spawn_worker", {"agentId": "same", "name": "shared", "model": "mock"})
        async with anyio.create_task_group() as tg:
            for i, server in enumerate(servers):
                tg.start_soon(drive, server.url, keys[i:] + keys[:i])
        async with Client(servers[2].url) as client:
            ids = await all_run_ids(client)
            for run_id in ids:
                assert (await call(client, "get_run", {"runId": run_id, "waitSeconds": 30}))["status"] == "completed"
    assert all(len(found) == 1 for found in seen.values()), seen
    assert sorted(ids) == sorted(next(iter(found)) for found in seen.values())
    assert quarantine_entries(data_home) == []


# ---- (c) corrupt and half-written documents at start-up --------------------------------------


def _stored_run(store: JsonRunStore, worker: str, task: str) -> RunRecord:
    now = utcnow()
    run = RunRecord(
        run_id=new_run_id(),
        status="completed",
        strategy="single_worker",
        task=task,
        agent_id="keeper",
        created_at=now,
        ended_at=now,
        workers=[worker],
        summary="done",
    )
    return store.create_run(run)


@pytest.mark.anyio
async def test_corrupt_and_half_written_documents_are_quarantined_at_start(
    server_env: dict[str, str], data_home: Path, root: Path
) -> None:
    store = JsonRunStore(data_home, fsync=False)
    store.put_worker(
        WorkerRecord(
            name="good",
            model="mock",
            runtime_mode="mock",
            workdir=str(root),
            owner_agent_id="keeper",
            created_at=utcnow(),
        )
    )
    store.put_worker(
        WorkerRecord(
            name="bad", model="mock", runtime_mode="mock", workdir=str(root), owner_agent_id="x", created_at=utcnow()
        )
    )
    good = [_stored_run(store, "good", f"kept {i}") for i in range(3)]
    broken = _stored_run(store, "good", "to be corrupted")
    # A run document of garbage bytes (and still marked active), a truncated worker document,
    # and a temporary file a dead writer never renamed into place.
    (data_home / "runs" / broken.run_id / "run.json").write_bytes(b"\x00\xff\xfe{garbage")
    (data_home / "active" / broken.run_id).touch()
    worker_doc = data_home / "workers" / "bad.json"
    worker_doc.write_bytes(worker_doc.read_bytes()[:40])
    pid = dead_pid()
    tmp_name = f"run.json.tmp-{pid}-abcd"
    (data_home / "runs" / good[0].run_id / tmp_name).write_bytes(b'{"runId": "run_')
    # A temporary file of a live writer (this test process) is a write in flight: never touched.
    live_tmp = data_home / "runs" / good[1].run_id / f"run.json.tmp-{os.getpid()}-beef"
    live_tmp.write_bytes(b"{")

    async with Client(stdio_params(server_env)) as client:
        names = [w["name"] for w in (await call(client, "list_workers", {}))["workers"]]
        assert names == ["good"]
        for run in good:
            assert (await call(client, "get_run", {"runId": run.run_id}))["task"] == run.task
        missing = await client.call_tool("get_run", {"runId": broken.run_id})
        assert missing.is_error
        assert f"No run named '{broken.run_id}'" in missing.content[0].text  # type: ignore[union-attr]

        async def all_quarantined() -> bool:  # the start-up check runs in the background
            return len(quarantine_entries(data_home)) == 3

        await eventually(all_quarantined, 20)

        checked = await anyio.run_process(
            [sys.executable, "-m", "mcp_orchestrator", "store", "check"], env=server_env, cwd=str(REPO)
        )
        report = json.loads(checked.stdout)
        assert report["home"] == str(data_home)
        listed = {name: reason for name, reason in report["quarantine"]}
        assert len(listed) == 3, listed
        by_suffix = {
            "workers__bad.json": "WorkerRecord",
            f"runs__{broken.run_id}__run.json": "RunRecord",
            f"runs__{good[0].run_id}__{tmp_name}": "half-written",
        }
        for suffix, word in by_suffix.items():
            (name,) = [n for n in listed if n.endswith(suffix)]
            assert word in listed[name]
            assert (data_home / "quarantine" / f"{name}.reason.txt").read_text().strip() == listed[name]
        assert live_tmp.exists()

        # Still healthy: the good runs are served and new work runs.
        assert sorted(await all_run_ids(client)) == sorted(r.run_id for r in good)
        done = await call(client, "dispatch_task", {"agentId": "keeper", "task": "still alive", "waitSeconds": 30})
        assert done["status"] == "completed"
    live_tmp.unlink()
    assert_every_document_parses(data_home)


# ---- concurrent read-modify-write through the store ------------------------------------------

_APPENDER = """
import sys
from pathlib import Path
from mcp_orchestrator.contracts import Step
from mcp_orchestrator.store import JsonRunStore

home, run_id, tag, count = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
store = JsonRunStore(home, fsync=False)
for i in range(count):
    def change(run, i=i):
        step = Step(index=len(run.steps), worker_name=f"{tag}-{i}", role="writer", runtime_mode="mock")
        return run.model_copy(update={"steps": [*run.steps, step]})
    store.update_run(run_id, change)
"""


def test_concurrent_update_run_from_processes_loses_nothing(data_home: Path) -> None:
    store = JsonRunStore(data_home, fsync=False)
    run = _stored_run(store, "w", "shared")
    count = 60
    procs = [
        subprocess.Popen([sys.executable, "-c", _APPENDER, str(data_home), run.run_id, f"p{k}", str(count)])
        for k in range(4)
    ]
    for proc in procs:
        assert proc.wait(timeout=120) == 0
    steps = store.get_run(run.run_id).steps
    assert len(steps) == 4 * count
    assert [s.index for s in steps] == list(range(4 * count))
    assert {s.worker_name for s in steps} == {f"p{k}-{i}" for k in range(4) for i in range(count)}


def test_concurrent_update_run_from_threads_loses_nothing(data_home: Path) -> None:
    import threading

    store = JsonRunStore(data_home, fsync=False)
    run = _stored_run(store, "w", "shared")
    count = 50

    def append(tag: str) -> None:
        for i in range(count):

            def change(r: RunRecord, i: int = i) -> RunRecord:
                step = Step(index=len(r.steps), worker_name=f"{tag}-{i}", role="writer", runtime_mode="mock")
                return r.model_copy(update={"steps": [*r.steps, step]})

            store.update_run(run.run_id, change)

    threads = [threading.Thread(target=append, args=(f"t{k}",)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    steps = store.get_run(run.run_id).steps
    assert len(steps) == 4 * count
    assert {s.worker_name for s in steps} == {f"t{k}-{i}" for k in range(4) for i in range(count)}
