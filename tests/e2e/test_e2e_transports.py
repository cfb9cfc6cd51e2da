"""Issue #2, acceptance point 2: the whole tool surface through the SDK's real ``Client`` on every transport.

One server subprocess per transport runs the scenario below in order (start-up is the expensive part);
each phase is its own function so a failure names the phase.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from e2e_support import TRANSPORTS, Progress, connect, ok, panic_cli, read_text, refused
from mcp import Client

pytestmark = pytest.mark.anyio

AGENT = "alice"


async def phase_spawn(c: Client, root: Path) -> None:
    worker = await ok(c, "spawn_worker", {"agentId": AGENT, "name": "w1", "model": "mock"})
    assert worker["name"] == "w1"
    assert worker["runtimeMode"] == "mock"
    assert worker["status"] == "idle"
    assert worker["ownerAgentId"] == AGENT
    assert worker["workdir"] == str(root)
    listed = await ok(c, "list_workers", {})
    assert [w["name"] for w in listed["workers"]] == ["w1"]


async def phase_dispatch_waiting(c: Client) -> None:
    progress = Progress()
    run = await ok(
        c,
        "dispatch_task",
        {"agentId": AGENT, "task": "write a haiku about queues", "waitSeconds": 30},
        progress_callback=progress,
    )
    assert run["status"] == "completed", run
    assert run["agentId"] == AGENT
    assert run["error"] is None
    [step] = run["steps"]
    assert step["runtimeMode"] == "mock"
    assert step["status"] == "completed"
    assert step["workerName"] == "w1"
    assert "write a haiku about queues" in step["output"]
    assert step["outputTruncated"] is False
    assert step["outputBytes"] == len(step["output"].encode())
    # Progress notifications: at least the step's start and its end.
    assert any("step 0" in m and "started" in m for m in progress.messages), progress.messages
    assert any("step 0" in m and "completed" in m for m in progress.messages), progress.messages


async def phase_dispatch_then_poll(c: Client) -> None:
    run = await ok(c, "dispatch_task", {"agentId": AGENT, "task": "later [[mock delay=0.5]]", "waitSeconds": 0})
    assert run["status"] in ("accepted", "running"), run
    done = await ok(c, "get_run", {"runId": run["runId"], "waitSeconds": 30})
    assert done["runId"] == run["runId"]
    assert done["status"] == "completed", done
    assert done["steps"][0]["runtimeMode"] == "mock"
    assert done["steps"][0]["output"]


async def phase_pagination(c: Client) -> None:
    await ok(c, "spawn_worker", {"agentId": "pager", "name": "pager-w", "model": "mock"})
    created = []
    for i in range(5):
        run = await ok(c, "dispatch_task", {"agentId": "pager", "task": f"page task {i}", "waitSeconds": 30})
        assert run["status"] == "completed"
        created.append(run["runId"])
    for flt in ({"agentId": "pager"}, {"workerName": "pager-w"}):
        seen: list[str] = []
        cursor: str | None = None
        pages = 0
        while True:
            args: dict[str, Any] = {**flt, "limit": 2}
            if cursor is not None:
                args["cursor"] = cursor
            page = await ok(c, "list_worker_runs", args)
            pages += 1
            assert 1 <= len(page["runs"]) <= 2, page
            seen += [r["runId"] for r in page["runs"]]
            cursor = page.get("nextCursor")
            if cursor is None:
                break
            assert pages < 10, "pagination does not end"
        assert seen == created[::-1], (flt, seen)  # every run exactly once, newest first
        assert pages == 3


async def phase_resources(c: Client) -> None:
    big = await ok(c, "dispatch_task", {"agentId": AGENT, "task": "big [[mock bytes=200000]]", "waitSeconds": 30})
    assert big["status"] == "completed", big
    [step] = big["steps"]
    assert step["outputTruncated"] is True
    assert step["outputBytes"] == 200_000
    assert len(step["output"].encode()) < 10_000  # the excerpt, not the whole output
    as_tool = await ok(c, "get_run", {"runId": big["runId"]})
    as_resource = json.loads(await read_text(c, f"runs://{big['runId']}"))
    assert as_resource == as_tool
    full = await read_text(c, f"runs://{big['runId']}/steps/0/output")
    assert len(full.encode()) == 200_000
    assert full.startswith(step["output"][:100])
    assert full.endswith(step["output"][-100:])


async def phase_cancel(c: Client) -> None:
    slow = await ok(c, "dispatch_task", {"agentId": AGENT, "task": "slow [[mock delay=60]]", "waitSeconds": 0})
    with anyio.fail_after(5):  # the run sleeps 60 s: only a real cancellation ends it this soon
        canceled = await ok(c, "cancel_run", {"agentId": AGENT, "runId": slow["runId"]})
    assert canceled["status"] == "canceled", canceled
    assert canceled["error"]["class"] == "canceled"
    assert all(s["status"] == "canceled" for s in canceled["steps"]), json.dumps(canceled, indent=1)
    again = await ok(c, "cancel_run", {"agentId": AGENT, "runId": slow["runId"]})  # idempotent on a finished run
    assert again["status"] == "canceled"
    workers = {w["name"]: w for w in (await ok(c, "list_workers", {}))["workers"]}
    assert workers["w1"]["status"] == "idle"


async def phase_stop_worker(c: Client) -> None:
    await ok(c, "spawn_worker", {"agentId": AGENT, "name": "w-stop", "model": "mock"})
    progress = Progress()
    started = progress.event_for("step 0: w-stop (mock) started")
    outcome: dict[str, Any] = {}

    async def dispatch() -> None:
        args = {"agentId": AGENT, "task": "[[mock delay=60]] long", "workers": ["w-stop"], "waitSeconds": 30}
        outcome["run"] = await ok(c, "dispatch_task", args, progress_callback=progress)

    with anyio.fail_after(15):
        async with anyio.create_task_group() as tg:
            tg.start_soon(dispatch)
            await started.wait()
            busy = {w["name"]: w for w in (await ok(c, "list_workers", {"status": "busy"}))["workers"]}
            assert "w-stop" in busy
            stopped = await ok(c, "stop_worker", {"agentId": AGENT, "name": "w-stop"})
            assert stopped["status"] == "stopped"
    run = outcome["run"]
    assert run["status"] == "canceled", run
    assert run["steps"][0]["status"] == "canceled"
    assert run["steps"][0]["failureClass"] == "canceled"
    stopped_list = (await ok(c, "list_workers", {"status": "stopped"}))["workers"]
    assert [w["name"] for w in stopped_list] == ["w-stop"]
    text = await refused(c, "dispatch_task", {"agentId": AGENT, "task": "x", "workers": ["w-stop"], "waitSeconds": 0})
    assert "stopped" in text


async def phase_panic(c: Client, env: dict[str, str]) -> None:
    victim = await ok(c, "dispatch_task", {"agentId": AGENT, "task": "[[mock delay=60]] victim", "waitSeconds": 0})
    state = await ok(c, "panic", {"agentId": AGENT, "reason": "e2e drill"})
    assert state["engaged"] is True
    assert state["engagedBy"] == AGENT
    ended = await ok(c, "get_run", {"runId": victim["runId"], "waitSeconds": 10})
    assert ended["status"] == "canceled", ended
    assert "panic" in ended["error"]["message"]

    mutating: list[tuple[str, dict[str, Any]]] = [
        ("spawn_worker", {"agentId": AGENT, "name": "w-panic", "model": "mock"}),
        ("dispatch_task", {"agentId": AGENT, "task": "refused", "waitSeconds": 0}),
        ("stop_worker", {"agentId": AGENT, "name": "w1"}),
        ("cancel_run", {"agentId": AGENT, "runId": victim["runId"]}),
    ]
    for tool, args in mutating:
        text = await refused(c, tool, args)
        assert "mcp-orchestrator panic off" in text, (tool, text)
    # Reads keep working while the guard is on.
    assert (await ok(c, "list_workers", {}))["workers"]
    assert (await ok(c, "get_run", {"runId": victim["runId"]}))["status"] == "canceled"
    assert (await ok(c, "list_worker_runs", {"agentId": AGENT, "limit": 1}))["runs"]
    assert (await ok(c, "panic", {"agentId": AGENT, "reason": "again"}))["reason"] == "e2e drill"

    released = await panic_cli(env, "off")
    assert released["engaged"] is False
    worker = await ok(c, "spawn_worker", {"agentId": AGENT, "name": "w-after", "model": "mock"})
    assert worker["status"] == "idle"
    run = await ok(c, "dispatch_task", {"agentId": AGENT, "task": "after", "workers": ["w-after"], "waitSeconds": 30})
    assert run["status"] == "completed"


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_scenario(transport: str, server_env: dict[str, str], root: Path) -> None:
    with anyio.fail_after(90):
        async with connect(transport, server_env) as c:
            await phase_spawn(c, root)
            await phase_dispatch_waiting(c)
            await phase_dispatch_then_poll(c)
            await phase_pagination(c)
            await phase_resources(c)
            await phase_cancel(c)
            await phase_stop_worker(c)
            await phase_panic(c, server_env)
