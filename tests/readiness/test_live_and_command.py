"""``--live`` against the loopback model server, and ``mcp-orchestrator probe`` as a real subprocess."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import anyio
import pytest
from readiness_support import SECRETS
from support.model_server import ModelServer, Turn
from support.servers import REPO

from mcp_orchestrator.readiness.models import ReadinessReport
from mcp_orchestrator.readiness.sdks import probe_sdk

pytestmark = pytest.mark.anyio

COMMAND_TIMEOUT = 90.0


def _sdk_env(server: ModelServer, tmp_path: Path) -> dict[str, str]:
    return {
        "HOME": str(tmp_path),
        "OPENAI_API_KEY": "loopback-openai-key",
        "OPENAI_BASE_URL": server.openai_base_url,
        "GEMINI_API_KEY": "loopback-gemini-key",
        "GOOGLE_GEMINI_BASE_URL": server.url,
    }


async def test_live_makes_one_real_call_per_sdk(model_server: ModelServer, tmp_path: Path) -> None:
    env = _sdk_env(model_server, tmp_path)
    for mode, api in (("openai_sdk", "openai"), ("google_sdk", "gemini")):
        before = len(model_server.matching(api=api))
        result = await probe_sdk(mode, env, live=True)
        assert result.status == "ok", result.summary
        assert "live call answered" in result.summary
        assert result.evidence.facts["live"] is True
        assert result.evidence.facts["answerChars"] > 0
        assert result.evidence.latency_ms is not None
        assert len(model_server.matching(api=api)) == before + 1  # exactly one request reached the server
    without_live = len(model_server.requests)
    assert (await probe_sdk("openai_sdk", env)).status == "ok"
    assert len(model_server.requests) == without_live  # no call unless asked


async def test_live_reports_a_refused_key_as_auth_with_a_fix(model_server: ModelServer, tmp_path: Path) -> None:
    model_server.script(Turn.error(401, "invalid api key"), api="openai")
    result = await probe_sdk("openai_sdk", _sdk_env(model_server, tmp_path), live=True)
    assert result.status == "fail"
    assert result.evidence.facts["failureClass"] == "auth"
    assert "OPENAI_API_KEY" in result.remediation
    model_server.script(Turn.error(429, "slow down"), api="gemini")
    limited = await probe_sdk("google_sdk", _sdk_env(model_server, tmp_path), live=True)
    assert limited.status == "warn"  # the key works; the quota does not
    assert limited.evidence.facts["failureClass"] == "rate_limited"


async def _probe_cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    with anyio.fail_after(COMMAND_TIMEOUT):
        done = await anyio.run_process(
            [sys.executable, "-m", "mcp_orchestrator", "probe", *args], env=env, cwd=str(REPO), check=False
        )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


@pytest.mark.clis
async def test_probe_live_json_passes_on_a_ready_machine(ready_env: dict[str, str], tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    env = {**ready_env, "MCP_ORCHESTRATOR_HOME": str(data)}
    evidence = tmp_path / "evidence"
    code, out, err = await _probe_cli(env, "--json", "--live", "--write-evidence", str(evidence))
    assert code == 0, out + err
    report = ReadinessReport.model_validate_json(out)  # stdout is the data, nothing else
    assert report.live is True
    assert report.status == "ok", [(p.probe, p.summary) for p in report.probes if p.status != "ok"]
    assert "probing (live)" in err
    assert ReadinessReport.model_validate_json((evidence / "probes.json").read_text()) == report
    assert not [s for s in SECRETS if s in out]


async def test_probe_exits_1_and_prints_each_fix_when_something_fails(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {"PATH": str(empty), "HOME": str(tmp_path), "MCP_ORCHESTRATOR_HOME": str(tmp_path / "data")}
    code, out, err = await _probe_cli(env)
    assert code == 1
    assert "fail  cli:codex" in out
    assert "fix: npm install -g @openai/codex@0.169.0" in out
    assert out.rstrip().splitlines()[-1].startswith("readiness: fail")
    assert "failed: cli:codex, cli:gemini, cli:claude" in err
    assert not json.dumps(out).count("Traceback")
