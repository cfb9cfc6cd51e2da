"""The real codex, gemini and claude binaries against the loopback model server (issue #3 acceptance).

Every test runs once per CLI. Runs inside one test go concurrently where they are independent;
each run's prompt carries a unique marker that binds the scripted turns to it.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from pathlib import Path

import anyio
import pytest
from support.cli_harness import KILL_GRACE, Harness, token
from support.loopback import loopback_env
from support.model_server import Turn
from support.procs import alive, descendants, pids_with_arg

from mcp_orchestrator.contracts import Usage
from mcp_orchestrator.errors import RunFailure
from mcp_orchestrator.runtimes.base import StepOutcome

pytestmark = [pytest.mark.anyio, pytest.mark.clis]

WRITER_FLAG = {"codex_cli": "workspace-write", "gemini_cli": "yolo", "claude_cli": "acceptEdits"}
READ_ONLY_FLAG = {"codex_cli": "read-only", "gemini_cli": "default", "claude_cli": "plan"}
RESUME_FLAG = {"codex_cli": "resume", "gemini_cli": "--resume", "claude_cli": "--resume"}


async def wait_for_hang(cli: Harness, tok: str) -> None:
    """Until the model server holds a never-answered request from the run marked ``tok``."""
    await anyio.to_thread.run_sync(lambda: cli.server.wait_for_request(tok, hanging=True, timeout=60))


async def test_completes_with_answer_usage_and_session(cli: Harness) -> None:
    tok = token()
    cli.server.script(Turn.answer(f"the answer {tok}", input_tokens=123, output_tokens=45), match=tok)
    out = await cli.run(f"answer me {tok}")
    assert out.text == f"the answer {tok}"
    assert out.exit_code == 0
    assert out.usage == Usage(input_tokens=123, output_tokens=45, total_tokens=168)
    assert out.session_id and len(out.session_id) >= 16
    assert out.details["flags"][0] in ("exec", "-o", "-p")
    assert len(cli.server.matching(tok)) == 1
    name = cli.model.removesuffix("_cli")
    assert f"{name}: done" in cli.reports


async def test_writer_writes_in_workdir_reviewer_cannot(cli: Harness) -> None:
    wtok, rtok = token(), token()
    writer_wd, reviewer_wd = cli.workdir("writer"), cli.workdir("reviewer")
    cli.server.script(Turn.shell(f"echo {wtok} > {writer_wd / 'out.txt'}"), Turn.answer("wrote it"), match=wtok)
    cli.server.script(
        Turn.shell(f"echo {rtok} > {reviewer_wd / 'out.txt'}"),
        Turn.write(str(reviewer_wd / "other.txt"), rtok),
        Turn.answer("tried"),
        match=rtok,
    )
    outcomes: dict[str, StepOutcome] = {}

    async def run(role: str, tok: str, wd: Path) -> None:
        outcomes[role] = await cli.run(f"change a file {tok}", role=role, workdir=wd)

    async with anyio.create_task_group() as tg:
        tg.start_soon(run, "writer", wtok, writer_wd)
        tg.start_soon(run, "reviewer", rtok, reviewer_wd)

    assert (writer_wd / "out.txt").read_text().strip() == wtok
    assert outcomes["writer"].text == "wrote it"
    assert WRITER_FLAG[cli.model] in outcomes["writer"].details["flags"]
    assert outcomes["writer"].details["commands"]
    assert any("ran `echo" in r for r in cli.reports)

    assert not (reviewer_wd / "out.txt").exists()
    assert not (reviewer_wd / "other.txt").exists()
    assert outcomes["reviewer"].details["read_only"] is True
    assert READ_ONLY_FLAG[cli.model] in outcomes["reviewer"].details["flags"]


async def test_http_errors_map_to_failure_classes(cli: Harness) -> None:
    expected = {401: "auth", 429: "rate_limited", 500: "unavailable"}
    failures: dict[int, RunFailure] = {}

    async def run(status: int) -> None:
        tok = token()
        cli.server.script(Turn.error(status, f"scripted {status}"), match=tok)
        with pytest.raises(RunFailure) as info:
            await cli.run(f"fail please {tok}")
        failures[status] = info.value

    async with anyio.create_task_group() as tg:
        for status in expected:
            tg.start_soon(run, status)
    assert {s: f.failure_class for s, f in failures.items()} == expected
    assert all(f.exit_code not in (None, 0) for f in failures.values())


async def test_connection_refused_is_unavailable(cli: Harness, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cli.environ.update(loopback_env(f"http://127.0.0.1:{port}", tmp_path / "refused"))
    with pytest.raises(RunFailure) as info:
        await cli.run(f"nobody home {token()}")
    assert info.value.failure_class == "unavailable"


def sleepers(model: str, marker: str) -> Turn:
    """A tool call that leaves two ``sleep <marker>`` grandchildren running while the CLI waits for the model."""
    both = f"sleep {marker} & sleep {marker}; wait"
    if model == "codex_cli":  # unified exec returns to the model after yield_time_ms, the command keeps running
        return Turn.raw_tool("exec_command", {"cmd": both, "yield_time_ms": 300})
    if model == "claude_cli":
        return Turn.raw_tool("Bash", {"command": both, "run_in_background": True, "description": "sleepers"})
    detach = f"sleep {marker} >/dev/null 2>&1 &"  # gemini runs commands detached: these are orphaned at once
    return Turn.shell(f"{detach} {detach} echo started")


async def test_total_timeout_kills_tree_with_grandchildren(cli: Harness) -> None:
    tok = token()
    marker = f"{600 + secrets.randbelow(10**6)}.5"
    cli.server.script(sleepers(cli.model, marker), Turn.never(), match=tok)
    tree: set[int] = set()
    with pytest.raises(TimeoutError):  # noqa: PT012 - the deadline moves once the tree is up
        with anyio.fail_after(120) as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(lambda: cli.run(f"start sleepers {tok}"))
                await wait_for_hang(cli, tok)
                tree = descendants(os.getpid()) | pids_with_arg(marker)
                assert len(pids_with_arg(marker)) == 2, "the sleepers should be running"
                started = time.monotonic()
                scope.deadline = anyio.current_time()  # what the engine's total/stall timeout does
    elapsed = time.monotonic() - started
    assert tree
    assert not alive(tree), f"left running: {alive(tree)}"
    assert elapsed < KILL_GRACE + 1


async def test_cancel_kills_tree_and_ends_canceled(cli: Harness) -> None:
    tok = token()
    cli.server.script(Turn.never(), match=tok)
    outcome: list[StepOutcome] = []

    async def step(scope: anyio.CancelScope) -> None:
        with scope:
            outcome.append(await cli.run(f"hang {tok}"))

    scope = anyio.CancelScope()
    async with anyio.create_task_group() as tg:
        tg.start_soon(step, scope)
        await wait_for_hang(cli, tok)
        tree = descendants(os.getpid())
        assert tree
        started = time.monotonic()
        scope.cancel()
    elapsed = time.monotonic() - started
    assert scope.cancelled_caught
    assert outcome == []  # canceled, even when the CLI exits 0 on SIGTERM (gemini)
    assert not alive(tree), f"left running: {alive(tree)}"
    assert elapsed < KILL_GRACE + 1
    request = cli.server.wait_for_request(tok, hanging=True, timeout=1)
    assert request.finished.wait(5) and request.disconnected


async def test_secret_env_is_not_visible_to_the_worker(cli: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    tok = token()
    secret = f"s3cr3t-{secrets.token_hex(8)}"
    for name, value in {**cli.environ, "MY_SECRET_TOKEN": secret, "MY_ALLOWED_VAR": f"visible-{tok}"}.items():
        monkeypatch.setenv(name, value)
    cli.use_process_environ = True  # the runtime filters the server's own environment
    cli.server.script(Turn.shell("env"), Turn.answer("listed"), match=tok)
    out = await cli.run(f"list the environment {tok}", extra_env=("MY_ALLOWED_VAR",))
    assert out.text == "listed"
    after_tool = cli.server.matching(tok)[-1].text
    assert f"visible-{tok}" in after_tool, "the tool output (env) should reach the model"
    assert all(secret not in r.text for r in cli.server.matching(tok))
    others = {
        "codex_cli": "loopback-codex-key",
        "gemini_cli": "loopback-gemini-key",
        "claude_cli": "loopback-claude-key",
    }
    for model, key in others.items():
        if model != cli.model:
            assert key not in after_tool, f"{model}'s key leaked to {cli.model}"


async def test_continue_session_resumes_the_cli_conversation(cli: Harness) -> None:
    first_tok, second_tok = token(), token()
    wd = cli.workdir()
    cli.server.script(Turn.answer(f"remember ALPHA-{first_tok}"), match=first_tok)
    cli.server.script(Turn.answer("second answer"), match=second_tok)
    first = await cli.run(f"first turn {first_tok}", workdir=wd)
    second = await cli.run(f"second turn {second_tok}", workdir=wd, session_id=first.session_id, continue_session=True)
    assert second.text == "second answer"
    request = cli.server.matching(second_tok)[-1]
    assert f"first turn {first_tok}" in request.text
    assert f"ALPHA-{first_tok}" in request.text
    assert second.details["resumed"] is True
    assert RESUME_FLAG[cli.model] in second.details["flags"]
    assert second.session_id == first.session_id


async def test_long_prompt_goes_on_stdin(cli: Harness) -> None:
    tok = token()
    cli.server.script(Turn.answer("read it all"), match=tok)
    prompt = f"-starts with a dash {tok} " + "lorem ipsum " * 12_000
    out = await cli.run(prompt)
    assert out.text == "read it all"
    assert out.details["prompt_on_stdin"] is True
    assert "lorem ipsum " * 12_000 in cli.server.matching(tok)[-1].text
