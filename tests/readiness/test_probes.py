"""The probes against real binaries and real files: ok when everything is in place, a fail with a fix otherwise."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from readiness_support import SECRETS

from mcp_orchestrator.config import Settings
from mcp_orchestrator.contracts import PanicState, utcnow
from mcp_orchestrator.readiness import run_probes
from mcp_orchestrator.readiness.clis import probe_cli
from mcp_orchestrator.readiness.models import ProbeResult
from mcp_orchestrator.readiness.sdks import probe_sdk
from mcp_orchestrator.readiness.server import probe_server
from mcp_orchestrator.readiness.storage import probe_store
from mcp_orchestrator.readiness.workers import probe_worker
from mcp_orchestrator.runtimes.cli import ADAPTERS

pytestmark = pytest.mark.anyio


@pytest.mark.clis
async def test_every_probe_is_ok_with_the_pinned_clis_and_the_loopback_server(
    ready_env: dict[str, str], probe_settings: Settings
) -> None:
    report = await run_probes(probe_settings, environ=ready_env)
    bad = [(p.probe, p.summary) for p in report.probes if p.status != "ok"]
    assert not bad, bad
    assert report.status == "ok"
    assert report.counts == {"ok": len(report.probes), "warn": 0, "fail": 0}
    probes = {p.probe: p for p in report.probes}
    assert set(probes) == {
        *(f"cli:{a.name}" for a in ADAPTERS.values()),
        "sdk:openai",
        "sdk:google",
        "store",
        "server",
        *(f"worker:{m}" for m in ("codex_cli", "gemini_cli", "claude_cli", "mock")),
    }
    for adapter in ADAPTERS.values():
        ev = probes[f"cli:{adapter.name}"].evidence
        assert ev.version == adapter.pinned_version
        assert ev.exit_code == 0
        assert ev.command == f"{ev.path} --version"
        assert ev.latency_ms is not None
        assert ev.facts["credentialSource"]  # found, and named
    assert probes["cli:codex"].evidence.facts["credentialSource"] == "env CODEX_LOOPBACK_KEY"
    assert probes["sdk:openai"].evidence.facts["credentialVariable"] == "OPENAI_API_KEY"
    assert probes["server"].evidence.facts["mode"] == "spawned"
    assert "readiness" in probes["server"].evidence.facts["toolNames"]
    assert probes["store"].evidence.facts["writeAndLock"] is True
    assert list(probe_settings.home.iterdir()) == []  # the store probe left nothing behind
    dumped = report.model_dump_json()
    assert not [s for s in SECRETS if s in dumped]  # presence only, never a value


async def test_a_missing_binary_fails_with_the_install_command(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {"PATH": str(empty), "HOME": str(tmp_path)}
    for model, adapter in ADAPTERS.items():
        result = await probe_cli(model, env)
        assert result.status == "fail"
        assert "not on PATH" in result.summary
        assert f"npm install -g {adapter.npm_package}@{adapter.pinned_version}" in result.remediation
    worker = probe_worker("claude_cli", {"cli:claude": result})
    assert worker.status == "fail"
    assert "cli:" in worker.remediation


@pytest.mark.clis
async def test_an_absent_credential_fails_and_names_what_to_set(ready_env: dict[str, str]) -> None:
    env = {k: v for k, v in ready_env.items() if k not in ("GEMINI_API_KEY", "ANTHROPIC_API_KEY")}
    gemini = await probe_cli("gemini_cli", env)
    assert gemini.status == "fail"
    assert "no credentials" in gemini.summary
    assert gemini.remediation.startswith("export GEMINI_API_KEY=")
    claude = await probe_cli("claude_cli", env)
    assert claude.status == "fail"
    assert "ANTHROPIC_API_KEY" in claude.remediation
    # An SDK is a fallback: without its key it warns, unless it is the configured default runtime.
    assert (await probe_sdk("google_sdk", env)).status == "warn"
    required = await probe_sdk("google_sdk", {**env, "MCP_WORKER_RUNTIME_DEFAULT": "google_sdk"})
    assert required.status == "fail"
    assert required.remediation == "export GEMINI_API_KEY=<your key>"


@pytest.mark.clis
async def test_a_key_the_worker_allowlist_drops_is_reported(ready_env: dict[str, str]) -> None:
    config = Path(ready_env["CODEX_HOME"]) / "config.toml"
    config.write_text(config.read_text().replace("CODEX_LOOPBACK_KEY", "MY_PROVIDER_KEY"))
    env = {**ready_env, "MY_PROVIDER_KEY": "secret-value"}
    dropped = await probe_cli("codex_cli", env)
    assert dropped.status == "fail"
    assert "not passed to workers" in dropped.summary
    assert "MCP_ORCHESTRATOR_WORKER_ENV=MY_PROVIDER_KEY" in dropped.remediation
    allowed = await probe_cli("codex_cli", env, ("MY_PROVIDER_KEY",))
    assert allowed.status == "ok", allowed.summary
    assert "secret-value" not in allowed.model_dump_json()


@pytest.mark.clis
async def test_broken_configurations_fail(ready_env: dict[str, str]) -> None:
    (Path(ready_env["CODEX_HOME"]) / "config.toml").write_text("model = [unclosed\n")
    codex = await probe_cli("codex_cli", ready_env)
    assert codex.status == "fail"
    assert "does not parse" in codex.summary
    settings = Path(ready_env["GEMINI_CLI_HOME"]) / ".gemini" / "settings.json"
    settings.write_text('{"general": {"maxAttempts": 1}}')  # no selectedType, but a base URL is set
    gemini = await probe_cli("gemini_cli", ready_env)
    assert gemini.status == "fail"
    assert "exits 41" in gemini.summary
    assert "gemini-api-key" in gemini.remediation


def _fake_cli(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text(f"#!{sys.executable}\nimport sys\n{body}\n")
    path.chmod(0o755)


async def test_a_binary_that_fails_or_is_not_the_pinned_version(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake_cli(bin_dir, "claude", "print('boom', file=sys.stderr); sys.exit(3)")
    _fake_cli(bin_dir, "codex", "print('codex-cli 9.9.9')")
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path), "OPENAI_API_KEY": "k"}
    claude = await probe_cli("claude_cli", env)
    assert claude.status == "fail"
    assert claude.evidence.exit_code == 3
    assert "reinstall" in claude.remediation
    codex = await probe_cli("codex_cli", env)
    assert codex.status == "warn"
    assert codex.evidence.version == "9.9.9"
    assert "not the tested 0.169.0" in codex.summary
    assert "@openai/codex@0.169.0" in codex.remediation
    assert probe_worker("codex_cli", {"cli:codex": codex}).status == "ok"  # a warning still runs


def test_the_store_probe_sees_what_would_stop_a_server(tmp_path: Path) -> None:
    home = tmp_path / "data"
    assert probe_store(home).status == "warn"  # not there yet: the server creates it
    assert not home.exists()  # ... and the probe did not
    home.mkdir()
    ok = probe_store(home, fsync=False)
    assert ok.status == "ok", ok.summary
    assert ok.evidence.facts["freeBytes"] > 0
    (home / "panic.json").write_text(PanicState(engaged=True, reason="drill", engaged_at=utcnow()).model_dump_json())
    (home / "quarantine").mkdir()
    (home / "quarantine" / "x.json").write_text("{")
    warned = probe_store(home, fsync=False)
    assert warned.status == "warn"
    assert "mcp-orchestrator panic off" in warned.remediation
    assert "mcp-orchestrator store check" in warned.remediation
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    assert probe_store(not_a_dir).status == "fail"


async def test_a_server_that_cannot_start_fails_with_its_stderr(tmp_path: Path) -> None:
    env = {"PATH": str(tmp_path), "HOME": str(tmp_path), "MCP_WORKER_RUNTIME_DEFAULT": "bogus"}
    result = await probe_server(env, time_limit=30)
    assert result.status == "fail"
    assert "MCP_WORKER_RUNTIME_DEFAULT" in result.evidence.facts["stderr"]
    assert "serve" in result.remediation


def test_worker_readiness_follows_the_runtime_a_new_worker_gets(tmp_path: Path) -> None:
    ok_sdk = ProbeResult(probe="sdk:openai", status="ok", summary="")
    no_cli = ProbeResult(probe="cli:codex", status="fail", summary="")
    only_sdk = probe_worker("codex_cli", {"sdk:openai": ok_sdk, "cli:codex": no_cli})
    assert only_sdk.status == "warn"
    assert "runtimeMode=openai_sdk" in only_sdk.remediation
    default_sdk = probe_worker("codex_cli", {"sdk:openai": ok_sdk, "cli:codex": no_cli}, "openai_sdk")
    assert default_sdk.status == "ok"
    caps = default_sdk.evidence.facts["capabilities"]
    assert caps["readOnlyMode"] == "-s read-only"
    assert caps["schemaStrict"] is True
    assert probe_worker("mock", {}).status == "ok"
