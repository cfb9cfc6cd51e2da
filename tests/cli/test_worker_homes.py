"""Issue #13: worker homes. The server decides a worker's CLI home, and a worker never starts the MCP servers of
the configuration it inherits (an assistant's config registers this orchestrator). The real binaries accept the
isolation flags: each runs one step against the loopback model with them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support.cli_harness import TOOLS_BIN
from support.loopback import loopback_env
from support.model_server import ModelServer, Turn

from mcp_orchestrator.runtimes.cli.homes import isolation_flags, worker_home
from mcp_orchestrator.runtimes.cli.templates import build_invocation


def test_an_explicit_home_wins_and_is_what_the_step_records(tmp_path: Path) -> None:
    env = {"CODEX_HOME": "/assistant/codex", "HOME": "/home/u"}
    environ = {"MCP_ORCHESTRATOR_CODEX_HOME": str(tmp_path)}
    assert worker_home("codex_cli", environ, env) == str(tmp_path) and env["CODEX_HOME"] == str(tmp_path)
    env = {"HOME": "/home/u"}
    assert worker_home("claude_cli", {}, env) == "/home/u/.claude" and "CLAUDE_CONFIG_DIR" not in env
    env = {"HOME": "/home/u"}
    assert worker_home("gemini_cli", {"MCP_ORCHESTRATOR_GEMINI_HOME": "/g"}, env) == "/g"
    assert env["GEMINI_CLI_HOME"] == "/g"


def test_every_configured_codex_server_is_turned_off(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        '[mcp_servers.orch]\ncommand = "x"\nrequired = true\n[mcp_servers."my tools"]\nurl = "http://127.0.0.1:9"\n'
    )
    flags = isolation_flags("codex_cli", {}, str(tmp_path))
    assert flags == ["-c", 'mcp_servers."my tools".enabled=false', "-c", "mcp_servers.orch.enabled=false"]
    assert isolation_flags("codex_cli", {"MCP_ORCHESTRATOR_WORKER_MCP": "1"}, str(tmp_path)) == []
    assert isolation_flags("codex_cli", {}, str(tmp_path / "none")) == []
    assert isolation_flags("claude_cli", {}, "") == ["--strict-mcp-config"]
    assert isolation_flags("gemini_cli", {}, "") == ["--allowed-mcp-server-names", "none"]
    resumed = build_invocation("codex_cli", "codex", "go", role="writer", session_id="T", extra_flags=flags)
    assert resumed.argv.index("-c") < resumed.argv.index("resume")  # codex options come before `resume <id>`


@pytest.mark.clis
@pytest.mark.parametrize("model", ["claude_cli", "gemini_cli"])
def test_the_real_cli_runs_with_its_isolation_flags(model: str, tmp_path: Path) -> None:
    import subprocess

    binary = TOOLS_BIN / ("claude" if model == "claude_cli" else "gemini")
    if not binary.exists():
        pytest.skip("the pinned CLIs are not installed: run scripts/install-clis")
    with ModelServer() as server:
        server.script(Turn.answer("isolated answer"))
        env = {**os.environ, **loopback_env(server.url, tmp_path / "homes"), "HOME": str(tmp_path)}
        inv = build_invocation(
            model,
            str(binary),
            "say hi",
            role="writer",
            model_name="gemini-2.5-flash" if model == "gemini_cli" else None,
            extra_flags=isolation_flags(model, {}, ""),
        )
        proc = subprocess.run(
            inv.argv, env=env, cwd=tmp_path, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=90
        )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "isolated answer" in proc.stdout
