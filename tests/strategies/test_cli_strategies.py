"""The strategies end to end: ``mcp-orchestrator serve`` over stdio, the real codex, gemini and claude CLIs
answering to the loopback model server, the SDK ``Client`` driving the tools.

Each step's prompt opens with ``heading(worker, phase)``, so a scripted turn bound to that line serves
exactly one step. Writers change files through their CLI's own tool calls (shell commands run in their
working directory, which is their worktree when they are isolated).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters
from strategies_support import AGENT, git, make_repo, read_text
from support.cli_harness import CLI_MODELS, MODEL_NAMES, cli_binary, require_cli, token
from support.loopback import loopback_env
from support.model_server import ModelServer, Turn
from support.records import full

from mcp_orchestrator.runtimes.cli import ADAPTERS
from mcp_orchestrator.strategies.prompts import heading

pytestmark = [pytest.mark.anyio, pytest.mark.clis]

REPO = Path(__file__).resolve().parents[2]
READ_ONLY_FLAG = {"codex_cli": "read-only", "gemini_cli": "default", "claude_cli": "plan"}


@pytest.fixture(scope="module")
def model_server() -> Iterator[ModelServer]:
    """One loopback model server for this module."""
    with ModelServer() as server:
        yield server


@pytest.fixture
def mcp_env(server_env: dict[str, str], model_server: ModelServer, tmp_path: Path) -> dict[str, str]:
    """The server's environment: fresh data directory and root, loopback CLI homes, the CLIs on PATH."""
    for model in CLI_MODELS:
        require_cli(model)
    env = dict(server_env)
    env.update(loopback_env(model_server.url, tmp_path / "cli-homes"))
    env["HOME"] = str(tmp_path / "user-home")
    (tmp_path / "user-home").mkdir()
    dirs = []
    for m in CLI_MODELS:
        binary = cli_binary(m)
        assert binary is not None
        if Path(binary).name == ADAPTERS[m].binary:
            dirs.append(str(Path(binary).parent))
        else:
            env[ADAPTERS[m].bin_env] = binary
    env["PATH"] = os.pathsep.join([*dict.fromkeys(dirs), env.get("PATH", os.defpath)])
    env["MCP_ORCHESTRATOR_RETRY_ATTEMPTS"] = "1"  # a scripted outage fails its step at once (no retry)
    return env


class Server:
    """A connected client on a real stdio server."""

    def __init__(self, client: Client, workdir: Path, tok: str) -> None:
        self.client = client
        self.workdir = workdir
        self.tok = tok

    def name(self, short: str) -> str:
        """A worker name unique to this test (so scripted turns never serve another test)."""
        return f"{short}-{self.tok}"

    async def call(self, tool: str, **args: Any) -> dict[str, Any]:
        result = await self.client.call_tool(tool, full(tool, args))
        assert not result.is_error, result.content
        assert result.structured_content is not None
        return result.structured_content

    async def spawn(self, short: str, model: str, **extra: Any) -> str:
        name = self.name(short)
        args: dict[str, Any] = {"agentId": AGENT, "name": name, "model": model, "workdir": str(self.workdir)}
        if MODEL_NAMES.get(model):
            args["modelName"] = MODEL_NAMES[model]
        await self.call("spawn_worker", **args, **extra)
        return name

    async def run(self, task: str, strategy: str, workers: list[str], **extra: Any) -> dict[str, Any]:
        run = await self.call(
            "dispatch_task", agentId=AGENT, task=task, strategy=strategy, workers=workers, waitSeconds=90, **extra
        )
        assert run["status"] in ("completed", "failed"), run
        return run


@asynccontextmanager
async def serve(env: dict[str, str], workdir: Path) -> AsyncIterator[Server]:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "mcp_orchestrator", "serve"], env=env, cwd=str(REPO)
    )
    async with Client(params, read_timeout_seconds=120) as client:
        yield Server(client, workdir, token())


def verdict_block(**obj: Any) -> str:
    return f"Here is my verdict.\n\n```json\n{json.dumps(obj)}\n```\n"


def by_worker(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["workerName"]: s for s in run["steps"]}


async def test_codex_writes_files_gemini_reviews(
    model_server: ModelServer, mcp_env: dict[str, str], root: Path
) -> None:
    repo = make_repo(root / "work", {"README.md": "demo\n"})
    async with serve(mcp_env, repo) as srv:
        cx, gm = await srv.spawn("cx", "codex_cli"), await srv.spawn("gm", "gemini_cli", role="reviewer")
        model_server.script(
            Turn.write(str(repo / "hello.py"), "print('hello')\n"),
            Turn.answer("I wrote hello.py."),
            match=heading(cx, "writer"),
        )
        finding = {"severity": "low", "location": "hello.py:1", "description": "no test", "suggestedFix": "add one"}
        model_server.script(
            Turn.answer(verdict_block(decision="request_changes", findings=[finding], rationale="needs a test")),
            match=heading(gm, "reviewer"),
        )
        run = await srv.run("add hello.py", "codex_writes_gemini_reviews", [cx, gm])
        summary = await read_text(srv.client, f"runs://{run['runId']}/summary")

    assert run["status"] == "completed", run["summary"]
    assert (repo / "hello.py").read_text() == "print('hello')\n"  # written by codex's own tool call
    writer, reviewer = run["steps"]
    assert (writer["workerName"], writer["role"], writer["output"]) == (cx, "writer", "I wrote hello.py.")
    assert writer["commands"], "codex ran the write as a command"
    assert reviewer["role"] == "reviewer"
    assert READ_ONLY_FLAG["gemini_cli"] in reviewer["flags"]
    assert reviewer["verdict"] == {
        "decision": "request_changes",
        "findings": [finding],
        "rationale": "needs a test",
    }
    # The reviewer saw the writer's report and the pending change in the workdir.
    request = model_server.matching(heading(gm, "reviewer"), api="gemini")[0]
    assert "I wrote hello.py." in request.text
    assert "print('hello')" in request.text
    assert "- **low** `hello.py:1`: no test Suggested fix: add one" in summary


async def test_parallel_writers_in_worktrees_adjudicated_and_applied(
    model_server: ModelServer, mcp_env: dict[str, str], root: Path
) -> None:
    repo = make_repo(root / "work", {"shared.txt": "base\n"})
    head = git(repo, "rev-parse", "HEAD")
    async with serve(mcp_env, repo) as srv:
        cx, cl = await srv.spawn("cx", "codex_cli"), await srv.spawn("cl", "claude_cli")
        gm = await srv.spawn("gm", "gemini_cli", role="reviewer")
        for name, line in ((cx, "from codex"), (cl, "from claude")):
            # A relative path: each writer's shell runs in its own worktree.
            model_server.script(
                Turn.shell(f"printf '{line}\\n' >> shared.txt"),
                Turn.answer(f"appended {line}"),
                match=heading(name, "writer"),
            )
        model_server.script(
            Turn.answer(verdict_block(choice=cl, decision="approve", findings=[], reasons="claude's line is better")),
            match=heading(gm, "adjudicator"),
        )
        run = await srv.run("append your line", "parallel_generate_adjudicate", [cx, cl, gm], applyResult=True)

    assert run["status"] == "completed", run["summary"]
    steps = by_worker(run)
    branches = {}
    for name, line in ((cx, "from codex"), (cl, "from claude")):
        ws = steps[name]["workspace"]
        assert ws["isolated"] is True
        assert ws["baseCommit"] == head
        assert ws["commit"] and ws["commit"] != head
        assert "shared.txt" in ws["diffStat"]
        assert steps[name]["filesChanged"] == ["shared.txt"]
        # Both changed the same file, each on its own branch: nothing clobbered.
        assert git(repo, "show", f"{ws['branch']}:shared.txt") == f"base\n{line}"
        branches[name] = ws["branch"]
        assert not await anyio.Path(ws["workdir"]).exists()  # worktrees are removed; branches stay
    assert branches[cx] != branches[cl]
    adjudication = steps[gm]
    assert adjudication["verdict"]["decision"] == "approve"
    assert adjudication["verdict"]["rationale"] == f"chose {cl}: claude's line is better"
    request = model_server.matching(heading(gm, "adjudicator"), api="gemini")[0]
    assert "+from codex" in request.text and "+from claude" in request.text  # the diffs were in its prompt
    # The chosen result applied cleanly to the main workdir, as an uncommitted change.
    assert (repo / "shared.txt").read_text() == "base\nfrom claude\n"
    assert git(repo, "rev-parse", "HEAD") == head
    assert git(repo, "status", "--porcelain") == "M shared.txt"
    assert f"applied {cl}'s change" in run["summary"]


async def test_one_parallel_branch_fails_the_other_is_kept(
    model_server: ModelServer, mcp_env: dict[str, str], root: Path
) -> None:
    repo = make_repo(root / "work", {"shared.txt": "base\n"})
    async with serve(mcp_env, repo) as srv:
        cx, cl = await srv.spawn("cx", "codex_cli"), await srv.spawn("cl", "claude_cli")
        gm = await srv.spawn("gm", "gemini_cli", role="reviewer")
        model_server.script(Turn.error(500, "scripted outage"), match=heading(cx, "writer"))
        model_server.script(
            Turn.shell("printf 'from claude\\n' >> shared.txt"), Turn.answer("appended"), match=heading(cl, "writer")
        )
        model_server.script(
            Turn.answer(verdict_block(choice=cl, decision="approve", findings=[], rationale="the only one")),
            match=heading(gm, "comparer"),
        )
        run = await srv.run("append your line", "parallel_dual_write_review", [cx, cl, gm])
        summary = await read_text(srv.client, f"runs://{run['runId']}/summary")

    assert run["status"] == "completed", run["summary"]
    steps = by_worker(run)
    assert steps[cx]["status"] == "failed"
    assert steps[cx]["failureClass"] == "unavailable"
    assert steps[cl]["status"] == "completed"
    assert git(repo, "show", f"{steps[cl]['workspace']['branch']}:shared.txt") == "base\nfrom claude"
    assert f"continuing with {cl}: {cx} failed (unavailable" in run["summary"]
    assert steps[gm]["verdict"]["decision"] == "approve"
    request = model_server.matching(heading(gm, "comparer"), api="gemini")[0]
    assert f"{cx} (codex_cli): failed" in request.text
    assert f"- step 0, {cx} (writer): failed, unavailable" in summary


@pytest.mark.parametrize("model", CLI_MODELS, ids=lambda m: m.removesuffix("_cli"))
async def test_red_team_is_read_only_with_structured_findings(
    model: str, model_server: ModelServer, mcp_env: dict[str, str], root: Path
) -> None:
    repo = make_repo(root / "work", {"app.py": "print('hi')\n"})
    (repo / "app.py").write_text("import os\nos.system(input())\n")  # the work under review, uncommitted
    async with serve(mcp_env, repo) as srv:
        rt = await srv.spawn("rt", model)  # a writer by its own role: the red-team step is read-only anyway
        finding = {
            "severity": "critical",
            "location": "app.py:2",
            "description": "user input reaches a shell",
            "suggestedFix": "use subprocess.run with an argv list",
        }
        model_server.script(
            Turn.write(str(repo / "pwned.txt"), "owned"),
            Turn.answer(verdict_block(decision="request_changes", findings=[finding], rationale="one critical")),
            match=heading(rt, "redteam"),
        )
        run = await srv.run("red-team the pending change", "security_redteam_pass", [rt])

    assert run["status"] == "completed", run["summary"]
    (step,) = run["steps"]
    assert step["role"] == "auditor"
    assert READ_ONLY_FLAG[model] in step["flags"]
    assert not (repo / "pwned.txt").exists(), "the CLI's read-only mode refused the write"
    assert step["verdict"] == {"decision": "request_changes", "findings": [finding], "rationale": "one critical"}
    request = model_server.matching(heading(rt, "redteam"))[0]
    assert "+os.system(input())" in request.text


async def test_reviewer_plans_then_verifies_and_a_failed_writer_hands_over(
    model_server: ModelServer, mcp_env: dict[str, str], root: Path
) -> None:
    repo = make_repo(root / "work", {"README.md": "demo\n"})
    async with serve(mcp_env, repo) as srv:
        cl = await srv.spawn("cl", "claude_cli", role="reviewer")
        gm = await srv.spawn("gm", "gemini_cli")
        model_server.script(Turn.answer("1. create notes.txt with one line"), match=heading(cl, "planner"))
        # The writer fails on its CLI. It does not fall back to its SDK (an SDK cannot write files, so a
        # writer never does); its fallbackPolicy (on_error) lets the reviewer's model implement the plan.
        model_server.script(Turn.error(500, "scripted outage"), match=heading(gm, "implementer"))
        model_server.script(
            Turn.write(str(repo / "notes.txt"), "one line\n"),
            Turn.answer("done by claude"),
            match=heading(cl, "implementer"),
        )
        model_server.script(
            Turn.answer(verdict_block(decision="approve", findings=[], rationale="plan item 1 done")),
            match=heading(cl, "verifier"),
        )
        run = await srv.run("write notes", "reviewer_first_plan", [gm, cl])

    assert run["status"] == "completed", run["summary"]
    assert [(s["workerName"], s["role"], s["status"]) for s in run["steps"]] == [
        (cl, "planner", "completed"),
        (gm, "writer", "failed"),
        (cl, "writer", "completed"),
        (cl, "reviewer", "completed"),
    ]
    assert READ_ONLY_FLAG["claude_cli"] in run["steps"][0]["flags"]
    failed = run["steps"][1]
    assert (failed["runtimeMode"], failed["fallbackFrom"], failed["failureClass"]) == ("cli", None, "unavailable")
    assert (repo / "notes.txt").read_text() == "one line\n"
    assert run["steps"][3]["verdict"]["decision"] == "approve"
    assert f"fallback: {cl} (claude_cli) takes the implementer role after {gm} (gemini_cli) failed" in run["summary"]
    request = model_server.matching(heading(cl, "implementer"), api="anthropic")[0]
    assert "1. create notes.txt with one line" in request.text  # the plan reached the implementer
    assert "scripted outage" in request.text or "failed" in request.text  # and so did the earlier failure
