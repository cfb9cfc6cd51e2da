"""diag and optimize: fixture logs -> expected actions, the CI gate (--strict --fail-on), tool == CLI payload."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from obs_support import FIXTURES, call, cli

from mcp_orchestrator.config import Settings
from mcp_orchestrator.contracts import PanicState, RuntimeInfo, WorkerRecord
from mcp_orchestrator.observability.diagnose import Inputs, at_least, diagnose, load_inputs
from mcp_orchestrator.observability.logcheck import validate_log
from mcp_orchestrator.observability.runlog import log_path
from mcp_orchestrator.server import build_server

CASES = sorted(p.name for p in (FIXTURES / "diag").iterdir() if p.is_dir())


def _inputs(case: str, settings: Settings) -> Inputs:
    folder = FIXTURES / "diag" / case
    inputs = load_inputs(folder / "events.jsonl", settings)
    env_file = folder / "env.json"
    if env_file.exists():
        env: dict[str, Any] = json.loads(env_file.read_text())
        inputs.runtimes = [RuntimeInfo.model_validate(r) for r in env.get("runtimes", [])]
        inputs.workers = [WorkerRecord.model_validate(w) for w in env.get("workers", [])]
        inputs.panic = PanicState.model_validate(env.get("panic", {"engaged": False}))
        inputs.queued = [(str(q[0]), str(q[1]), float(q[2])) for q in env.get("queued", [])]
    return inputs


def _install(case: str, home: Path) -> None:
    """Put a fixture's log where the data directory keeps its log."""
    path = log_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(FIXTURES / "diag" / case / "events.jsonl", path)


def test_every_rule_has_a_fixture() -> None:
    seen = set()
    for case in CASES:
        expected = json.loads((FIXTURES / "diag" / case / "expected.json").read_text())
        seen |= {a["id"].split(".")[0] for kind in ("diag", "optimize") for a in expected[kind]}
    assert seen == {
        "failure-rate", "timeouts", "stalls", "cli-missing", "cli-outdated", "starvation", "panic",
        "fallbacks", "slow-runtime", "queue-growth", "retries",
    }  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_fixture_logs_give_the_expected_actions(case: str, settings: Settings) -> None:
    folder = FIXTURES / "diag" / case
    assert validate_log(folder / "events.jsonl")[0].ok  # the fixtures are themselves valid logs
    expected = json.loads((folder / "expected.json").read_text())
    inputs = _inputs(case, settings)
    for kind in ("diag", "optimize"):
        result = diagnose(kind, inputs, 50)
        assert result.open_breakers == []  # no breakers exist yet
        got = [a.model_dump(mode="json", exclude={"rationale"}) for a in result.actions]
        assert got == expected[kind], f"{case}/{kind}"
        for action in result.actions:
            assert action.rationale.endswith(".")
            assert action.command.strip()


def test_the_window_bounds_what_is_looked_at(settings: Settings) -> None:
    inputs = _inputs("failing-runtimes", settings)
    assert diagnose("diag", inputs, 5).runs == 5  # the last five runs: google_sdk only, 2 of 5 failed
    assert [a.id for a in diagnose("diag", inputs, 5).actions] == ["failure-rate.google_sdk"]


def test_severity_order() -> None:
    assert at_least("critical", "error")
    assert at_least("error", "error")
    assert not at_least("warn", "error")
    assert at_least("info", "info")


@pytest.mark.anyio
async def test_ci_gate_strict_fail_on(server_env: dict[str, str], data_home: Path) -> None:
    """A CI job runs `diag --strict --fail-on SEVERITY` on the data directory: its exit code gates the build."""
    _install("timeouts-stalls", data_home)  # three error actions, no critical one
    gate = await cli(server_env, "diag", "--json", "--strict", "--fail-on", "error")
    assert gate.code == 1, gate.stderr
    assert "timeouts.mock" in gate.stderr
    ids = {a["id"]: a["severity"] for a in gate.json()["actions"]}
    assert ids["failure-rate.mock"] == ids["timeouts.mock"] == ids["stalls.mock"] == "error"
    assert (await cli(server_env, "diag", "--json", "--strict", "--fail-on", "critical")).code == 0
    assert (await cli(server_env, "diag", "--strict")).code == 1  # --strict alone fails on error
    assert (await cli(server_env, "diag")).code == 0  # without --strict it only reports
    listed = await cli(server_env, "diag", "--json", "--actions")
    assert [a["id"] for a in listed.json()][:3] == ["failure-rate.mock", "stalls.mock", "timeouts.mock"]
    text = await cli(server_env, "optimize", "--actions", "--strict", "--fail-on", "warn")
    assert text.code == 0, text.stdout  # nothing to tune here


@pytest.mark.anyio
async def test_tool_and_cli_give_the_same_payload(
    settings: Settings, server_env: dict[str, str], data_home: Path
) -> None:
    _install("failing-runtimes", data_home)
    async with Client(build_server(settings)) as client:
        tool = await call(client, "diag", window=50)
        tuned = await call(client, "optimize", window=50)
        refused = await client.call_tool("diag", {"window": 0})
        assert refused.is_error
    from_cli = (await cli(server_env, "diag", "--json")).json()
    for payload in (tool, from_cli):
        payload.pop("generatedAt")
    assert tool == from_cli
    assert tool["runs"] == 25
    assert [a["id"] for a in tool["actions"]][:3] == [
        "failure-rate.openai_sdk",
        "failure-rate.cli",
        "failure-rate.google_sdk",
    ]
    assert tuned["kind"] == "optimize"
