"""logs validate: every failure class on its fixture, line-local diagnostics, exit codes, and the real writer."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from obs_support import FIXTURES, cli, dispatch_and_wait, running
from support.servers import REPO

from mcp_orchestrator.config import Settings
from mcp_orchestrator.observability.logcheck import validate_lines, validate_log
from mcp_orchestrator.observability.runlog import log_path

LOGS = FIXTURES / "logs"
EXPECTED: dict[str, list[str]] = json.loads((LOGS / "expected.json").read_text())
CLASSES = {"invalid_json", "schema_violation", "missing_field", "null_field", "unknown_event", "out_of_order"}


def test_every_failure_class_has_its_fixture() -> None:
    assert {Path(name).stem for name in EXPECTED} == CLASSES | {"valid"}
    assert {p.name for p in LOGS.glob("*.jsonl")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_diagnostics_are_exact(name: str) -> None:
    summary, diagnostics = validate_log(LOGS / name)
    assert [f"{d.line}: {d.failure_class}: {d.field}" for d in diagnostics] == EXPECTED[name]
    assert summary.ok is (not EXPECTED[name])
    if name != "valid.jsonl":  # each fixture shows its own class and nothing else
        assert set(summary.failures) == {Path(name).stem}


def test_valid_fixture_matches_the_published_schema() -> None:
    schema = json.loads((REPO / "contracts" / "log" / "run-event.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    for line in (LOGS / "valid.jsonl").read_text().splitlines():
        validator.validate(json.loads(line))


def test_time_may_stand_still_but_not_go_back() -> None:
    def line(ts: str) -> bytes:
        return json.dumps(
            {"schemaVersion": 1, "event": "run_accepted", "runId": "r", "ts": ts, "process": "p", "agentId": "a",
             "strategy": "s", "priority": "batch"}
        ).encode()  # fmt: skip

    started = json.dumps({"schemaVersion": 1, "event": "run_started", "runId": "r", "process": "p"})
    same = started[:-1] + ', "ts": "2026-01-01T00:00:00Z"}'
    diagnostics, *_ = validate_lines([(1, line("2026-01-01T00:00:00Z")), (2, same.encode())])
    assert diagnostics == []
    naive = started[:-1] + ', "ts": "2025-12-31T23:59:59"}'  # a naive time counts as UTC
    diagnostics, *_ = validate_lines([(1, line("2026-01-01T00:00:00Z")), (2, naive.encode())])
    assert [(d.failure_class, d.field) for d in diagnostics] == [("out_of_order", "ts")]


@pytest.mark.anyio
async def test_cli_prints_the_summary_to_stdout_and_diagnostics_to_stderr(server_env: dict[str, str]) -> None:
    path = LOGS / "out_of_order.jsonl"
    strict = await cli(server_env, "logs", "validate", "--strict", str(path))
    assert strict.code == 1
    summary = strict.json()
    assert summary["failures"] == {"out_of_order": len(EXPECTED["out_of_order.jsonl"])}
    assert summary["ok"] is False
    lines = strict.stderr.splitlines()
    assert len(lines) == len(EXPECTED["out_of_order.jsonl"])
    assert lines[0].startswith(f"{path}:1: out_of_order: event: run_started before run_accepted")
    lenient = await cli(server_env, "logs", "validate", str(path))
    assert lenient.code == 0
    assert lenient.json() == summary
    assert (await cli(server_env, "logs", "validate", "--strict", str(LOGS / "valid.jsonl"))).code == 0
    missing = await cli(server_env, "logs", "validate", str(path.with_name("nope.jsonl")))
    assert missing.code == 2
    empty = await cli(server_env, "logs", "validate", "--strict")  # the data directory's log, not written yet
    assert empty.code == 0
    assert empty.json()["lines"] == 0


@pytest.mark.anyio
async def test_what_the_service_writes_validates_strictly(settings: Settings) -> None:
    """Completed, retried, failed, canceled-while-queued and parallel runs: the writer keeps the contract."""
    async with running(settings) as orch:
        await orch.spawn_worker("a", "w1", "codex_cli", runtime_mode="mock")
        await orch.spawn_worker("a", "w2", "gemini_cli", runtime_mode="mock", role="reviewer")
        await dispatch_and_wait(orch, "w1", "plain")
        await dispatch_and_wait(orch, "w1", "[[mock fail=rate_limited fail_times=1]]")
        await dispatch_and_wait(orch, "w1", "[[mock fail=auth]]")
        await dispatch_and_wait(orch, "w1", "[[mock fail=unavailable]]", timeout_seconds=5)
        slow = await orch.dispatch("a", "[[mock delay=30]]", workers=["w1"])
        queued = await orch.dispatch("a", "never runs", workers=["w1"])  # waits for w1's slot
        await orch.cancel_run("a", slow.run_id)
        await orch.cancel_run("a", queued.run_id)
        run = await orch.dispatch("a", "both", strategy="codex_writes_gemini_reviews", workers=["w1", "w2"])
        await orch.wait_run(run.run_id, 30)
    summary, diagnostics = validate_log(log_path(settings.home))
    assert diagnostics == []
    assert summary.ok
    assert summary.runs == 7
    assert {"run_accepted", "run_started", "step_started", "attempt", "step_ended", "run_ended"} <= set(summary.events)
