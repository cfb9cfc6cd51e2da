"""Issue 13's small defects seen through a real client: a cancel that cancels nothing says so, and every refusal
reads as sentences (a full stop between the problem and what to do)."""

from __future__ import annotations

import pytest
from e2e_support import connect, ok, refused

pytestmark = pytest.mark.anyio


async def test_cancel_of_a_finished_run_says_nothing_was_canceled(server_env: dict[str, str]) -> None:
    async with connect("stdio", server_env) as c:
        await ok(c, "spawn_worker", {"agentId": "a", "name": "w", "model": "mock"})
        run = await ok(c, "dispatch_task", {"agentId": "a", "task": "quick", "waitSeconds": 30})
        assert run["status"] == "completed" and run.get("notice") is None
        again = await ok(c, "cancel_run", {"agentId": "a", "runId": run["runId"]})
        assert again["status"] == "completed"
        assert again["notice"] == "Nothing was canceled: the run had already ended (completed)."
        running = await ok(c, "dispatch_task", {"agentId": "a", "task": "[[mock delay=30]] x", "waitSeconds": 0})
        canceled = await ok(c, "cancel_run", {"agentId": "a", "runId": running["runId"]})
        assert canceled["status"] == "canceled" and canceled.get("notice") is None


async def test_refusals_read_as_sentences(server_env: dict[str, str]) -> None:
    async with connect("stdio", server_env) as c:
        bad_id = await refused(c, "get_run", {"runId": "nope"})
        assert "20 hex digits). " in bad_id, bad_id
        await ok(c, "spawn_worker", {"agentId": "a", "name": "w", "model": "mock"})
        await ok(c, "stop_worker", {"agentId": "a", "name": "w"})
        stopped = await refused(c, "dispatch_task", {"agentId": "a", "task": "t", "workers": ["w"]})
        assert "is stopped. Spawn a new worker." in stopped, stopped
