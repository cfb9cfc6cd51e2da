"""The optional protocol methods of issue 16, through real clients on real ``serve`` processes.

- ``resources/subscribe``: a client of one serve process hears every transition of a run that another serve
  process dispatched and the data directory's executor daemon runs, within a second.
- ``completion/complete``: run ids newest first and worker names, filtered by what was typed.
- ``logging/setLevel``: the serving process's log records reach the session as ``notifications/message``,
  only once it set a level and only at or above it.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import pytest
from e2e_support import CALL_TIMEOUT, ok, read_text
from mcp import Client, MCPError
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp.types import (
    LoggingLevel,
    LoggingMessageNotificationParams,
    PromptReference,
    ResourceTemplateReference,
    ResourceUpdatedNotification,
)
from support.servers import ServerProcess, stdio_params

from mcp_orchestrator.config import Settings
from mcp_orchestrator.contracts import TERMINAL_RUN_STATUSES
from mcp_orchestrator.server.app import build_server

pytestmark = pytest.mark.anyio

MOCK = {"model": "mock"}


class Updates:
    """The ``notifications/resources/updated`` a client received, with when they arrived (wall clock)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, float]] = []
        self._changed = anyio.Event()

    async def __call__(self, message: Any) -> None:
        if isinstance(message, ResourceUpdatedNotification):
            self.seen.append((str(message.params.uri), time.time()))
            self._changed.set()
            self._changed = anyio.Event()

    def of(self, uri: str) -> list[float]:
        """Arrival times of the updates of ``uri``."""
        return [t for u, t in self.seen if u == uri]

    async def until(self, done: Callable[[], bool]) -> None:
        """Until ``done()`` holds, checked after each update."""
        while not done():
            await self._changed.wait()


async def _subscribe(client: Client, uri: str) -> None:
    with warnings.catch_warnings():  # deprecated in the 2026 era; this is the handshake era's method
        warnings.simplefilter("ignore", MCPDeprecationWarning)
        await client.subscribe_resource(uri)


async def _unsubscribe(client: Client, uri: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MCPDeprecationWarning)
        await client.unsubscribe_resource(uri)


async def _set_level(client: Client, level: LoggingLevel) -> None:
    with warnings.catch_warnings():  # the handshake era's logging/setLevel, deprecated as of 2026-07-28
        warnings.simplefilter("ignore", MCPDeprecationWarning)
        await client.set_logging_level(level)


def _ts(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


async def test_subscriber_hears_every_transition_of_a_run_another_process_executes(
    tmp_path: Path, server_env: dict[str, str]
) -> None:
    env = {**server_env, "MCP_ORCHESTRATOR_MAX_RUNNING": "1"}  # the second run waits, accepted, for the first
    watcher = ServerProcess(env, tmp_path / "watcher.log")
    updates = Updates()
    try:
        await watcher.ready()
        async with (
            Client(stdio_params(env), read_timeout_seconds=CALL_TIMEOUT) as other,
            Client(watcher.url, mode="legacy", message_handler=updates, read_timeout_seconds=CALL_TIMEOUT) as c,
        ):
            assert c.server_capabilities.resources is not None and c.server_capabilities.resources.subscribe
            for name in ("w1", "w2"):
                await ok(other, "spawn_worker", {"agentId": "a", "name": name, **MOCK})
            first = await ok(
                other,
                "dispatch_task",
                {"agentId": "a", "task": "[[mock delay=1.5]] first", "workers": ["w1"], "waitSeconds": 0},
            )
            run = await ok(
                other,
                "dispatch_task",
                {"agentId": "a", "task": "[[mock delay=0.8]] second", "workers": ["w2"], "waitSeconds": 0},
            )
            run_id = run["runId"]
            assert run["status"] == "accepted", run
            uri, summary = f"runs://{run_id}", f"runs://{run_id}/summary"
            await _subscribe(c, uri)
            await _subscribe(c, summary)
            await _subscribe(c, f"runs://{first['runId']}")
            await _unsubscribe(c, f"runs://{first['runId']}")

            with anyio.fail_after(30):
                handled = [0]
                while True:  # read the run after each update until it has ended
                    await updates.until(lambda: len(updates.of(uri)) > handled[0])
                    handled[0] = len(updates.of(uri))
                    doc = json.loads(await read_text(c, uri))
                    if doc["status"] in TERMINAL_RUN_STATUSES:
                        break
                # the summary's notifications go out in the same poll, right after the run's
                await updates.until(lambda: len(updates.of(summary)) >= len(updates.of(uri)))
    finally:
        watcher.stop()

    assert doc["status"] == "completed", doc
    # The serving process did not run it: the executor daemon did (its instance label is not the watcher's).
    assert doc["executedBy"] and str(watcher.pid) not in doc["executedBy"].split(":")
    # accepted -> running, the step started, the step ended, the run ended: one update each at least.
    times = updates.of(uri)
    assert len(times) >= 4, updates.seen
    assert len(updates.of(summary)) == len(times)
    (step,) = doc["steps"]
    for transition in (doc["startedAt"], step["startedAt"], step["endedAt"], doc["endedAt"]):
        at = _ts(transition)
        heard = [t for t in times if t >= at - 0.05]
        assert heard and heard[0] - at < 1.0, (transition, times)
    # Unsubscribed at once: nothing about the first run, though it ran and ended meanwhile.
    assert not updates.of(f"runs://{first['runId']}")


async def test_subscribing_to_a_missing_run_is_refused_and_other_uris_are_accepted(
    tmp_path: Path, server_env: dict[str, str]
) -> None:
    async with Client(stdio_params(server_env), mode="legacy", read_timeout_seconds=CALL_TIMEOUT) as c:
        with pytest.raises(MCPError, match="No run named"):
            await _subscribe(c, "runs://run_000000000000deadbeef")
        await _subscribe(c, "test://watched-resource")  # never fires, as the protocol allows
        await _unsubscribe(c, "test://watched-resource")


async def test_completions_offer_newest_run_ids_and_worker_names_by_prefix(server_env: dict[str, str]) -> None:
    async with Client(stdio_params(server_env), read_timeout_seconds=CALL_TIMEOUT) as c:
        assert c.server_capabilities.completions is not None
        for name in ("alpha", "alps", "beta"):
            await ok(c, "spawn_worker", {"agentId": "a", "name": name, **MOCK})
        ids = []
        for i in range(3):
            run = await ok(c, "dispatch_task", {"agentId": "a", "task": f"t{i}", "workers": ["beta"]})
            ids.append(run["runId"])

        template = ResourceTemplateReference(uri="runs://{run_id}")
        got = (await c.complete(template, {"name": "run_id", "value": "run_"})).completion
        assert got.values == ids[::-1]  # newest first
        assert got.total == 3 and not got.has_more
        narrowed = (await c.complete(template, {"name": "run_id", "value": ids[1]})).completion
        assert narrowed.values == [ids[1]]
        replay = ResourceTemplateReference(uri="replays://{run_id}")
        assert (await c.complete(replay, {"name": "run_id", "value": "nope"})).completion.values == []

        workers = (await c.complete(PromptReference(name="any"), {"name": "workerName", "value": "al"})).completion
        assert workers.values == ["alpha", "alps"] and workers.total == 2
        output = ResourceTemplateReference(uri="runs://{run_id}/steps/{index}/output")
        steps = await c.complete(output, {"name": "index", "value": ""}, context_arguments={"run_id": ids[0]})
        assert steps.completion.values == ["0"]
        # An argument that names nothing here completes to nothing rather than an error.
        assert (await c.complete(template, {"name": "colour", "value": ""})).completion.values == []


async def test_set_level_then_a_logged_event_arrives_as_a_message(server_env: dict[str, str], data_home: Path) -> None:
    messages: list[LoggingMessageNotificationParams] = []
    got = anyio.Event()

    async def on_log(params: LoggingMessageNotificationParams) -> None:
        messages.append(params)
        got.set()

    params = stdio_params({**server_env, "MCP_ORCHESTRATOR_EXECUTOR": "inline"})
    async with Client(params, mode="legacy", logging_callback=on_log, read_timeout_seconds=CALL_TIMEOUT) as c:
        assert c.server_capabilities.logging is not None
        await ok(c, "spawn_worker", {"agentId": "a", "name": "w", **MOCK})
        first = await ok(c, "dispatch_task", {"agentId": "a", "task": "one", "workers": ["w"]})
        second = await ok(c, "dispatch_task", {"agentId": "a", "task": "two", "workers": ["w"]})
        # A corrupt run document: reading it makes this process log a quarantine warning.
        (data_home / "runs" / first["runId"] / "run.json").write_text("{ not json")
        await c.call_tool("get_run", {"runId": first["runId"]})
        assert messages == []  # no level set: nothing is sent

        await _set_level(c, "error")
        (data_home / "runs" / second["runId"] / "run.json").write_text("{ not json")
        await c.call_tool("get_run", {"runId": second["runId"]})
        await _set_level(c, "warning")  # a round trip: anything sent before its answer has arrived
        assert messages == []  # a warning is below "error"

        third = await ok(c, "dispatch_task", {"agentId": "a", "task": "three", "workers": ["w"]})
        (data_home / "runs" / third["runId"] / "run.json").write_text("{ not json")
        await c.call_tool("get_run", {"runId": third["runId"]})
        with anyio.fail_after(10):
            await got.wait()
    (message,) = [m for m in messages if third["runId"] in str(m.data)]
    assert message.level == "warning"
    assert message.logger is not None and message.logger.startswith("mcp_orchestrator")
    assert "quarantined" in str(message.data)


async def test_log_messages_are_redacted_and_come_from_any_thread(settings: Settings) -> None:
    """In process, so the test itself logs: once on the event loop, once from a worker thread."""
    messages: list[LoggingMessageNotificationParams] = []
    got_both = anyio.Event()

    async def on_log(params: LoggingMessageNotificationParams) -> None:
        messages.append(params)
        if len(messages) == 2:
            got_both.set()

    secret = "sk-test-" + "x7" * 12
    log = logging.getLogger("mcp_orchestrator.tests")
    async with Client(build_server(settings), mode="legacy", logging_callback=on_log) as c:
        await _set_level(c, "info")
        log.info("loop: calling with %s", secret)
        await anyio.to_thread.run_sync(log.info, f"thread: calling with {secret}")
        with anyio.fail_after(10):
            await got_both.wait()
    assert sorted(str(m.data).split(":")[0] for m in messages) == ["loop", "thread"]
    for m in messages:
        assert m.level == "info" and m.logger == "mcp_orchestrator.tests"
        assert secret not in str(m.data) and "<redacted>" in str(m.data)
    # The bridge is gone with the server: the logger is as it was.
    assert logging.getLogger("mcp_orchestrator").handlers == []


async def test_a_2026_listen_stream_hears_run_updates(server_env: dict[str, str]) -> None:
    async with Client(stdio_params(server_env), read_timeout_seconds=CALL_TIMEOUT) as c:
        assert c.protocol_version not in ("2025-06-18", "2025-11-25")  # the stateless era: no resources/subscribe
        await ok(c, "spawn_worker", {"agentId": "a", "name": "w", **MOCK})
        run = await ok(c, "dispatch_task", {"agentId": "a", "task": "[[mock delay=1]] x", "waitSeconds": 0})
        uri = f"runs://{run['runId']}"
        with anyio.fail_after(30):
            async with c.listen(resource_subscriptions=[uri]) as sub:
                async for event in sub:
                    assert getattr(event, "uri", None) == uri, event
                    if json.loads(await read_text(c, uri))["status"] in TERMINAL_RUN_STATUSES:
                        break
