"""A second, independent client: the MCP Inspector CLI (npm ``@modelcontextprotocol/inspector``, pinned by
``scripts/install-inspector``) drives ``mcp-orchestrator serve`` over stdio and Streamable HTTP.

Each Inspector call starts its own server; the data directory carries state from one call to the next.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from e2e_support import TOOLS
from support.servers import REPO, http_server

pytestmark = pytest.mark.anyio

BIN = REPO / ".tools" / "inspector" / "node_modules" / ".bin"
NODE = BIN / "node"  # the pinned Node 22 the Inspector needs (engines: node >= 22.19)
INSPECTOR = BIN / "mcp-inspector"
EXIT_TOOL_ERROR = 5  # the Inspector's exit code when the tool returned isError

if not (NODE.exists() and INSPECTOR.exists()):
    pytest.skip(
        f"the MCP Inspector is not installed in {BIN}: run scripts/install-inspector (CI does)",
        allow_module_level=True,
    )


class Inspector:
    """Runs ``mcp-inspector --cli`` against a stdio server or a URL, with HOME in a scratch directory."""

    def __init__(self, tmp_path: Path, server_env: dict[str, str]) -> None:
        home = tmp_path / "inspector-home"
        home.mkdir()
        # The Inspector writes its catalog and state under $HOME/.mcp-inspector.
        self.env = {**server_env, "HOME": str(home)}
        self.server_env = server_env

    def stdio_target(self) -> list[str]:
        """Inspector arguments that start ``python -m mcp_orchestrator serve`` with the test's directories."""
        pass_env = ("MCP_ORCHESTRATOR_HOME", "MCP_ORCHESTRATOR_ROOTS", "PYTHONUNBUFFERED")
        env_args = [a for k in pass_env for a in ("-e", f"{k}={self.server_env[k]}")]
        return [*env_args, "--cwd", str(REPO), sys.executable, "-m", "mcp_orchestrator", "serve"]

    async def __call__(self, target: list[str], *args: str, expect_exit: int = 0) -> dict[str, Any]:
        cmd = [str(NODE), str(INSPECTOR), "--cli", *target, "--format", "json", *args]
        with anyio.fail_after(60):
            proc = await anyio.run_process(cmd, env=self.env, cwd=str(REPO), check=False)
        out, err = proc.stdout.decode(), proc.stderr.decode()
        assert proc.returncode == expect_exit, f"exit {proc.returncode}\nstdout: {out}\nstderr: {err}"
        payload: dict[str, Any] = json.loads(out)
        return payload


@pytest.fixture
def inspector(tmp_path: Path, server_env: dict[str, str]) -> Inspector:
    return Inspector(tmp_path, server_env)


async def test_inspector_over_stdio(inspector: Inspector, root: Path) -> None:
    target = inspector.stdio_target()

    listed = await inspector(target, "--method", "tools/list")
    assert {t["name"] for t in listed["result"]["tools"]} >= TOOLS  # exactness: test_e2e_contract

    spawned = await inspector(
        target,
        "--method",
        "tools/call",
        "--tool-name",
        "spawn_worker",
        "--tool-arg",
        "agentId=inspector",
        "name=insp-w",
        "model=mock",
    )
    worker = spawned["result"]["structuredContent"]
    assert spawned["result"]["isError"] is False
    assert worker["name"] == "insp-w"
    assert worker["runtimeMode"] == "mock"
    assert worker["workdir"] == str(root)

    args = {"agentId": "inspector", "task": "hello from the inspector", "waitSeconds": 30, "detail": "full"}
    dispatched = await inspector(
        target, "--method", "tools/call", "--tool-name", "dispatch_task", "--tool-args-json", json.dumps(args)
    )
    run = dispatched["result"]["structuredContent"]
    assert run["status"] == "completed", run
    assert run["steps"][0]["runtimeMode"] == "mock"
    assert "hello from the inspector" in run["steps"][0]["output"]

    # State survives the server process: a later process reads the run, as a tool and as a resource.
    got = await inspector(
        target,
        "--method",
        "tools/call",
        "--tool-name",
        "get_run",
        "--tool-arg",
        f"runId={run['runId']}",
        "--tool-arg",
        "detail=full",
    )
    assert got["result"]["structuredContent"] == run
    resource = await inspector(target, "--method", "resources/read", "--uri", f"runs://{run['runId']}")
    assert json.loads(resource["result"]["contents"][0]["text"]) == run

    # A refused call is a tool error (isError), which the Inspector reports with its own exit code.
    await inspector(
        target,
        "--method",
        "tools/call",
        "--tool-name",
        "spawn_worker",
        "--tool-arg",
        "agentId=inspector",
        "name=insp-w",
        "model=mock",
        expect_exit=EXIT_TOOL_ERROR,
    )


async def test_inspector_over_streamable_http(inspector: Inspector, server_env: dict[str, str]) -> None:
    async with http_server(server_env, "streamable-http") as url:
        listed = await inspector([url], "--method", "tools/list")
        assert {t["name"] for t in listed["result"]["tools"]} >= TOOLS  # exactness: test_e2e_contract
        templates = await inspector([url], "--method", "resources/templates/list")
        uris = {t["uriTemplate"] for t in templates["result"]["resourceTemplates"]}
        assert uris == {
            "runs://{run_id}",
            "runs://{run_id}/steps/{index}/output",
            "runs://{run_id}/summary",
            "replays://{run_id}",
        }
