"""Issue #13 with real parts: a real codex worker (a node launcher and its native binary) runs in the executor
against the loopback model server, started by the real Claude Code and codex as assistants whose sessions end
right after the dispatch. A later session sees the answer; nothing of the worker's tree is left behind.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from daemon_support import call, eventually, processes_in, session
from support.assistants import codex_function_call, codex_tool_search
from support.cli_harness import KILL_GRACE, TOOLS_BIN, require_cli
from support.loopback import claude_env, codex_env
from support.model_server import ModelServer, Turn
from test_executor import WAYS, dispatch_then_end, follow

pytestmark = [pytest.mark.anyio, pytest.mark.clis]


@pytest.fixture(scope="module")
def model() -> Iterator[ModelServer]:
    """One loopback model server for the module: the assistants' and the workers' model."""
    with ModelServer() as server:
        yield server


@pytest.fixture
def env(server_env: dict[str, str], model: ModelServer, tmp_path: Path, root: Path) -> dict[str, str]:
    """A server environment whose codex workers talk to the loopback model."""
    require_cli("codex_cli")
    (tmp_path / "user").mkdir()
    return {
        **server_env,
        **codex_env(model.url, tmp_path / "worker-codex"),
        "HOME": str(tmp_path / "user"),
        "PATH": os.pathsep.join([str(TOOLS_BIN), server_env.get("PATH", os.defpath)]),
        "MCP_ORCHESTRATOR_RETRY_ATTEMPTS": "1",
    }


def codex_worker(name: str, root: Path) -> dict[str, Any]:
    return {"name": name, "model": "codex_cli", "workdir": str(root / "work")}


@pytest.mark.parametrize("way", WAYS)
async def test_a_codex_run_outlives_its_session(
    env: dict[str, str], model: ModelServer, root: Path, tmp_path: Path, way: str
) -> None:
    tag = secrets.token_hex(4)
    model.script(Turn.answer(f"answer {tag}", delay=8), match=f"bg-{tag}")
    worker = codex_worker(f"cx-{tag}", root)
    run_id = await dispatch_then_end(env, way, tmp_path / "server.log", worker, f"bg-{tag}: say something")
    run = await follow(env, run_id, 60)
    assert run["status"] == "completed", run
    assert f"answer {tag}" in run["steps"][0]["output"]
    await eventually(lambda: not processes_in(root / "work"), 5, "the worker's tree is gone")


async def test_cancel_from_a_later_session_kills_the_tree(env: dict[str, str], model: ModelServer, root: Path) -> None:
    tag = secrets.token_hex(4)
    model.script(Turn.never(), match=f"hang-{tag}")
    async with session(env) as client:
        await call(client, "spawn_worker", {"agentId": "alice", **codex_worker(f"cx-{tag}", root)})
        run = await call(client, "dispatch_task", {"agentId": "alice", "task": f"hang-{tag}", "waitSeconds": 0})
    await anyio.to_thread.run_sync(lambda: model.wait_for_request(f"hang-{tag}", hanging=True, timeout=30))
    assert processes_in(root / "work"), "codex should be running in the workdir"
    async with session(env) as client:
        canceled = await call(client, "cancel_run", {"agentId": "alice", "runId": run["runId"]})
    assert canceled["status"] == "canceled", canceled
    await eventually(lambda: not processes_in(root / "work"), KILL_GRACE + 1, "the worker's tree is gone")


async def _assistant(cmd: list[str], env: dict[str, str], cwd: Path) -> str:
    with anyio.fail_after(120):
        proc = await anyio.run_process(cmd, env=env, cwd=str(cwd), check=False, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"{cmd[0]} exited {proc.returncode}\n{proc.stdout.decode()}\n{proc.stderr.decode()}"
    return proc.stdout.decode()


def _serve_entry(env: dict[str, str]) -> dict[str, Any]:
    server_vars = {k: v for k, v in env.items() if k.startswith(("MCP_", "CODEX_")) or k in ("PATH", "HOME")}
    return {"command": sys.executable, "args": ["-m", "mcp_orchestrator", "serve"], "env": server_vars}


async def test_claude_code_and_codex_start_runs_that_outlive_them(
    env: dict[str, str], model: ModelServer, root: Path, tmp_path: Path
) -> None:
    """Acceptance 1: each assistant dispatches a 20 s codex run with waitSeconds 0 and exits."""
    require_cli("claude_cli")
    tags = {"claude": secrets.token_hex(4), "codex": secrets.token_hex(4)}

    def dispatch(who: str) -> list[dict[str, Any]]:
        name, tag = f"cx-{who}", tags[who]
        return [
            {"agentId": who, "name": name, "model": "codex_cli", "workdir": str(root / "work")},
            {"agentId": who, "task": f"task-{tag}: write a poem", "workers": [name], "waitSeconds": 0},
        ]

    spawn, run = dispatch("claude")
    model.script(
        Turn.raw_tool("mcp__orch__spawn_worker", spawn),
        Turn.raw_tool("mcp__orch__dispatch_task", run),
        Turn.answer("dispatched"),
        api="anthropic",
        match="claude-bg",
    )
    spawn, run = dispatch("codex")
    model.script(
        codex_tool_search("orchestrator dispatch_task", "ts1"),
        codex_function_call("orch", "spawn_worker", spawn, "fc1"),
        codex_function_call("orch", "dispatch_task", run, "fc2"),
        Turn.answer("dispatched"),
        api="openai",
        match="codex-bg",
    )
    # The workers' turns go last: an assistant's later requests carry the task too, and take their own turns first.
    for who, tag in tags.items():
        model.script(Turn.answer(f"{who} background answer {tag}", delay=20), api="openai", match=f"task-{tag}")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MCP_", "CODEX_"))}
    base["HOME"] = env["HOME"]
    mcp_config = json.dumps({"mcpServers": {"orch": _serve_entry(env)}})
    claude_cmd = [
        str(TOOLS_BIN / "claude"), "-p", "claude-bg: start the work", "--mcp-config", mcp_config,
        "--strict-mcp-config", "--allowedTools", "mcp__orch", "--output-format", "json",
    ]  # fmt: skip
    assistant_codex = codex_env(model.url, tmp_path / "assistant-codex")
    entry = _serve_entry(env)
    with (tmp_path / "assistant-codex" / "config.toml").open("a") as f:
        f.write(
            f"\n[mcp_servers.orch]\ncommand = {json.dumps(entry['command'])}\nargs = {json.dumps(entry['args'])}\n"
            f"env = {{ {', '.join(f'{k} = {json.dumps(v)}' for k, v in entry['env'].items())} }}\n"
            'required = true\ndefault_tools_approval_mode = "approve"\n'
        )
    codex_cmd = [str(TOOLS_BIN / "codex"), "exec", "--json", "--skip-git-repo-check", "codex-bg: start the work"]
    outputs: dict[str, str] = {}

    async def go(who: str, cmd: list[str], extra: dict[str, str]) -> None:
        outputs[who] = await _assistant(cmd, base | extra, root)

    with anyio.fail_after(60):  # both assistants are done long before their runs (20 s) end
        async with anyio.create_task_group() as tg:
            tg.start_soon(go, "claude", claude_cmd, claude_env(model.url, tmp_path / "claude"))
            tg.start_soon(go, "codex", codex_cmd, assistant_codex)
    assert json.loads(outputs["claude"])["result"] == "dispatched", outputs["claude"]
    assert "dispatched" in outputs["codex"], outputs["codex"]

    async with session(env) as client:
        runs = {}
        for who in tags:
            page = await call(client, "list_worker_runs", {"workerName": f"cx-{who}"})
            assert len(page["runs"]) == 1, page
            runs[who] = await call(client, "get_run", {"runId": page["runs"][0]["runId"], "waitSeconds": 60})
    for who, tag in tags.items():
        assert runs[who]["status"] == "completed", runs[who]
        assert f"{who} background answer {tag}" in runs[who]["steps"][0]["output"]
    await eventually(lambda: not processes_in(root / "work"), 5, "no orphan of the workers' trees")


async def test_a_codex_worker_never_starts_the_assistants_mcp_servers(
    env: dict[str, str], model: ModelServer, root: Path, tmp_path: Path
) -> None:
    """Acceptance 4: the codex home the server inherited (an assistant's) registers this orchestrator with
    ``required = true`` and an env var the worker lacks; the worker still completes, starts no orchestrator, and
    its step records the home it ran with."""
    tag = secrets.token_hex(4)
    marker = str(40000 + secrets.randbelow(20000))  # a --port no other process uses: counts the orchestrators
    home = Path(env["CODEX_HOME"])
    with (home / "config.toml").open("a") as f:
        f.write(
            f"\n[mcp_servers.orch]\ncommand = {json.dumps(sys.executable)}\n"
            f'args = ["-m", "mcp_orchestrator", "serve", "--port", "{marker}"]\n'
            'env_vars = ["A_VARIABLE_THE_WORKER_LACKS"]\nrequired = true\n'
        )
    model.script(Turn.answer(f"isolated {tag}", delay=2), match=f"iso-{tag}")
    seen: list[int] = []

    def orchestrators() -> list[int]:
        return [pid for pid, cmd in processes_in(Path("/")) if "mcp_orchestrator serve --port " + marker in cmd]

    async with session(env) as client:
        await call(client, "spawn_worker", {"agentId": "alice", **codex_worker(f"cx-{tag}", root)})
        run = await call(client, "dispatch_task", {"agentId": "alice", "task": f"iso-{tag}", "waitSeconds": 0})
        with anyio.move_on_after(60):
            while (await call(client, "get_run", {"runId": run["runId"]}))["status"] not in ("completed", "failed"):
                seen += orchestrators()
                await anyio.sleep(0.1)
        done = await call(client, "get_run", {"runId": run["runId"]})
    assert done["status"] == "completed", done
    (step,) = done["steps"]
    assert f"isolated {tag}" in step["output"]
    assert step["home"] == str(home)
    assert "mcp_servers.orch.enabled=false" in step["flags"]
    assert seen == [] and orchestrators() == []


async def test_a_complete_short_answer_is_not_reported_truncated(
    env: dict[str, str], model: ModelServer, root: Path
) -> None:
    """Issue 13's small defect: a whole 23-character answer came back with ``outputTruncated: true`` because the
    CLI's JSONL (359 bytes) is longer than the answer."""
    tag = secrets.token_hex(4)
    answer = f"short answer {tag}!!"  # 23 characters
    model.script(Turn.answer(answer), match=f"short-{tag}")
    async with session(env) as client:
        await call(client, "spawn_worker", {"agentId": "alice", **codex_worker(f"cx-{tag}", root)})
        run = await call(client, "dispatch_task", {"agentId": "alice", "task": f"short-{tag}", "waitSeconds": 60})
    (step,) = run["steps"]
    assert run["status"] == "completed" and step["output"] == answer, run
    assert step["outputBytes"] > len(answer)  # the whole JSONL is kept in the step's output resource
    assert step["outputTruncated"] is False


async def test_a_missing_api_key_is_classed_auth(env: dict[str, str], root: Path) -> None:
    """Issue 13's small defect: codex without the variable its provider's ``env_key`` names failed as
    ``process_error``; a missing key is an ``auth`` failure (and so may fall back to another runtime)."""
    from support.loopback import CODEX_KEY_VAR

    no_key = {k: v for k, v in env.items() if k != CODEX_KEY_VAR}
    async with session(no_key) as client:
        await call(
            client, "spawn_worker", {"agentId": "alice", **codex_worker("cx-nokey", root), "fallbackPolicy": "never"}
        )
        run = await call(client, "dispatch_task", {"agentId": "alice", "task": "anything", "waitSeconds": 60})
    (step,) = run["steps"]
    assert run["status"] == "failed" and step["failureClass"] == "auth", run
    assert CODEX_KEY_VAR in step["output"]
