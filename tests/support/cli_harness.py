"""Running the CLI runtime directly in tests: binaries, unique markers, step contexts."""

from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest

from mcp_orchestrator.contracts import WorkerRecord, utcnow
from mcp_orchestrator.runtimes.base import OutputSink, StepContext, StepOutcome
from mcp_orchestrator.runtimes.cli import ADAPTERS, CliRuntime

from .model_server import ModelServer

__all__ = ["CLI_MODELS", "KILL_GRACE", "MODEL_NAMES", "TOOLS_BIN", "Harness", "cli_binary", "require_cli", "token"]

REPO = Path(__file__).resolve().parents[2]
TOOLS_BIN = REPO / ".tools" / "clis" / "node_modules" / ".bin"
CLI_MODELS = ("codex_cli", "gemini_cli", "claude_cli")
# gemini asks a router model first unless a model is named; name one to keep one request per turn.
MODEL_NAMES: dict[str, str | None] = {"codex_cli": None, "gemini_cli": "gemini-2.5-flash", "claude_cli": None}
KILL_GRACE = 1.0


def cli_binary(model: str) -> str | None:
    """Where the tests find ``model``'s real binary: its env variable, ``.tools/clis``, then PATH."""
    adapter = ADAPTERS[model]
    override = os.environ.get(adapter.bin_env)
    if override:
        return override
    local = TOOLS_BIN / adapter.binary
    if local.exists():
        return str(local)
    return shutil.which(adapter.binary)


def require_cli(model: str) -> str:
    """The binary of ``model``, or skip the test saying how to install it."""
    binary = cli_binary(model)
    if binary is None:
        pytest.skip(f"{ADAPTERS[model].binary} is not installed: run scripts/install-clis")
    return binary


def token() -> str:
    """A unique marker for one run's prompt, so concurrent runs never take each other's scripted turns."""
    return f"case-{secrets.token_hex(6)}"


@dataclass
class Harness:
    """Builds step contexts and runs steps of one CLI against the loopback server."""

    model: str
    server: ModelServer
    environ: dict[str, str]
    tmp: Path
    reports: list[str] = field(default_factory=list)
    counter: int = 0
    use_process_environ: bool = False
    kill_grace: float = KILL_GRACE
    _reported: anyio.Event | None = None

    @property
    def runtime(self) -> CliRuntime:
        """A runtime over this harness's environment (or the process's own, if asked)."""
        return CliRuntime(environ=None if self.use_process_environ else self.environ, kill_grace=self.kill_grace)

    def workdir(self, name: str = "work") -> Path:
        """A fresh workdir."""
        path = self.tmp / name
        path.mkdir(parents=True, exist_ok=True)
        return path.resolve()

    def context(
        self,
        prompt: str,
        *,
        role: str = "writer",
        workdir: Path | None = None,
        session_id: str | None = None,
        continue_session: bool = False,
        extra_env: tuple[str, ...] = (),
    ) -> StepContext:
        """A step context with a real, spooling output sink."""
        self.counter += 1
        wd = workdir or self.workdir()
        worker = WorkerRecord(
            name=f"w{self.counter}",
            model=self.model,
            runtime_mode="cli",
            workdir=str(wd),
            role=role,
            owner_agent_id="tests",
            created_at=utcnow(),
            model_name=MODEL_NAMES.get(self.model),
            session_id=session_id,
        )

        async def report(text: str) -> None:
            self.reports.append(text)
            if self._reported is not None:
                self._reported.set()

        return StepContext(
            run_id=f"run_{self.counter:020x}",
            step_index=self.counter,
            prompt=prompt,
            worker=worker,
            workdir=wd,
            output=OutputSink(self.tmp / "outputs" / f"step-{self.counter}.log"),
            report=report,
            continue_session=continue_session,
            extra_env=extra_env,
        )

    async def wait_report(self, fragment: str, seconds: float = 30) -> str:
        """The first progress report containing ``fragment``, waiting for it up to ``seconds``."""
        with anyio.fail_after(seconds):
            while True:
                for text in self.reports:
                    if fragment in text:
                        return text
                self._reported = anyio.Event()
                await self._reported.wait()

    async def run(self, prompt: str, **kwargs: Any) -> StepOutcome:
        """Run one step to completion."""
        ctx = self.context(prompt, **kwargs)
        try:
            return await self.runtime.run_step(ctx)
        finally:
            ctx.output.close()
