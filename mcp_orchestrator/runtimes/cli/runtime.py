"""The ``cli`` runtime: one step of a codex, gemini or claude worker as a real headless process."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from typing import Any

from mcp_orchestrator.errors import RunFailure
from mcp_orchestrator.runtimes.base import StepContext, StepOutcome, WorkerRuntime
from mcp_orchestrator.runtimes.cli.capabilities import find_binary
from mcp_orchestrator.runtimes.cli.env import worker_env
from mcp_orchestrator.runtimes.cli.failures import classify, quarantine
from mcp_orchestrator.runtimes.cli.homes import isolation_flags, worker_home
from mcp_orchestrator.runtimes.cli.parsers import make_parser
from mcp_orchestrator.runtimes.cli.process import STEP_TAG_VAR, run_process
from mcp_orchestrator.runtimes.cli.templates import ADAPTERS, build_invocation

__all__ = ["CliRuntime"]


class CliRuntime(WorkerRuntime):
    """Runs each step as the worker's CLI, headless, in its jailed workdir.

    ``environ`` is the environment the worker env is filtered from (default: the server's own,
    read at each step); ``kill_grace`` is how long a SIGTERMed tree gets before SIGKILL.
    """

    mode = "cli"

    def __init__(self, *, environ: Mapping[str, str] | None = None, kill_grace: float = 3.0) -> None:
        self._environ = environ
        self.kill_grace = kill_grace

    async def run_step(self, ctx: StepContext) -> StepOutcome:
        """Run the step; raise ``RunFailure`` with a shared class when it fails."""
        model = ctx.worker.model
        adapter = ADAPTERS.get(model)
        if adapter is None:
            raise RunFailure("unavailable", f"model {model!r} has no CLI; use codex_cli, gemini_cli or claude_cli")
        environ = os.environ if self._environ is None else self._environ
        binary = find_binary(model, environ)
        if binary is None:
            raise RunFailure("unavailable", f"the {adapter.name} CLI was not found. {adapter.install_hint}")
        if not ctx.workdir.is_dir():
            raise RunFailure("process_error", f"workdir {ctx.workdir} is not a directory")
        session = ctx.worker.session_id if ctx.continue_session else None
        env = worker_env(model, environ, ctx.extra_env)
        home = worker_home(model, environ, env)
        inv = build_invocation(
            model,
            binary,
            ctx.prompt,
            role=ctx.worker.role,
            session_id=session,
            model_name=ctx.worker.model_name,
            extra_flags=isolation_flags(model, environ, home),
        )
        tag = secrets.token_hex(8)
        env[STEP_TAG_VAR] = tag
        parser = make_parser(model)

        async def on_line(line: bytes) -> None:
            for excerpt in parser.feed(line):
                await ctx.report(excerpt)

        mode = "read-only" if inv.read_only else "writer"
        await ctx.report(f"{adapter.name}: started ({mode}{', resuming ' + session if session else ''})")
        done = await run_process(
            inv.argv,
            cwd=ctx.workdir,
            env=env,
            output=ctx.output,
            on_line=on_line,
            stdin=inv.stdin,
            grace=self.kill_grace,
            tag=tag,
        )
        st = parser.state
        details: dict[str, Any] = {
            "cli": adapter.name,
            "binary": binary,
            "flags": inv.flags,
            "home": home,
            "read_only": inv.read_only,
            "resumed": inv.resumed,
            "prompt_on_stdin": inv.stdin is not None,
            "commands": st.commands,
            "files_changed": st.files_changed,
            "tool_calls": st.tool_calls,
            "permission_denials": st.permission_denials,
            "unparsed_lines": st.unparsed_lines,
            "oversized_lines": done.oversized_lines,
        }
        failure = classify(model, done.exit_code, st, done.stderr_tail)
        if failure is not None:
            if failure.failure_class == "bad_output":
                raw = bytes(st.unparsed_sample) or done.stdout_tail
                where = quarantine(
                    ctx.output.spool_path,
                    raw,
                    failure.message,
                    meta={
                        "cli": adapter.name,
                        "exitCode": done.exit_code,
                        "outputBytes": ctx.output.total_bytes,
                        "stderrTail": done.stderr_tail[-2000:].decode("utf-8", "replace"),
                    },
                )
                if where is not None:
                    failure = RunFailure(
                        "bad_output", f"{failure.message}; raw output kept in {where}", exit_code=done.exit_code
                    )
            await ctx.report(f"{adapter.name}: failed ({failure.failure_class})")
            raise failure
        await ctx.report(f"{adapter.name}: done")
        return StepOutcome(
            text=st.text,
            exit_code=done.exit_code,
            usage=st.usage,
            session_id=st.session_id or session,
            details=details,
        )
