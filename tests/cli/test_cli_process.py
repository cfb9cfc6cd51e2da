"""The CLI runtime's process handling, with small fake CLIs (real processes, no vendor binary needed).

A fake CLI is a Python script that prints what the real one would (or misbehaves on purpose);
the runtime finds it through ``MCP_ORCHESTRATOR_CODEX_BIN`` / ``_GEMINI_BIN`` like a real one.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import textwrap
import time
import tracemalloc
from pathlib import Path

import anyio
import pytest
from support.cli_harness import KILL_GRACE, Harness
from support.model_server import ModelServer
from support.procs import alive, descendants, pids_with_arg

from mcp_orchestrator.errors import RunFailure
from mcp_orchestrator.runtimes.base import StepOutcome
from mcp_orchestrator.runtimes.cli import ADAPTERS, adapter_status

pytestmark = pytest.mark.anyio

CODEX_OK = [
    '{"type":"thread.started","thread_id":"thread-fake"}',
    '{"type":"item.completed","item":{"id":"i1","type":"agent_message","text":"fake answer"}}',
    '{"type":"turn.completed","usage":{"input_tokens":3,"output_tokens":2}}',
]
STARTED = (
    '{"type":"item.started","item":{"id":"i0","type":"command_execution","command":"spawned","status":"in_progress"}}'
)


def fake_cli(tmp_path: Path, body: str, name: str = "fake-cli") -> Path:
    """An executable Python script standing in for a CLI."""
    path = tmp_path / name
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    path.chmod(0o755)
    return path


def harness(model: str, server: ModelServer, tmp_path: Path, binary: Path | None) -> Harness:
    """A harness whose runtime finds ``binary`` as ``model``'s CLI."""
    environ = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    if binary is not None:
        environ[ADAPTERS[model].bin_env] = str(binary)
    return Harness(model=model, server=server, environ=environ, tmp=tmp_path)


async def test_missing_binary_is_unavailable_with_install_hint(model_server: ModelServer, tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    for model, package in (("codex_cli", "@openai/codex@0.169.0"), ("claude_cli", "@anthropic-ai/claude-code@2.1.330")):
        h = harness(model, model_server, tmp_path, None)
        h.environ["PATH"] = str(empty)
        with pytest.raises(RunFailure) as info:
            await h.run("hello")
        assert info.value.failure_class == "unavailable"
        assert package in info.value.message
        assert ADAPTERS[model].bin_env in info.value.message
        status = adapter_status(model, h.environ)
        assert status["status"] == "unavailable"
        assert status["binary"] is None
        assert package in status["detail"]

    h = harness("gemini_cli", model_server, tmp_path, tmp_path / "no-such-gemini")
    with pytest.raises(RunFailure) as info:
        await h.run("hello")
    assert info.value.failure_class == "unavailable"
    assert "@google/gemini-cli@0.61.0" in info.value.message


async def test_fake_cli_success_and_environment(model_server: ModelServer, tmp_path: Path) -> None:
    lines = "\n".join(CODEX_OK)
    binary = fake_cli(
        tmp_path,
        f"""
        import json, os, sys
        with open(os.path.join(os.getcwd(), "seen.json"), "w") as f:
            json.dump({{"argv": sys.argv[1:], "env": dict(os.environ), "stdin": sys.stdin.read()}}, f)
        print({lines!r}, flush=True)
        """,
    )
    h = harness("codex_cli", model_server, tmp_path, binary)
    h.environ.update(OPENAI_API_KEY="openai-key", ANTHROPIC_API_KEY="other-vendor", MY_SECRET_TOKEN="nope", LC_ALL="C")
    out = await h.run("the prompt", role="reviewer")
    assert (out.text, out.session_id, out.exit_code) == ("fake answer", "thread-fake", 0)
    assert out.usage is not None and out.usage.total_tokens == 5
    seen = json.loads((h.workdir() / "seen.json").read_text())
    assert seen["argv"] == ["exec", "--json", "--skip-git-repo-check", "-s", "read-only", "--", "the prompt"]
    assert seen["stdin"] == ""  # /dev/null
    env = seen["env"]
    assert env["OPENAI_API_KEY"] == "openai-key" and env["LC_ALL"] == "C"
    assert "ANTHROPIC_API_KEY" not in env and "MY_SECRET_TOKEN" not in env
    assert ADAPTERS["codex_cli"].bin_env not in env
    assert out.details["flags"] == seen["argv"][:-2]


async def test_unparseable_output_is_bad_output_and_quarantined(model_server: ModelServer, tmp_path: Path) -> None:
    binary = fake_cli(tmp_path, 'print("this is not JSON\\n{\\"half\\": ", flush=True)\n')
    h = harness("codex_cli", model_server, tmp_path, binary)
    with pytest.raises(RunFailure) as info:
        await h.run("hello")
    assert info.value.failure_class == "bad_output"
    assert info.value.exit_code == 0
    quarantined = h.tmp / "outputs" / "step-1.log.quarantine"
    assert quarantined.read_bytes().startswith(b"this is not JSON\n")
    meta = json.loads(quarantined.with_name(quarantined.name + ".json").read_text())
    assert "without a result event" in meta["reason"]
    assert str(quarantined) in info.value.message


async def test_fifty_mib_of_output_keeps_memory_bounded(model_server: ModelServer, tmp_path: Path) -> None:
    binary = fake_cli(
        tmp_path,
        f"""
        import json, sys
        out = sys.stdout.buffer
        out.write(b'{CODEX_OK[0]}\\n')
        chunk = json.dumps({{"type": "item.completed", "item": {{"type": "command_execution", "command": "cat big",
                            "aggregated_output": "x" * 65000, "exit_code": 0}}}}).encode() + b"\\n"
        for _ in range(50 * 1024 * 1024 // len(chunk) + 1):
            out.write(chunk)
        out.write(b"y" * (6 << 20) + b"\\n")  # one oversized line: dropped, never buffered whole
        out.write(b'{CODEX_OK[1]}\\n{CODEX_OK[2]}\\n')
        """,
    )
    h = harness("codex_cli", model_server, tmp_path, binary)
    ctx = h.context("big output")
    tracemalloc.start()
    try:
        out = await h.runtime.run_step(ctx)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        ctx.output.close()
    assert out.text == "fake answer"
    assert ctx.output.total_bytes > 56 << 20
    assert out.details["oversized_lines"] == 1
    assert len(out.details["commands"]) <= 50
    assert peak < 20 << 20, f"peak traced memory {peak / 2**20:.1f} MiB"


async def test_cancel_kills_escaped_orphaned_and_stubborn_descendants(
    model_server: ModelServer, tmp_path: Path
) -> None:
    marks = [f"{700 + secrets.randbelow(10**6)}.{i}" for i in range(1, 4)]
    binary = fake_cli(
        tmp_path,
        f"""
        import os, signal, subprocess, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # stubborn: only SIGKILL ends it (and its children)
        subprocess.Popen(["sleep", "{marks[0]}"], start_new_session=True)  # own session, still a child
        for mark, own_session in (("{marks[1]}", False), ("{marks[2]}", True)):
            pid = os.fork()
            if pid == 0:  # orphaned grandchild; the second one also leaves the session
                if own_session:
                    os.setsid()
                subprocess.Popen(["sleep", mark])
                os._exit(0)
            os.waitpid(pid, 0)
        print({STARTED!r}, flush=True)
        time.sleep(600)
        """,
    )
    h = harness("codex_cli", model_server, tmp_path, binary)
    outcome: list[StepOutcome] = []
    scope = anyio.CancelScope()

    async def step() -> None:
        with scope:
            outcome.append(await h.run("spawn and hang"))

    async with anyio.create_task_group() as tg:
        tg.start_soon(step)
        await h.wait_report("ran `spawned`")
        tree = descendants(os.getpid()) | {p for m in marks for p in pids_with_arg(m)}
        assert all(pids_with_arg(m) for m in marks)
        started = time.monotonic()
        scope.cancel()
    elapsed = time.monotonic() - started
    assert scope.cancelled_caught and outcome == []
    assert not alive(tree), f"left running: {alive(tree)}"
    assert KILL_GRACE - 0.1 < elapsed < KILL_GRACE + 1  # SIGTERM ignored: SIGKILL after the grace period


async def test_cli_exiting_zero_on_sigterm_still_ends_canceled(model_server: ModelServer, tmp_path: Path) -> None:
    binary = fake_cli(
        tmp_path,
        """
        import signal, sys, time
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # like gemini
        print('{"type":"init","session_id":"s"}', flush=True)
        print('{"type":"tool_use","tool_name":"run_shell_command","parameters":{"command":"wait"}}', flush=True)
        time.sleep(600)
        """,
    )
    h = harness("gemini_cli", model_server, tmp_path, binary)
    with pytest.raises(TimeoutError):  # noqa: PT012 - the deadline moves once the CLI is up
        with anyio.fail_after(60) as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(lambda: h.run("hang"))
                await h.wait_report("gemini: ran `wait`")
                scope.deadline = anyio.current_time()
    assert "gemini: done" not in h.reports


async def test_leftover_background_process_is_ended_after_exit(model_server: ModelServer, tmp_path: Path) -> None:
    mark = f"{800 + secrets.randbelow(10**6)}.5"
    lines = "\n".join(CODEX_OK)
    binary = fake_cli(
        tmp_path,
        f"""
        import subprocess
        subprocess.Popen(["sleep", "{mark}"])  # inherits stdout: the pipe stays open after we exit
        print({lines!r}, flush=True)
        """,
    )
    h = harness("codex_cli", model_server, tmp_path, binary)
    started = time.monotonic()
    out = await h.run("leave something behind")
    assert out.text == "fake answer"
    assert time.monotonic() - started < KILL_GRACE + 3
    assert not pids_with_arg(mark)


async def test_exit_codes_and_signals_are_process_errors(model_server: ModelServer, tmp_path: Path) -> None:
    binary = fake_cli(tmp_path, 'import sys\nsys.stderr.write("boom: something broke\\n")\nsys.exit(3)\n')
    h = harness("claude_cli", model_server, tmp_path, binary)
    with pytest.raises(RunFailure) as info:
        await h.run("x")
    assert (info.value.failure_class, info.value.exit_code) == ("process_error", 3)
    assert "boom: something broke" in info.value.message

    binary = fake_cli(tmp_path, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n", name="killed")
    h = harness("claude_cli", model_server, tmp_path, binary)
    with pytest.raises(RunFailure) as info:
        await h.run("x")
    assert info.value.failure_class == "process_error"
    assert "signal 9" in info.value.message
