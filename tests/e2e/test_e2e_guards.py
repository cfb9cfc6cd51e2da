"""Issue #2, acceptance point 3: the guards, through the real ``Client`` on a ``serve`` subprocess over stdio."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from e2e_support import Progress, connect, ok, refused
from mcp import Client

pytestmark = pytest.mark.anyio


@pytest.fixture
async def client(server_env: dict[str, str]) -> AsyncIterator[Client]:
    """A real client on a fresh stdio server."""
    async with connect("stdio", server_env) as c:
        yield c


async def test_agent_id_is_required_and_checked(client: Client) -> None:
    text = await refused(client, "spawn_worker", {"name": "w1", "model": "mock"})
    assert "agentId" in text
    for bad in ["", "has space", "semi;colon", "x" * 65, "../etc", "nul\x00byte"]:
        for tool, args in [
            ("spawn_worker", {"agentId": bad, "name": "w1", "model": "mock"}),
            ("dispatch_task", {"agentId": bad, "task": "x", "waitSeconds": 0}),
            ("panic", {"agentId": bad, "reason": "x"}),
        ]:
            text = await refused(client, tool, args)
            assert "agentId" in text, (tool, bad, text)
    text = await refused(client, "spawn_worker", {"agentId": 42, "name": "w1", "model": "mock"})
    assert "agentId" in text
    assert (await ok(client, "list_workers", {}))["workers"] == []  # nothing was created on the way
    assert (await ok(client, "panic", {"agentId": "ok-agent", "reason": "probe"}))["engaged"] is True


async def test_other_agents_cannot_stop_or_cancel(client: Client) -> None:
    await ok(client, "spawn_worker", {"agentId": "alice", "name": "alice-w", "model": "mock"})
    run = await ok(client, "dispatch_task", {"agentId": "alice", "task": "[[mock delay=60]] mine", "waitSeconds": 0})

    text = await refused(client, "stop_worker", {"agentId": "bob", "name": "alice-w"})
    assert "alice" in text
    text = await refused(client, "cancel_run", {"agentId": "bob", "runId": run["runId"]})
    assert "alice" in text
    text = await refused(
        client, "dispatch_task", {"agentId": "bob", "task": "x", "workers": ["alice-w"], "waitSeconds": 0}
    )
    assert "alice" in text
    text = await refused(client, "dispatch_task", {"agentId": "bob", "task": "x", "waitSeconds": 0})
    assert "spawn_worker" in text  # bob has no worker of his own

    # Nothing changed: the run still goes, the worker still works; the owner can do both.
    assert (await ok(client, "get_run", {"runId": run["runId"]}))["status"] in ("accepted", "running")
    canceled = await ok(client, "cancel_run", {"agentId": "alice", "runId": run["runId"]})
    assert canceled["status"] == "canceled"
    assert (await ok(client, "stop_worker", {"agentId": "alice", "name": "alice-w"}))["status"] == "stopped"


async def test_workdir_jail(client: Client, root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "work" / "escape").symlink_to(outside, target_is_directory=True)
    (root / "inside-link").symlink_to(root / "work", target_is_directory=True)
    bad = {
        "absolute outside": str(outside),
        "dotdot absolute": str(root / "work" / ".." / ".."),
        "dotdot relative": "../outside",
        "symlink out": str(root / "work" / "escape"),
        "symlink out relative": "work/escape",
        "nul byte": "work\x00/x",
        "missing": "work/nope",
        "a file": "file.txt",
        "root of fs": "/",
    }
    (root / "file.txt").write_text("not a directory")
    for i, (label, workdir) in enumerate(bad.items()):
        args = {"agentId": "alice", "name": f"jail-{i}", "model": "mock", "workdir": workdir}
        text = await refused(client, "spawn_worker", args)
        assert "workdir" in text, (label, text)
        if label != "nul byte":
            assert "MCP_ORCHESTRATOR_ROOTS" in text, (label, text)
    assert (await ok(client, "list_workers", {}))["workers"] == []

    # Inside the root: relative, absolute, and through a symlink that stays inside, all resolved.
    good = {"relative": "work", "absolute": str(root / "work"), "symlink in": str(root / "inside-link")}
    for i, (label, workdir) in enumerate(good.items()):
        args = {"agentId": "alice", "name": f"ok-{i}", "model": "mock", "workdir": workdir}
        worker = await ok(client, "spawn_worker", args)
        assert worker["workdir"] == str(root / "work"), label


async def test_duplicate_worker_name_refused(client: Client) -> None:
    await ok(client, "spawn_worker", {"agentId": "alice", "name": "dup", "model": "mock"})
    text = await refused(client, "spawn_worker", {"agentId": "alice", "name": "dup", "model": "mock"})
    assert "dup" in text and "already exists" in text
    text = await refused(client, "spawn_worker", {"agentId": "bob", "name": "dup", "model": "mock"})
    assert "dup" in text
    for name in ["", ".hidden", "..", "a/b", "x" * 65]:
        text = await refused(client, "spawn_worker", {"agentId": "alice", "name": name, "model": "mock"})
        assert "name" in text, (name, text)
    assert [w["name"] for w in (await ok(client, "list_workers", {}))["workers"]] == ["dup"]


async def test_idempotency_key(client: Client) -> None:
    for agent in ("alice", "bob"):
        await ok(client, "spawn_worker", {"agentId": agent, "name": f"{agent}-w", "model": "mock"})
    args = {"agentId": "alice", "task": "once", "idempotencyKey": "key-1", "waitSeconds": 30}
    first = await ok(client, "dispatch_task", args)
    assert first["status"] == "completed"
    second = await ok(client, "dispatch_task", args)
    assert second["runId"] == first["runId"]
    # The same key with a different task still names the first run: the key, not the text, identifies it.
    third = await ok(client, "dispatch_task", {**args, "task": "twice", "waitSeconds": 0})
    assert third["runId"] == first["runId"]
    assert third["task"] == "once"
    # Keys are per agent.
    bobs = await ok(client, "dispatch_task", {**args, "agentId": "bob"})
    assert bobs["runId"] != first["runId"]
    other = await ok(client, "dispatch_task", {**args, "idempotencyKey": "key-2"})
    assert other["runId"] != first["runId"]
    listed = await ok(client, "list_worker_runs", {"agentId": "alice"})
    assert sorted(r["runId"] for r in listed["runs"]) == sorted({first["runId"], other["runId"]})


async def test_canceling_the_call_does_not_cancel_the_run(client: Client) -> None:
    await ok(client, "spawn_worker", {"agentId": "alice", "name": "w1", "model": "mock"})
    progress = Progress()
    started = progress.event_for("step 0: w1 (mock) started")
    with anyio.fail_after(10):
        with anyio.CancelScope() as scope:

            async def watch() -> None:
                await started.wait()
                scope.cancel()

            async with anyio.create_task_group() as tg:
                tg.start_soon(watch)
                await client.call_tool(
                    "dispatch_task",
                    {"agentId": "alice", "task": "[[mock delay=1.5]] outlive the call", "waitSeconds": 60},
                    progress_callback=progress,
                )
                pytest.fail("the call returned before it was canceled")
        assert scope.cancelled_caught
    [summary] = (await ok(client, "list_worker_runs", {"agentId": "alice"}))["runs"]
    assert summary["status"] in ("running", "completed")  # not canceled: it outlives the call
    run = await ok(client, "get_run", {"runId": summary["runId"], "waitSeconds": 30})
    assert run["status"] == "completed", run
    assert run["steps"][0]["status"] == "completed"
    # The connection is still healthy after the cancellation.
    assert (await ok(client, "list_workers", {}))["workers"][0]["status"] == "idle"


async def test_bad_arguments_are_error_results(client: Client) -> None:
    await ok(client, "spawn_worker", {"agentId": "alice", "name": "w1", "model": "mock"})
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("spawn_worker", {"agentId": "alice", "name": "w2", "model": "gpt-9"}, "model"),
        ("spawn_worker", {"agentId": "alice", "name": "w2", "model": "mock", "runtimeMode": "cli"}, "runtimeMode"),
        ("dispatch_task", {"agentId": "alice", "task": "   ", "waitSeconds": 0}, "task"),
        ("dispatch_task", {"agentId": "alice", "task": "x\x00y", "waitSeconds": 0}, "task"),
        ("dispatch_task", {"agentId": "alice", "task": "x", "waitSeconds": -1}, "waitSeconds"),
        ("dispatch_task", {"agentId": "alice", "task": "x", "waitSeconds": 10_000}, "waitSeconds"),
        ("get_run", {"runId": "run_../../etc/passwd"}, "runId"),
        ("get_run", {"runId": "run_0123456789ab01234567"}, "run_0123456789ab01234567"),
        ("list_worker_runs", {"limit": 0}, "limit"),
        ("list_worker_runs", {"cursor": "../x"}, "not a run id"),
        ("cancel_run", {"agentId": "alice", "runId": "nope"}, "runId"),
        ("stop_worker", {"agentId": "alice", "name": "ghost"}, "ghost"),
    ]
    for tool, args, needle in cases:
        text = await refused(client, tool, args)
        assert needle in text, (tool, args, text)
