"""Issue 14 acceptance 1: single_worker and one handoff with the real CLIs against the loopback model, on both engines.

On the local engine the in-process server runs each step itself; on the Temporal engine every step runs in an
``mcp-orchestrator worker`` process (and the handoff's git operations in its workspace activity). Either way
the CLI is the real binary, configured for the loopback model server only through the environment of the
process that runs it: the test process for the local engine, the worker process for Temporal (the server's own
environment then has no CLI settings at all).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from support.cli_harness import CLI_MODELS, MODEL_NAMES, cli_binary, require_cli, token
from support.loopback import loopback_env
from support.model_server import ModelServer, Turn
from support.records import full
from support.temporal_workers import temporal_settings, worker_process

from mcp_orchestrator.config import Settings
from mcp_orchestrator.runtimes.cli import ADAPTERS
from mcp_orchestrator.server import build_server
from mcp_orchestrator.store.json_store import JsonRunStore
from mcp_orchestrator.strategies.prompts import heading

pytestmark = [pytest.mark.anyio, pytest.mark.clis, pytest.mark.slow]

AGENT = "acceptance"
READ_ONLY_FLAG = {"codex_cli": "read-only", "gemini_cli": "default", "claude_cli": "plan"}
HOME_VAR = {"codex_cli": "CODEX_HOME", "gemini_cli": "GEMINI_CLI_HOME", "claude_cli": "CLAUDE_CONFIG_DIR"}
API = {"codex_cli": "openai", "gemini_cli": "gemini", "claude_cli": "anthropic"}


@pytest.fixture(scope="module")
def model_server() -> Iterator[ModelServer]:
    """One loopback model server for this module."""
    with ModelServer() as server:
        yield server


def cli_env(model_server: ModelServer, base: Path) -> dict[str, str]:
    """What a process running CLI steps needs: the loopback homes and keys, a user home, each binary's path."""
    env = loopback_env(model_server.url, base / "cli-homes")
    (base / "user-home").mkdir(parents=True, exist_ok=True)
    env["HOME"] = str(base / "user-home")
    for model in CLI_MODELS:
        binary = cli_binary(model)
        if binary is not None:
            env[ADAPTERS[model].bin_env] = binary
    return env


class Engine:
    """A server's settings on one engine, and the environment its CLI steps run with."""

    def __init__(self, name: str, settings: Settings, env: dict[str, str], worker_home: Path | None = None) -> None:
        self.name = name
        self.settings = settings
        self.env = env
        self.worker_home = worker_home  # the worker process's data dir (Temporal): where step output is spooled


@pytest.fixture(params=["local", "temporal"])
def engine(
    request: pytest.FixtureRequest,
    model_server: ModelServer,
    data_home: Path,
    root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Engine]:
    """The in-process scheduler (the test process runs the CLIs), or Temporal with one worker process (it does)."""
    env = cli_env(model_server, tmp_path)
    if request.param == "local":
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        yield Engine("local", Settings(home=data_home, roots=(root,), retry_attempts=1), env)
        return
    server = request.getfixturevalue("temporal_server")
    prefix = request.getfixturevalue("temporal_prefix").rstrip("-")
    backends = [f"{m}/cli" for m in CLI_MODELS]
    home = tmp_path / "worker-home"
    with worker_process(server, prefix, home, (root,), backends, extra_env=env):
        yield Engine("temporal", temporal_settings(server, prefix, data_home, (root,), retry_attempts=1), env, home)


async def call(c: Client, tool: str, **args: Any) -> dict[str, Any]:
    """Call ``tool``; it must succeed. Its structured (camelCase) result."""
    result = await c.call_tool(tool, full(tool, args))
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


async def spawn(c: Client, name: str, model: str, workdir: Path, **extra: Any) -> str:
    """A CLI worker of ``model`` in ``workdir``."""
    args: dict[str, Any] = {"agentId": AGENT, "name": name, "model": model, "workdir": str(workdir)}
    if MODEL_NAMES.get(model):
        args["modelName"] = MODEL_NAMES[model]
    await call(c, "spawn_worker", runtimeMode="cli", **args, **extra)
    return name


def assert_ran_here(engine: Engine, run: dict[str, Any], step: dict[str, Any], model: str) -> None:
    """The step ran the real CLI, with the loopback home, where the engine says it runs."""
    assert step["runtimeMode"] == "cli"
    assert step["exitCode"] == 0
    assert step["home"] == engine.env[HOME_VAR[model]]
    if engine.name == "temporal":
        prefix = engine.settings.temporal.task_queue_prefix
        assert run["executedBy"] == f"temporal {engine.settings.temporal.namespace}/{prefix}.runs"
        assert engine.worker_home is not None  # the worker process ran the step: its output is spooled there
        spool = JsonRunStore(engine.worker_home).step_output_path(run["runId"], step["index"])
        assert spool.stat().st_size > 0
        assert not JsonRunStore(engine.settings.home).step_output_path(run["runId"], step["index"]).exists()


@pytest.mark.parametrize("model", CLI_MODELS, ids=lambda m: m.removesuffix("_cli"))
async def test_single_worker_answers_from_the_real_cli(
    engine: Engine, model_server: ModelServer, root: Path, model: str
) -> None:
    require_cli(model)
    tok = token()
    model_server.script(Turn.answer(f"the answer {tok}", input_tokens=21, output_tokens=4), match=tok)
    async with Client(build_server(engine.settings)) as c:
        await spawn(c, f"w-{tok}", model, root / "work")
        run = await call(
            c, "dispatch_task", agentId=AGENT, task=f"answer me {tok}", workers=[f"w-{tok}"], waitSeconds=60
        )
    assert run["status"] == "completed", run
    (step,) = run["steps"]
    assert step["output"] == f"the answer {tok}"
    assert step["usage"] == {"inputTokens": 21, "outputTokens": 4, "totalTokens": 25}
    assert step["sessionId"]
    assert_ran_here(engine, run, step, model)
    (request,) = model_server.matching(tok)
    assert request.api == API[model]
    assert f"answer me {tok}" in request.text


async def test_codex_writes_gemini_reviews_with_the_real_clis(
    engine: Engine, model_server: ModelServer, root: Path
) -> None:
    require_cli("codex_cli")
    require_cli("gemini_cli")
    from strategies.strategies_support import git, make_repo

    repo = make_repo(root / "work", {"README.md": "demo\n"})
    tok = token()
    async with Client(build_server(engine.settings)) as c:
        cx = await spawn(c, f"cx-{tok}", "codex_cli", repo)
        gm = await spawn(c, f"gm-{tok}", "gemini_cli", repo, role="reviewer")
        model_server.script(
            Turn.write(str(repo / "hello.py"), "print('hello')\n"),
            Turn.answer("I wrote hello.py."),
            match=heading(cx, "writer"),
        )
        verdict = '```json\n{"decision": "approve", "findings": [], "rationale": "fine"}\n```'
        model_server.script(Turn.answer(f"Looks right.\n\n{verdict}\n"), match=heading(gm, "reviewer"))
        run = await call(
            c,
            "dispatch_task",
            agentId=AGENT,
            task="add hello.py",
            strategy="codex_writes_gemini_reviews",
            workers=[cx, gm],
            waitSeconds=90,
        )
    assert run["status"] == "completed", run["summary"]
    assert (repo / "hello.py").read_text() == "print('hello')\n"  # codex's own tool call wrote it
    assert git(repo, "status", "--porcelain") == "?? hello.py"
    writer, reviewer = run["steps"]
    assert (writer["workerName"], writer["role"], writer["output"]) == (cx, "writer", "I wrote hello.py.")
    assert writer["commands"], "codex ran the write as a command"
    assert_ran_here(engine, run, writer, "codex_cli")
    assert (reviewer["workerName"], reviewer["role"]) == (gm, "reviewer")
    assert READ_ONLY_FLAG["gemini_cli"] in reviewer["flags"]
    assert reviewer["verdict"] == {"decision": "approve", "findings": [], "rationale": "fine"}
    assert_ran_here(engine, run, reviewer, "gemini_cli")
    assert len(model_server.matching(heading(cx, "writer"), api="openai")) == 2  # the tool call, then the answer
    (request,) = model_server.matching(heading(gm, "reviewer"), api="gemini")
    assert "I wrote hello.py." in request.text  # the writer's report
    assert "print('hello')" in request.text  # and the pending change, read by git in the workdir
