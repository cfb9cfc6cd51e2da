"""Release evidence: gates run with timeouts, reuse a test run's JUnit XML, and give a register and a go/no-go."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from support.procs import pids_with_arg
from support.servers import REPO

from mcp_orchestrator.readiness._evaluate import bench_verdict, junit_totals
from mcp_orchestrator.readiness.fixtures import load_config
from mcp_orchestrator.readiness.models import ReleaseSummary, RiskRegister
from mcp_orchestrator.readiness.release import load_gates, main

PY = sys.executable
JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="0" failures="{failures}" skipped="2" tests="40" time="12.5">
<testcase classname="t" name="a" time="0.1"/></testsuite></testsuites>
"""


def _bundle(tmp_path: Path, gates: list[dict[str, Any]], *extra: str) -> tuple[int, Path]:
    config = tmp_path / "probes" / "config.json"
    config.parent.mkdir(exist_ok=True)
    config.write_text(json.dumps({"gates": gates}))
    (config.parent / "risks.json").write_text(
        json.dumps([{"id": "standing", "title": "t", "likelihood": "low", "impact": "high", "mitigation": "m"}])
    )
    out = tmp_path / "bundle"
    return main(["--config", str(config), "--out", str(out), *extra]), out


def _summary(out: Path) -> ReleaseSummary:
    return ReleaseSummary.model_validate_json((out / "summary.json").read_text())


def test_an_advisory_miss_is_no_go_but_not_a_failed_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junit = tmp_path / "junit.xml"
    junit.write_text(JUNIT.format(failures=0))
    bench = 'import json; print("warming up"); print(json.dumps({"ratio": 1.4, "goal_ratio_max": 1.2}))'
    report = 'import json; print(json.dumps({"status": "warn", "findings": [{"file": "x"}]}))'
    gates = [
        {"name": "lint", "required": True, "argv": [PY, "-c", "pass"]},
        {"name": "tests", "required": True, "kind": "pytest", "argv": ["unused"]},
        {"name": "audit", "kind": "report", "argv": ["{python}", "-c", report]},
        {"name": "bench-x", "kind": "bench", "argv": ["{python}", "-c", bench]},
    ]
    code, out = _bundle(tmp_path, gates, "--tests-from", str(junit), "--tests-status", "0")
    assert code == 0
    summary = _summary(out)
    assert summary.decision == "no-go"
    assert summary.blocking == ["audit", "bench-x"]
    assert summary.required_failed == []
    by_name = {g.name: g for g in summary.gates}
    assert by_name["tests"].status == "pass"
    assert by_name["tests"].metrics["tests"] == 40
    assert by_name["tests"].command is None
    assert by_name["tests"].detail.startswith(f"reused {junit}: 40 tests: 0 failed, 2 skipped")
    assert by_name["bench-x"].detail == "ratio 1.4 <= 1.2 MISSED"
    assert json.loads((out / "bench" / "bench-x.json").read_text())["ratio"] == 1.4
    assert (out / "junit.xml").read_text() == junit.read_text()
    register = RiskRegister.model_validate_json((out / "risk-register.json").read_text())
    ids = [r.id for r in register.risks]
    assert set(ids) == {"standing", "gate:audit", "gate:bench-x"}
    assert register.risks[0].score >= register.risks[-1].score
    assert "| score | id |" in (out / "risk-register.md").read_text()
    assert "# Release evidence: NO-GO" in capsys.readouterr().out


def test_a_failed_required_gate_fails_the_run(tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    junit.write_text(JUNIT.format(failures=3))
    gates = [
        {"name": "lint", "required": True, "argv": [PY, "-c", "print('E501 too long'); raise SystemExit(1)"]},
        {"name": "tests", "required": True, "kind": "pytest", "argv": ["unused"]},
    ]
    code, out = _bundle(tmp_path, gates, "--tests-from", str(junit), "--tests-status", "1")
    assert code == 1
    summary = _summary(out)
    assert summary.required_failed == ["lint", "tests"]
    lint = summary.gates[0]
    assert lint.detail == "exit 1: E501 too long"
    assert (out / lint.log).read_text() == "E501 too long\n"  # type: ignore[operator]


@pytest.mark.anyio
async def test_a_gate_that_runs_over_is_killed_with_its_children(tmp_path: Path) -> None:
    tag = f"gate-child-{tmp_path.name}"
    child = f"[sys.executable, '-c', 'import time; time.sleep(60)', {tag!r}]"
    parent = f"import subprocess, sys; subprocess.Popen({child}); subprocess.run(['sleep', '60'])"
    gates = [{"name": "slow", "timeout": 1, "argv": [PY, "-c", parent]}]
    code, out = _bundle(tmp_path, gates)
    assert code == 0  # not required
    [slow] = _summary(out).gates
    assert slow.status == "fail"
    assert slow.detail == "timed out after 1 s"
    assert slow.duration_ms < 10_000
    # SIGKILL went to the whole group: the grandchild ends too (a pidfd turns readable when its process ends).
    for pid in pids_with_arg(tag):
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            continue
        try:
            with anyio.fail_after(5):
                await anyio.wait_readable(fd)
        finally:
            os.close(fd)


def test_pytest_runs_with_extra_args_and_its_junit_is_read(tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_x.py").write_text("def test_one():\n    pass\n\ndef test_two():\n    pass\n")
    argv = ["{python}", "-m", "pytest", "-q", "-p", "no:cacheprovider", "--junitxml", "{out}/junit.xml", str(suite)]
    gates = [{"name": "tests", "required": True, "kind": "pytest", "timeout": 120, "argv": argv}]
    code, out = _bundle(tmp_path, gates, "--", "-k", "one")
    assert code == 0
    [tests] = _summary(out).gates
    assert tests.status == "pass", tests.detail
    assert tests.metrics["tests"] == 1  # -k one reached pytest
    assert tests.command is not None and tests.command.endswith("-k one")


def test_skipping_a_gate_blocks_go(tmp_path: Path) -> None:
    gates = [{"name": "a", "argv": [PY, "-c", "pass"]}, {"name": "b", "argv": [PY, "-c", "pass"]}]
    _, out = _bundle(tmp_path, gates, "--skip", "b")
    assert _summary(out).blocking == ["b"]
    _, out = _bundle(tmp_path, gates)
    assert _summary(out).decision == "go"


def test_readers_of_gate_outputs(tmp_path: Path) -> None:
    assert bench_verdict({"tokens": 2400, "goal_tokens_max": 3000})[0] == "pass"
    assert bench_verdict({"per_second": 250, "goal_per_second_min": 300})[0] == "fail"
    assert bench_verdict({"goal_ratio_max": 2.0, "goal_applies_to": ["x"]})[0] == "warn"  # metric not top-level
    assert bench_verdict({"median": 3})[1] == "no goal to check"
    (tmp_path / "j.xml").write_text(JUNIT.format(failures=1))
    assert junit_totals(tmp_path / "j.xml") == {"tests": 40, "failures": 1, "errors": 0, "skipped": 2, "time": 12.5}
    assert junit_totals(tmp_path / "missing.xml") is None


def test_the_repository_gates_name_real_commands() -> None:
    gates = {g.name: g for g in load_gates(load_config(REPO / "probes" / "config.json"))}
    assert {"ruff", "mypy", "tests", "mandate"} <= {n for n, g in gates.items() if g.required}
    assert {"probes", "fixture-audit"} <= set(gates)
    for gate in gates.values():
        assert gate.timeout > 0
        scripts = [a for a in gate.argv if a.startswith("bench/")]
        assert all((REPO / s).is_file() for s in scripts), gate.name
        if gate.kind == "bench":
            assert scripts, gate.name
