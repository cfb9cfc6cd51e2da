"""prune: TTL and storage caps for runs, replays and the log; unfinished runs are never touched."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import anyio
import pytest
from obs_support import cli, dispatch_and_wait, running

from mcp_orchestrator.config import Settings
from mcp_orchestrator.contracts import utcnow
from mcp_orchestrator.observability.replay import replay_path
from mcp_orchestrator.observability.retention import RetentionPolicy, _rewrite, prune
from mcp_orchestrator.observability.runlog import RunLog, exclusive, log_path
from mcp_orchestrator.store import JsonRunStore

pytestmark = pytest.mark.anyio
LATER = timedelta(days=31)


def _log_runs(home: Path) -> set[str]:
    return {json.loads(line)["runId"] for line in log_path(home).read_text().splitlines()}


async def test_ttl_removes_finished_runs_and_keeps_unfinished_ones(settings: Settings) -> None:
    home = settings.home
    async with running(settings) as orch:
        await orch.spawn_worker("a", "w", "mock")
        await orch.spawn_worker("a", "busy", "mock")
        done = await dispatch_and_wait(orch, "w", "old news", idempotency_key="k1")
        failed = await dispatch_and_wait(orch, "w", "[[mock fail=auth]]")
        live = await orch.dispatch("a", "[[mock delay=60]]", workers=["busy"])
        store = JsonRunStore(home, fsync=False)
        policy = RetentionPolicy()
        assert prune(home, store, policy).runs.removed == []  # nothing is 30 days old yet

        dry = prune(home, store, policy, dry_run=True, now=utcnow() + LATER)
        assert dry.runs.removed == sorted([done.run_id, failed.run_id])
        assert dry.runs.kept_unfinished == 1
        assert set(dry.log.removed) == {done.run_id, failed.run_id}
        assert (home / "runs" / done.run_id / "run.json").exists()  # a dry run removes nothing

        report = prune(home, store, policy, now=utcnow() + LATER)
        assert report.runs.removed == dry.runs.removed
        assert report.runs.freed_bytes > 0
        assert report.log_lines_removed == 6 + 7  # each run logs its routing; the failed one also its attempt
        for gone in (done, failed):
            assert not (home / "runs" / gone.run_id).exists()
            assert not (home / "index" / "worker" / "w" / gone.run_id).exists()
        assert not list((home / "idempotency").glob("*.json"))  # the key may be used again
        assert (home / "runs" / live.run_id / "run.json").exists()
        assert replay_path(home, live.run_id).exists()
        assert _log_runs(home) == {live.run_id}  # the unfinished run's story is whole
        page = await orch.list_runs(worker_name="w")
        assert page.runs == []
        again = await orch.dispatch("a", "new", workers=["w"], idempotency_key="k1")
        assert again.run_id != done.run_id
        await orch.cancel_run("a", live.run_id)


async def test_caps_evict_the_oldest_finished_first(settings: Settings) -> None:
    home = settings.home
    async with running(settings) as orch:
        await orch.spawn_worker("a", "w", "mock")
        runs = [await dispatch_and_wait(orch, "w", f"run {i} [[mock bytes=20000]]") for i in range(4)]
    store = JsonRunStore(home, fsync=False)
    sizes = {
        r.run_id: sum(p.stat().st_size for p in (home / "runs" / r.run_id).rglob("*") if p.is_file()) for r in runs
    }
    keep_two = sizes[runs[2].run_id] + sizes[runs[3].run_id] + 100
    report = prune(home, store, RetentionPolicy(runs_bytes=keep_two, log_bytes=10**9))
    assert report.runs.removed == sorted(r.run_id for r in runs[:2])
    assert report.runs.kept_bytes <= keep_two
    replays = prune(home, store, RetentionPolicy(replays_bytes=1))
    assert replays.replays.removed == sorted(r.run_id for r in runs[2:])
    assert not replay_path(home, runs[3].run_id).exists()
    assert (home / "runs" / runs[3].run_id / "run.json").exists()  # the run stays; only its replay went
    log = prune(home, store, RetentionPolicy(log_bytes=1))
    assert set(log.log.removed) == {r.run_id for r in runs}  # the log keeps its own retention
    assert log_path(home).read_text() == ""


def test_the_log_swap_keeps_what_was_appended_meanwhile(data_home: Path) -> None:
    runlog = RunLog(data_home)
    runlog.emit("run_accepted", "run_old", agent_id="a", strategy="s", priority="batch")
    runlog.emit("run_accepted", "run_new", agent_id="a", strategy="s", priority="batch")
    path = log_path(data_home)
    snapshot = path.stat().st_size
    runlog.emit("run_ended", "run_old", status="failed", queue_wait_ms=1)  # written after the snapshot
    _rewrite(path, {"run_old"}, snapshot)
    kept = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(e["runId"], e["event"]) for e in kept] == [("run_new", "run_accepted"), ("run_old", "run_ended")]


async def test_a_writer_waiting_for_the_swap_writes_to_the_new_log(data_home: Path) -> None:
    runlog = RunLog(data_home)
    path = log_path(data_home)
    runlog.emit("run_accepted", "run_a", agent_id="a", strategy="s", priority="batch")
    with exclusive(path):
        async with anyio.create_task_group() as tg:
            writer = anyio.Event()

            async def emit() -> None:
                writer.set()
                await anyio.to_thread.run_sync(lambda: runlog.emit("run_started", "run_a"))

            tg.start_soon(emit)
            await writer.wait()
            replacement = path.with_name("swap")
            replacement.write_text(path.read_text())
            replacement.replace(path)
    events = [json.loads(line)["event"] for line in path.read_text().splitlines()]
    assert events == ["run_accepted", "run_started"]


def test_policy_from_environment() -> None:
    policy = RetentionPolicy.from_env(
        {
            "MCP_ORCHESTRATOR_RETAIN_DAYS": "7",
            "MCP_ORCHESTRATOR_RETAIN_LOG_DAYS": "2",
            "MCP_ORCHESTRATOR_RUNS_CAP_MB": "1",
        }
    )
    assert (policy.runs_days, policy.replays_days, policy.log_days) == (7.0, 7.0, 2.0)
    assert policy.runs_bytes == 1 << 20
    assert policy.log_bytes == RetentionPolicy().log_bytes


async def test_cli_prune_dry_run(server_env: dict[str, str]) -> None:
    result = await cli({**server_env, "MCP_ORCHESTRATOR_RETAIN_DAYS": "0"}, "prune", "--dry-run")
    assert result.code == 0, result.stderr
    report = result.json()
    assert report["dryRun"] is True
    assert report["policy"]["runsDays"] == 0.0
    assert report["runs"]["removed"] == []
