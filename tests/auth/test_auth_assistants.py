"""Issue #12, acceptance 7: real clients connect to the authenticated Streamable HTTP server with a bearer token
and call a tool - the MCP Inspector CLI, Claude Code (an ``http`` server entry with an ``Authorization`` header)
and codex (``bearer_token_env_var``), the assistants scripted by the loopback model server.

codex 0.169 defers MCP tools behind its ``tool_search`` tool: the scripted model searches first, then calls the
tool in the ``mcp__orch`` namespace, as a real model would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from auth_support import issue_tokens, serving
from support.assistants import codex_function_call, codex_tool_search
from support.cli_harness import TOOLS_BIN
from support.loopback import claude_env, codex_env
from support.model_server import ModelServer, Turn
from support.servers import REPO

pytestmark = pytest.mark.anyio

INSPECTOR_BIN = REPO / ".tools" / "inspector" / "node_modules" / ".bin"


async def _workers(env: dict[str, str]) -> list[dict[str, Any]]:
    proc = await anyio.run_process(
        [sys.executable, "-m", "mcp_orchestrator", "workers", "--json"], env=env, cwd=str(REPO), check=True
    )
    listed: list[dict[str, Any]] = json.loads(proc.stdout)
    return listed


async def _run(cmd: list[str], env: dict[str, str], cwd: Path) -> str:
    with anyio.fail_after(120):
        proc = await anyio.run_process(cmd, env=env, cwd=str(cwd), check=False, stdin=subprocess.DEVNULL)
    out = proc.stdout.decode()
    assert proc.returncode == 0, f"{cmd[0]} exited {proc.returncode}\n{out}\n{proc.stderr.decode()}"
    return out


async def test_the_inspector_connects_with_a_bearer_token(
    server_env: dict[str, str], data_home: Path, tmp_path: Path
) -> None:
    node, inspector = INSPECTOR_BIN / "node", INSPECTOR_BIN / "mcp-inspector"
    if not (node.exists() and inspector.exists()):
        pytest.skip("the MCP Inspector is not installed: run scripts/install-inspector (CI does)")
    tokens = issue_tokens(data_home)
    env = {**server_env, "HOME": str(tmp_path)}
    async with serving(server_env, tmp_path / "server.log") as server:
        base = [str(node), str(inspector), "--cli", server.url, "--format", "json", "--method", "tools/call"]
        args = ["--tool-name", "spawn_worker", "--tool-arg", "agentId=alice", "name=insp", "model=mock"]
        header = ["--header", f"Authorization: Bearer {tokens['alice']}"]
        out = json.loads(await _run([*base, *args, *header], env, tmp_path))
        assert out["result"]["structuredContent"]["ownerAgentId"] == "alice"
        with anyio.fail_after(120):
            refused = await anyio.run_process([*base, *args], env=env, cwd=str(tmp_path), check=False)
        assert refused.returncode != 0  # no token: the Inspector cannot connect (401)
    assert [w["name"] for w in await _workers(server_env)] == ["insp"]


@pytest.mark.clis
async def test_claude_code_and_codex_call_a_tool_with_a_bearer_token(
    server_env: dict[str, str], data_home: Path, root: Path, tmp_path: Path
) -> None:
    claude, codex = TOOLS_BIN / "claude", TOOLS_BIN / "codex"
    if not (claude.exists() and codex.exists()):
        pytest.skip("the pinned CLIs are not installed: run scripts/install-clis")
    tokens = issue_tokens(data_home)
    base = {k: v for k, v in os.environ.items() if not k.startswith("MCP_")} | {"HOME": str(tmp_path)}
    async with serving(server_env, tmp_path / "server.log") as server:
        with ModelServer() as model:
            # Claude Code: an http server entry with the header; the model asks for the MCP tool directly.
            model.script(
                Turn.raw_tool("mcp__orch__spawn_worker", {"agentId": "alice", "name": "from-claude", "model": "mock"}),
                Turn.answer("spawned"),
                match="claude-spawn",
            )
            entry = {"type": "http", "url": server.url, "headers": {"Authorization": f"Bearer {tokens['alice']}"}}
            cmd = [
                str(claude), "-p", "claude-spawn: spawn a worker", "--mcp-config",
                json.dumps({"mcpServers": {"orch": entry}}), "--strict-mcp-config", "--allowedTools", "mcp__orch",
                "--output-format", "json",
            ]  # fmt: skip
            out = json.loads(await _run(cmd, base | claude_env(model.url, tmp_path / "claude"), root))
            assert out["result"] == "spawned" and out["permission_denials"] == [], out

            # codex: the token comes from the variable bearer_token_env_var names.
            spawn = {"agentId": "bob", "name": "from-codex", "model": "mock"}
            model.script(
                codex_tool_search("spawn_worker orchestrator", "ts1"),
                codex_function_call("orch", "spawn_worker", spawn, "fc1"),
                Turn.answer("spawned"),
                match="codex-spawn",
            )
            codex_vars = codex_env(model.url, tmp_path / "codex")
            with (tmp_path / "codex" / "config.toml").open("a") as f:
                f.write(
                    f'\n[mcp_servers.orch]\nurl = "{server.url}"\nbearer_token_env_var = "ORCH_TOKEN"\n'
                    'required = true\ndefault_tools_approval_mode = "approve"\n'
                )
            cmd = [str(codex), "exec", "--json", "--skip-git-repo-check", "codex-spawn: spawn a worker"]
            await _run(cmd, base | codex_vars | {"ORCH_TOKEN": tokens["bob"]}, root)
            outputs = [
                item for r in model.requests if isinstance(r.body, dict)
                for item in r.body.get("input", []) if isinstance(item, dict)
                and item.get("type") == "function_call_output" and item.get("call_id") == "fc1"
            ]  # fmt: skip
            assert outputs and '"ownerAgentId":"bob"' in outputs[0]["output"], outputs
    owners = {w["name"]: w["ownerAgentId"] for w in await _workers(server_env)}
    assert owners == {"from-claude": "alice", "from-codex": "bob"}
