"""Probe fixtures: the committed ones are valid and complete; the audit flags planted stale, future and broken ones."""

from __future__ import annotations

import json
import shutil
import sys
from datetime import timedelta
from pathlib import Path

import anyio
import pytest
from support.servers import REPO

from mcp_orchestrator.contracts import utcnow
from mcp_orchestrator.readiness.fixtures import audit, load_config, main, record
from mcp_orchestrator.readiness.models import ProbeFixture, ProbeResult
from mcp_orchestrator.readiness.sdks import SDKS
from mcp_orchestrator.runtimes.cli import ADAPTERS

FIXTURES = REPO / "fixtures" / "probes"


def _probe_names() -> set[str]:
    return {
        *(f"cli:{a.name}" for a in ADAPTERS.values()),
        *(s.probe for s in SDKS.values()),
        "store",
        "server",
        *(f"worker:{m}" for m in ("codex_cli", "gemini_cli", "claude_cli", "mock")),
    }


def test_the_committed_fixtures_are_valid_and_cover_every_probe() -> None:
    report = audit(FIXTURES, max_age_days=10**6)  # validity here; age is the CI audit's business
    assert report["findings"] == []
    recorded = {e["probe"] for e in report["fixtures"] if not e["timeless"]}
    assert recorded == _probe_names()
    faults = [e for e in report["fixtures"] if e["timeless"]]
    assert faults and all(e["status"] != "ok" for e in faults)
    for path in FIXTURES.glob("fault-*.json"):
        fixture = ProbeFixture.model_validate_json(path.read_text())
        assert fixture.result.remediation, path.name  # a fault always says how to fix it
    assert load_config(REPO / "probes" / "config.json")["fixtureMaxAgeDays"] > 0


def _plant(directory: Path, name: str, *, days_old: float, timeless: bool = False) -> Path:
    source = ProbeFixture.model_validate_json((FIXTURES / "store.json").read_text())
    fixture = source.model_copy(update={"recorded_at": utcnow() - timedelta(days=days_old), "timeless": timeless})
    path = directory / name
    path.write_text(fixture.model_dump_json(indent=2))
    return path


def test_the_audit_flags_planted_violations(tmp_path: Path) -> None:
    _plant(tmp_path, "fresh.json", days_old=1)
    _plant(tmp_path, "stale.json", days_old=90)
    _plant(tmp_path, "old-but-timeless.json", days_old=900, timeless=True)
    _plant(tmp_path, "future.json", days_old=-3)
    (tmp_path / "broken.json").write_text('{"recordedAt": "yesterday"}')
    report = audit(tmp_path, max_age_days=30)
    kinds = {f["file"]: f["kind"] for f in report["findings"]}
    assert kinds == {"stale.json": "stale", "future.json": "future", "broken.json": "invalid"}
    assert report["status"] == "warn"
    assert audit(tmp_path / "nowhere", 30)["findings"][0]["kind"] == "empty"


def test_audit_warns_by_default_and_fails_with_strict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fixtures = tmp_path / "fixtures"
    fixtures.mkdir()
    _plant(fixtures, "stale.json", days_old=45)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"fixtureMaxAgeDays": 30}))
    assert main(["audit", "--dir", str(fixtures), "--config", str(config)]) == 0
    assert "fixture audit warning: stale.json: 45 days old (max 30)" in capsys.readouterr().err
    assert main(["audit", "--dir", str(fixtures), "--config", str(config), "--strict"]) == 1
    assert "fixture audit error" in capsys.readouterr().err
    assert main(["audit", "--dir", str(fixtures), "--max-age-days", "60", "--strict", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "ok"


def test_record_writes_one_fixture_per_probe_without_machine_paths(tmp_path: Path) -> None:
    scratch = Path(__import__("tempfile").mkdtemp())
    try:
        result = ProbeResult(probe="cli:codex", status="ok", summary=f"at {scratch}/bin/codex and {Path.home()}/x")
        [path] = record([result], tmp_path / "out", note="n")
    finally:
        shutil.rmtree(scratch)
    fixture = ProbeFixture.model_validate_json(path.read_text())
    assert path.name == "cli-codex.json"
    assert fixture.result.summary == "at <tmp>/bin/codex and ~/x"
    assert fixture.note == "n"


@pytest.mark.anyio
async def test_the_audit_command_runs_as_ci_runs_it() -> None:
    with anyio.fail_after(60):
        done = await anyio.run_process(
            [sys.executable, "-m", "mcp_orchestrator.readiness.fixtures", "audit", "--json"], cwd=str(REPO), check=False
        )
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout)["directory"] == "fixtures/probes"
