"""Replay packages: written at dispatch, completed at the end, shown, diffed and re-run to the same path."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from mcp import Client
from mcp.types import TextResourceContents
from obs_support import cli, dispatch_and_wait, running

from mcp_orchestrator.config import Settings
from mcp_orchestrator.contracts import WorkerRecord, utcnow
from mcp_orchestrator.errors import InvalidArgument, NotFound
from mcp_orchestrator.observability.replay import diff, effective_policy, load, replay_path
from mcp_orchestrator.server import build_server
from mcp_orchestrator.service.rerun import rerun
from mcp_orchestrator.store.slots import document

pytestmark = pytest.mark.anyio


async def test_package_is_frozen_at_dispatch_and_completed_at_the_end(settings: Settings) -> None:
    async with running(settings) as orch:
        await orch.spawn_worker("a", "w", "mock", role="reviewer", timeout_seconds=60)
        run = await orch.dispatch("a", "[[mock delay=30]]", workers=["w"], priority="batch", deadline_seconds=120)
        package = load(settings.home, run.run_id)
        assert package.outcome is None
        assert package.request.task == "[[mock delay=30]]"
        assert package.request.priority == "batch"
        assert package.request.deadline_seconds == pytest.approx(120)
        [profile] = package.request.workers
        assert (profile.name, profile.model, profile.role, profile.timeout_seconds) == ("w", "mock", "reviewer", 60)
        assert package.runtimes == {"w": "mock"}
        assert package.policy.version.startswith("pol_")
        assert package.policy.fallback_policies == {"w": "on_error"}
        canceled = await orch.cancel_run("a", run.run_id)
        ended = load(settings.home, run.run_id, canceled)  # the store may say "ended" a moment before the package
        assert ended.outcome is not None
        assert ended.outcome.status == "canceled"
        assert ended.outcome.steps[0].status == "canceled"
        assert ended.request == package.request  # the request part is written once
        retried = await dispatch_and_wait(orch, "w", "[[mock fail=rate_limited fail_times=1]]")
        outcome = load(settings.home, retried.run_id, retried).outcome
        assert outcome is not None
        assert (outcome.status, outcome.steps[0].attempts) == ("completed", 2)
        assert outcome.steps[0].attempt_classes == ["rate_limited", None]
    for ended_run in (run, retried):  # once the service has stopped, every outcome is in the file itself
        written = json.loads(document(replay_path(settings.home, ended_run.run_id).read_bytes()))
        assert written["outcome"] == load(settings.home, ended_run.run_id).model_dump(mode="json")["outcome"]
        assert written["outcome"]["status"] in ("canceled", "completed")


async def test_rerun_reproduces_the_path_and_diff_shows_deltas(settings: Settings) -> None:
    async with running(settings) as orch:
        await orch.spawn_worker("a", "w", "mock")
        original = await dispatch_and_wait(orch, "w", "[[mock fail=unavailable fail_times=1]] fix it")
        again = await rerun(orch, original.run_id)
        again = await orch.wait_run(again.run_id, 30)
        a, b = load(settings.home, original.run_id, original), load(settings.home, again.run_id, again)
        result = diff(a, b)
        assert result.same_path, result.deltas
        assert b.rerun_of == original.run_id
        assert b.request.workers == a.request.workers  # the same worker, still matching its profile
        # A stopped worker is replaced by a new one with the same profile: the path is still the same.
        await orch.stop_worker("a", "w")
        third = await orch.wait_run((await rerun(orch, original.run_id)).run_id, 30)
        c = load(settings.home, third.run_id, third)
        assert c.request.workers[0].name.startswith("w-r")
        assert diff(a, c).same_path, diff(a, c).deltas
        failed = await dispatch_and_wait(orch, c.request.workers[0].name, "[[mock fail=auth]]")
        delta = {d.path: (d.a, d.b) for d in diff(a, load(settings.home, failed.run_id, failed)).deltas}
        assert delta["outcome.status"] == ("completed", "failed")
        assert delta["steps[0].failureClass"] == (None, "auth")
        assert delta["steps[0].attempts"] == (2, 1)


async def test_a_rerun_keeps_the_workers_machine(settings: Settings) -> None:
    async with running(settings) as orch:
        await orch.spawn_worker("a", "pinned", "mock", machine=settings.machine)
        original = await dispatch_and_wait(orch, "pinned", "pinned work")
        assert load(settings.home, original.run_id).request.workers[0].machine == settings.machine
        await orch.stop_worker("a", "pinned")
        again = await orch.wait_run((await rerun(orch, original.run_id)).run_id, 30)
        (name,) = again.workers
        assert name.startswith("pinned-r") and (await orch.io(orch.store.get_worker, name)).machine == settings.machine


def test_policy_version_hashes_what_decides_the_path(settings: Settings) -> None:
    def worker(name: str, policy: str = "on_error") -> WorkerRecord:
        return WorkerRecord(
            name=name, model="mock", runtime_mode="mock", fallback_policy=policy,  # type: ignore[arg-type]
            workdir="/", owner_agent_id="a", created_at=utcnow(),
        )  # fmt: skip

    base = effective_policy(settings, [worker("w")]).version
    assert effective_policy(settings, [worker("other-name")]).version == base  # names are not policy
    assert effective_policy(settings, [worker("w", "never")]).version != base
    for change in ({"retry_attempts": 5}, {"default_runtime": "cli"}, {"max_running": 2}, {"stall_seconds": 9.0}):
        assert effective_policy(dataclasses.replace(settings, **change), [worker("w")]).version != base, change
    assert effective_policy(dataclasses.replace(settings, output_excerpt_bytes=1), [worker("w")]).version == base


async def test_resource_and_cli(settings: Settings, server_env: dict[str, str]) -> None:
    async with running(settings) as orch:
        await orch.spawn_worker("a", "w", "mock")
        one = await dispatch_and_wait(orch, "w", "first")
        two = await dispatch_and_wait(orch, "w", "[[mock fail=auth]]")
    async with Client(build_server(settings)) as client:
        read = await client.read_resource(f"replays://{one.run_id}")
        [content] = read.contents
        assert isinstance(content, TextResourceContents)
        assert json.loads(content.text) == load(settings.home, one.run_id, one).model_dump(mode="json")
        templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
        assert "replays://{run_id}" in templates
        with pytest.raises(Exception, match=r"No replay|No run"):
            await client.read_resource("replays://run_00000000000000000000")
        with pytest.raises(Exception, match="not a run id"):
            await client.read_resource("replays://nope")
    shown = await cli(server_env, "replay", "show", one.run_id)
    assert shown.code == 0, shown.stderr
    assert shown.json()["outcome"]["status"] == "completed"
    same = await cli(server_env, "replay", "diff", one.run_id, one.run_id)
    assert (same.code, same.json()["samePath"]) == (0, True)
    differ = await cli(server_env, "replay", "diff", one.run_id, two.run_id)
    assert differ.code == 1
    assert any(d["path"] == "outcome.status" for d in differ.json()["deltas"])
    # The CLI's settings come from the environment: with other retry settings the policy (and path) differ.
    changed = await cli(server_env, "replay", "rerun", one.run_id, "--timeout", "30")
    assert changed.code == 1
    assert {d["path"] for d in changed.json()["diff"]["deltas"]} == {"policy.version", "policy.retry"}
    env = {**server_env, "MCP_ORCHESTRATOR_RETRY_ATTEMPTS": "2", "MCP_ORCHESTRATOR_RETRY_BASE_SECONDS": "0"}
    rerun_cli = await cli(env, "replay", "rerun", one.run_id, "--timeout", "30")
    assert rerun_cli.code == 0, rerun_cli.stdout
    assert rerun_cli.json()["diff"]["samePath"] is True
    bad = await cli(server_env, "replay", "show", "../../etc")
    assert bad.code == 2


def test_load_refuses_bad_ids_and_missing_packages(data_home: Path) -> None:
    with pytest.raises(InvalidArgument):
        load(data_home, "../x")
    with pytest.raises(NotFound):
        load(data_home, "run_00000000000000000000")
