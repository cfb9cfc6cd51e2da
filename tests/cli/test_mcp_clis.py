"""Issue #3 acceptance through the real MCP server: ``mcp-orchestrator serve`` over stdio, driven by the SDK
``Client``, with the real codex, gemini and claude binaries answering to the loopback model server.

The server finds the CLIs on its ``PATH`` (the ``.tools`` bin directory); everything a CLI needs to reach the
loopback server is in the server's environment and passes the worker allowlist. A step's process tree is
found in ``/proc``: the CLI is a child of the server whose argv carries the run's unique marker, and every
process of the step carries the step tag (``MCP_ORCHESTRATOR_STEP_TAG``) the runtime puts in its environment.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.types import TextContent, TextResourceContents
from support.cli_harness import CLI_MODELS, MODEL_NAMES, cli_binary, require_cli, token
from support.executors import executor_process
from support.model_server import ModelServer, Turn
from support.procs import alive, cmdline, descendants, pids_with_arg
from support.records import full
from test_real_clis import RESUME_FLAG, sleepers

from mcp_orchestrator.runtimes.cli import ADAPTERS
from mcp_orchestrator.runtimes.cli.process import STEP_TAG_VAR

pytestmark = pytest.mark.anyio

# Not imported from tests/conftest.py: with several non-package conftest.py files, `import conftest`
# yields whichever one pytest loaded last.
REPO = Path(__file__).resolve().parents[2]
AGENT = "acceptance"
CALL_TIMEOUT = 60.0
# The server's CliRuntime sends SIGKILL this long after SIGTERM (its default kill_grace).
SERVER_KILL_GRACE = 3.0
CLI_IDS = [m.removesuffix("_cli") for m in CLI_MODELS]


# ---- /proc helpers ----------------------------------------------------------------------------


def _environ(pid: int) -> list[bytes]:
    try:
        return (Path("/proc") / str(pid) / "environ").read_bytes().split(b"\0")
    except OSError:
        return []


def _ppid(pid: int) -> int | None:
    try:
        raw = (Path("/proc") / str(pid) / "stat").read_bytes()
    except OSError:
        return None
    return int(raw[raw.rfind(b")") + 2 :].split()[1])


def _live_pids() -> list[int]:
    return [int(e) for e in os.listdir("/proc") if e.isdigit()]


def step_tag(pid: int) -> str | None:
    """The step tag in the environment of ``pid``, if any."""
    prefix = f"{STEP_TAG_VAR}=".encode()
    for entry in _environ(pid):
        if entry.startswith(prefix):
            return entry[len(prefix) :].decode()
    return None


def tagged(tag: str) -> set[int]:
    """Live processes whose environment carries the step tag ``tag`` (re-parented ones included)."""
    return alive({pid for pid in _live_pids() if step_tag(pid) == tag})


def find_server_pid(home: Path) -> int:
    """The ``mcp_orchestrator serve`` child of this process that serves the data directory ``home``."""
    wanted = f"MCP_ORCHESTRATOR_HOME={home}".encode()
    found = [
        pid
        for pid in _live_pids()
        if _ppid(pid) == os.getpid() and {"mcp_orchestrator", "serve"} <= set(cmdline(pid)) and wanted in _environ(pid)
    ]
    assert len(found) == 1, f"expected one server on {home}, found {found}"
    return found[0]


def vm_kib(pid: int, field: str) -> int:
    """``VmRSS`` / ``VmHWM`` of ``pid`` in KiB."""
    for line in (Path("/proc") / str(pid) / "status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise LookupError(field)


# ---- the server -------------------------------------------------------------------------------


def _text(result: Any) -> str:
    return "\n".join(b.text for b in result.content if isinstance(b, TextContent))


@dataclass
class Server:
    """A connected client on a real stdio server, plus the pid of the process that runs its workers."""

    client: Client
    pid: int
    root: Path

    async def call(self, tool: str, **args: Any) -> dict[str, Any]:
        """Call ``tool``; it must succeed. Returns its structured (wire, camelCase) result."""
        result = await self.client.call_tool(tool, full(tool, args))
        assert not result.is_error, f"{tool}({args}) failed: {_text(result)}"
        assert result.structured_content is not None
        return result.structured_content

    async def spawn(self, model: str, name: str, **extra: Any) -> dict[str, Any]:
        """A worker of ``model`` in the root's workdir."""
        args: dict[str, Any] = {"agentId": AGENT, "name": name, "model": model, "workdir": str(self.root / "work")}
        if MODEL_NAMES.get(model):
            args["modelName"] = MODEL_NAMES[model]
        return await self.call("spawn_worker", **args, **extra)

    async def dispatch(
        self, task: str, worker: str, *, wait: float = CALL_TIMEOUT - 10, **extra: Any
    ) -> dict[str, Any]:
        """``dispatch_task`` to one worker, waiting up to ``wait`` seconds."""
        return await self.call("dispatch_task", agentId=AGENT, task=task, workers=[worker], waitSeconds=wait, **extra)

    async def finished(self, run_id: str, wait: float = 30) -> dict[str, Any]:
        """The run once it is terminal (fails if it is not within ``wait`` seconds)."""
        run = await self.call("get_run", runId=run_id, waitSeconds=wait)
        assert run["status"] in ("completed", "failed", "canceled"), run
        return run

    async def worker(self, name: str) -> dict[str, Any]:
        """One worker as ``list_workers`` shows it."""
        listed = await self.call("list_workers")
        (found,) = [w for w in listed["workers"] if w["name"] == name]
        return found

    async def read(self, uri: str) -> str:
        """The text of a resource."""
        result = await self.client.read_resource(uri)
        (content,) = result.contents
        assert isinstance(content, TextResourceContents), content
        return content.text

    def step_tree(self, marker: str) -> set[int]:
        """The live processes of the step whose CLI has ``marker`` in its argv: the CLI, its descendants
        and every process carrying its step tag."""
        leaders = [pid for pid in descendants(self.pid) if _ppid(pid) == self.pid and marker in " ".join(cmdline(pid))]
        assert len(leaders) == 1, f"expected one CLI process for {marker}, found {leaders}"
        (leader,) = leaders
        tag = step_tag(leader)
        assert tag, f"the CLI {cmdline(leader)[:3]} has no {STEP_TAG_VAR} in its environment"
        return {leader} | descendants(leader) | tagged(tag)


@asynccontextmanager
async def serve(env: dict[str, str], root: Path) -> AsyncIterator[Server]:
    """``python -m mcp_orchestrator serve`` over stdio with ``env``."""
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "mcp_orchestrator", "serve"], env=env, cwd=str(REPO)
    )
    async with Client(params, read_timeout_seconds=CALL_TIMEOUT) as client:
        home = Path(env["MCP_ORCHESTRATOR_HOME"])
        find_server_pid(home)
        yield Server(client, await running_pid(home), root)


async def running_pid(home: Path) -> int:
    """The process that runs the workers: the data directory's executor, which ``serve`` starts."""
    with anyio.fail_after(20):
        while (ref := executor_process(home)) is None:  # noqa: ASYNC110 - another process records itself
            await anyio.sleep(0.05)
    return ref.pid


@pytest.fixture
def mcp_env(server_env: dict[str, str], base_environ: dict[str, str]) -> dict[str, str]:
    """The server's environment: fresh data directory and root, the CLIs' loopback settings, the CLIs on PATH.

    The server finds the CLIs through PATH, as an installed server does (``MCP_ORCHESTRATOR_*_BIN`` only for a
    binary whose file name is not the CLI's own).
    """
    env = {k: v for k, v in base_environ.items() if not k.startswith("MCP_")}
    env.update({k: v for k, v in server_env.items() if k.startswith("MCP_")})
    dirs = []
    for m in CLI_MODELS:
        binary = cli_binary(m)
        if binary is not None and Path(binary).name == ADAPTERS[m].binary:
            dirs.append(str(Path(binary).parent))
        elif binary is not None:
            env[ADAPTERS[m].bin_env] = binary
    env["PATH"] = os.pathsep.join([*dict.fromkeys(dirs), env.get("PATH", os.defpath)])
    return env


@pytest.fixture(params=CLI_MODELS, ids=CLI_IDS)
def model(request: pytest.FixtureRequest) -> str:
    """Each real CLI in turn (skipped when its binary is missing)."""
    require_cli(request.param)
    return str(request.param)


async def wait_for_hang(server: ModelServer, tok: str) -> float:
    """Until the model server holds a never-answered request of the run marked ``tok``; returns when."""
    await anyio.to_thread.run_sync(lambda: server.wait_for_request(tok, hanging=True, timeout=45))
    return time.monotonic()


def sleeper_marker() -> str:
    """A unique ``sleep`` argument (a long, odd duration nobody else uses)."""
    return f"{600 + secrets.randbelow(10**6)}.5"


# ---- 1 and 4: answer, usage, session; continueSession --------------------------------------------


@pytest.mark.clis
async def test_dispatch_completes_then_continues_the_session(
    model: str, model_server: ModelServer, mcp_env: dict[str, str], root: Path
) -> None:
    first, second = token(), token()
    model_server.script(Turn.answer(f"remember ALPHA-{first}", input_tokens=123, output_tokens=45), match=first)
    model_server.script(Turn.answer(f"second answer {second}"), match=second)
    progress: list[str] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append(message or "")

    async with serve(mcp_env, root) as srv:
        worker = await srv.spawn(model, "w1")
        assert worker["runtimeMode"] == "cli"
        assert worker["sessionId"] is None

        result = await srv.client.call_tool(
            "dispatch_task",
            {"agentId": AGENT, "task": f"first turn {first}", "workers": ["w1"], "waitSeconds": 50, "detail": "full"},
            progress_callback=on_progress,
        )
        assert not result.is_error, _text(result)
        run = result.structured_content
        assert run is not None
        assert run["status"] == "completed", run
        (step,) = run["steps"]
        assert step["status"] == "completed"
        assert step["output"] == f"remember ALPHA-{first}"
        assert step["usage"] == {"inputTokens": 123, "outputTokens": 45, "totalTokens": 168}
        assert step["exitCode"] == 0
        session = step["sessionId"]
        assert session and len(session) >= 16
        assert step["flags"][0] in ("exec", "-o", "-p")
        name = model.removesuffix("_cli")
        assert any(m.startswith(f"{name}: started") for m in progress), progress

        listed = await srv.worker("w1")
        assert listed["sessionId"] == session
        assert listed["status"] == "idle"
        assert listed["runtimeStatus"] == "ready"

        run2 = await srv.dispatch(f"second turn {second}", "w1", continueSession=True)
        assert run2["status"] == "completed", run2
        (step2,) = run2["steps"]
        assert step2["output"] == f"second answer {second}"
        assert step2["sessionId"] == session
        assert RESUME_FLAG[model] in step2["flags"]
        assert (await srv.worker("w1"))["sessionId"] == session

    # The CLI sent the earlier turn (the prompt and the model's answer) with the new one.
    request = model_server.matching(second)[-1]
    assert f"first turn {first}" in request.text
    assert f"ALPHA-{first}" in request.text


# ---- 2: stop_worker and cancel_run kill the whole tree --------------------------------------------


@pytest.mark.clis
async def _both_sleepers(marker: str) -> set[int]:
    """The two sleepers' pids: the second may start a moment after the model hung up on the first tool call."""
    with anyio.move_on_after(5):
        while len(found := pids_with_arg(marker)) < 2:  # noqa: ASYNC110 - processes, no event to wait on
            await anyio.sleep(0.05)
        return set(found)
    return set(pids_with_arg(marker))


async def test_stop_worker_and_cancel_run_kill_the_tree(
    model: str, model_server: ModelServer, mcp_env: dict[str, str], root: Path
) -> None:
    toks = {"stop": token(), "cancel": token()}
    markers = {op: sleeper_marker() for op in toks}
    for op, tok in toks.items():
        # Two `sleep` grandchildren keep running while the CLI waits for a model that never answers.
        model_server.script(sleepers(model, markers[op]), Turn.never(), match=tok)

    async with serve(mcp_env, root) as srv:
        runs: dict[str, str] = {}
        for op, tok in toks.items():
            await srv.spawn(model, f"w-{op}")
            run = await srv.dispatch(f"start sleepers {tok}", f"w-{op}", wait=0)
            runs[op] = run["runId"]
        async with anyio.create_task_group() as tg:
            for tok in toks.values():
                tg.start_soon(wait_for_hang, model_server, tok)
        trees = {op: srv.step_tree(tok) for op, tok in toks.items()}
        for op, tree in trees.items():
            sleeping = await _both_sleepers(markers[op])
            assert len(sleeping) == 2, f"{op}: the sleepers should be running"
            assert sleeping <= tree, f"{op}: sleepers {sleeping} are not in the step's tree {tree}"
        assert not trees["stop"] & trees["cancel"]

        ended: dict[str, dict[str, Any]] = {}
        started = time.monotonic()

        async def stop() -> None:
            worker = await srv.call("stop_worker", agentId=AGENT, name="w-stop")
            assert worker["status"] == "stopped"
            ended["stop"] = await srv.finished(runs["stop"], wait=10)

        async def cancel() -> None:
            ended["cancel"] = await srv.call("cancel_run", agentId=AGENT, runId=runs["cancel"])

        async with anyio.create_task_group() as tg:
            tg.start_soon(stop)
            tg.start_soon(cancel)
        elapsed = time.monotonic() - started

        for op, run in ended.items():
            assert run["status"] == "canceled", (op, run)
            (step,) = run["steps"]
            assert step["status"] == "canceled", (op, step)
            assert step["failureClass"] == "canceled"
            assert not alive(trees[op]), f"{op}: left running: {alive(trees[op])}"
            assert not pids_with_arg(markers[op]), f"{op}: sleepers left running"
        assert "stopped" in ended["stop"]["steps"][0]["output"]
        assert elapsed < SERVER_KILL_GRACE + 1, f"stop and cancel took {elapsed:.2f} s"
        assert (await srv.worker("w-stop"))["status"] == "stopped"
        assert (await srv.worker("w-cancel"))["status"] == "idle"

    for tok in toks.values():
        request = model_server.wait_for_request(tok, hanging=True, timeout=1)
        assert request.finished.wait(5) and request.disconnected


# ---- 3: stall and total timeouts ----------------------------------------------------------------


@pytest.mark.clis
async def test_stall_and_timeouts_kill_the_tree(model_server: ModelServer, mcp_env: dict[str, str], root: Path) -> None:
    """One limit per CLI, all at once: codex stalls (worker stallSeconds), claude hits its worker
    timeoutSeconds, gemini the dispatch's timeoutSeconds (gemini starts slowest: the longest limit)."""
    cases = {
        "codex_cli": ("stalled", {"stallSeconds": 3}, {}),
        "claude_cli": ("timeout", {"timeoutSeconds": 10}, {}),  # room for claude's two turns under load
        "gemini_cli": ("timeout", {}, {"timeoutSeconds": 12}),
    }
    models = [m for m in cases if cli_binary(m) is not None]
    if not models:
        pytest.skip("no CLI installed: run scripts/install-clis")
    toks = {m: token() for m in models}
    markers = {m: sleeper_marker() for m in models}
    for m in models:
        model_server.script(sleepers(m, markers[m]), Turn.never(), match=toks[m])

    async with serve(mcp_env, root) as srv:
        outcomes: dict[str, tuple[float, float, set[int], dict[str, Any]]] = {}

        async def one(model: str) -> None:
            _, worker_limits, dispatch_limits = cases[model]
            await srv.spawn(model, f"w-{model}", **worker_limits)
            run = await srv.dispatch(f"start sleepers {toks[model]}", f"w-{model}", wait=0, **dispatch_limits)
            hung = await wait_for_hang(model_server, toks[model])
            tree = srv.step_tree(toks[model])
            sleeping = await _both_sleepers(markers[model])
            assert len(sleeping) == 2, f"{model}: the sleepers should be running"
            assert sleeping <= tree
            ended = await srv.finished(run["runId"], wait=30)
            outcomes[model] = (hung, time.monotonic(), tree, ended)

        async with anyio.create_task_group() as tg:
            for m in models:
                tg.start_soon(one, m)

    for model, (hung, ended_at, tree, run) in outcomes.items():
        expected, worker_limits, dispatch_limits = cases[model]
        (limit,) = [float(v) for v in {**worker_limits, **dispatch_limits}.values()]
        assert run["status"] == "failed", (model, run)
        assert run["error"]["class"] == expected
        (step,) = run["steps"]
        assert step["status"] == "failed"
        assert step["failureClass"] == expected, (model, step)
        assert not alive(tree), f"{model}: left running: {alive(tree)}"
        assert not pids_with_arg(markers[model])
        # The limit fires at most `limit` after the CLI hung (a stall counts from the last output, a timeout
        # from the step's start); the tree is gone within the kill grace + 1 s after that.
        assert ended_at - hung < limit + SERVER_KILL_GRACE + 1, f"{model}: ended {ended_at - hung:.2f} s after hanging"
        if expected == "timeout":
            assert step["durationMs"] < (limit + SERVER_KILL_GRACE + 1) * 1000, (model, step["durationMs"])


# ---- 5: 50 MiB of output ------------------------------------------------------------------------

FIFTY_MIB = 50 << 20

# A stand-in for `codex exec --json`: valid codex JSONL. A prompt containing "big" prints 51 command
# items of 1 MiB output each and a 64 KiB answer; any other prompt answers at once.
_FAKE_CODEX = """\
import json, sys
prompt = sys.argv[-1]
w = sys.stdout.buffer.write
w(b'{"type":"thread.started","thread_id":"0199a0fa-fake-7000-8000-00000000c0de"}\\n{"type":"turn.started"}\\n')
answer = "small answer"
if "big" in prompt:
    chunk = "x" * (1 << 20)
    for i in range(51):
        item = {"id": f"item_{i}", "type": "command_execution", "command": f"cat part{i}",
                "aggregated_output": chunk, "exit_code": 0, "status": "completed"}
        w(json.dumps({"type": "item.completed", "item": item}).encode() + b"\\n")
    answer = "BIG ANSWER " + "y" * (64 << 10) + " END"
msg = {"id": "item_z", "type": "agent_message", "text": answer}
w(json.dumps({"type": "item.completed", "item": msg}).encode() + b"\\n")
w(b'{"type":"turn.completed","usage":{"input_tokens":11,"cached_input_tokens":0,"output_tokens":7}}\\n')
"""


@pytest.mark.slow
async def test_fifty_mib_of_output_stays_out_of_server_memory(
    server_env: dict[str, str], root: Path, tmp_path: Path
) -> None:
    fake = tmp_path / "fake-codex"
    fake.write_text(f"#!{sys.executable}\n{_FAKE_CODEX}")
    fake.chmod(0o755)
    env = {**server_env, "MCP_ORCHESTRATOR_CODEX_BIN": str(fake)}

    async with serve(env, root) as srv:
        await srv.spawn("codex_cli", "w-big")
        warm = await srv.dispatch("say something small", "w-big")  # loads the CLI runtime's modules
        assert warm["status"] == "completed", warm
        rss_before, peak_before = vm_kib(srv.pid, "VmRSS"), vm_kib(srv.pid, "VmHWM")

        started = time.monotonic()
        run = await srv.dispatch("print something big", "w-big")
        dispatch_seconds = time.monotonic() - started
        rss_after, peak_after = vm_kib(srv.pid, "VmRSS"), vm_kib(srv.pid, "VmHWM")
        assert run["status"] == "completed", run
        (step,) = run["steps"]
        assert step["outputBytes"] >= FIFTY_MIB
        assert step["outputTruncated"] is True
        assert step["output"].startswith("BIG ANSWER ")
        assert step["output"].endswith(" END")
        assert len(step["output"].encode()) <= 8 * 1024 + 100  # the excerpt cap, plus the cut marker
        growth_mb = (rss_after - rss_before) / 1024
        assert growth_mb < 20, f"server RSS grew by {growth_mb:.1f} MB ({rss_before} -> {rss_after} KiB)"
        # The peak too (VmHWM is the process's lifetime peak: it moved only if the run set a new one).
        peak_mb = (peak_after - rss_before) / 1024
        assert peak_after == peak_before or peak_mb < 20, f"server peak RSS {peak_mb:.1f} MB above the baseline"

        # The whole output through the resource. Slow with the SDK's stdio client (its line reader copies
        # its growing buffer for every chunk: quadratic in a 50 MiB line); the server's part is ~0.3 s.

        started = time.monotonic()
        text = await srv.read(f"runs://{run['runId']}/steps/0/output")
        read_seconds = time.monotonic() - started
        assert len(text) == step["outputBytes"]
        lines = text.splitlines()
        assert json.loads(lines[0])["type"] == "thread.started"
        assert json.loads(lines[-1])["type"] == "turn.completed"

    print(
        f"\n50 MiB: dispatch {dispatch_seconds:.2f} s, server RSS {rss_before / 1024:.1f} -> {rss_after / 1024:.1f} MB"
        f" (peak {peak_after / 1024:.1f} MB), resource read {read_seconds:.2f} s"
    )


# ---- 6: the server's secrets never reach a worker ---------------------------------------------------


@pytest.mark.clis
async def test_server_secrets_are_not_visible_to_workers(
    model: str, model_server: ModelServer, mcp_env: dict[str, str], root: Path
) -> None:
    tok = token()
    secret, private = f"s3cr3t-{secrets.token_hex(8)}", f"private-{secrets.token_hex(8)}"
    env = {
        **mcp_env,
        "MY_SECRET_TOKEN": secret,
        # codex hides *KEY*/*SECRET*/*TOKEN* names from commands by itself: this one only the allowlist stops.
        "BUILD_PRIVATE_NOTE": private,
        "MY_ALLOWED_VAR": f"visible-{tok}",
        "MCP_ORCHESTRATOR_WORKER_ENV": "MY_ALLOWED_VAR",
    }
    model_server.script(Turn.shell("env"), Turn.answer(f"listed {tok}"), match=tok)

    async with serve(env, root) as srv:
        await srv.spawn(model, "w-env")
        run = await srv.dispatch(f"list the environment {tok}", "w-env")
        assert run["status"] == "completed", run
        output = await srv.read(f"runs://{run['runId']}/steps/0/output")

    requests = model_server.matching(tok)
    after_tool = requests[-1].text
    assert f"visible-{tok}" in after_tool, "the tool output (env) should reach the model"
    assert STEP_TAG_VAR in after_tool
    everything = "\n".join(r.text for r in requests) + output + json.dumps(run)
    assert secret not in everything
    assert private not in everything
    assert "MCP_ORCHESTRATOR_HOME" not in after_tool
    keys = {"codex_cli": "loopback-codex-key", "gemini_cli": "loopback-gemini-key", "claude_cli": "loopback-claude-key"}
    for other, key in keys.items():
        if other != model:
            assert key not in after_tool, f"{other}'s key leaked to {model}"
