"""What the probes share: running a command with a timeout (its whole process group), timing, building results."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import ByteReceiveStream

from mcp_orchestrator.readiness.models import ProbeEvidence, ProbeResult, ProbeStatus

__all__ = ["CommandRun", "elapsed_ms", "endpoint", "home_of", "make_result", "run_command"]

_OUTPUT_CAP = 64 * 1024


def elapsed_ms(start: float) -> int:
    """Milliseconds since ``start`` (a ``time.perf_counter()`` value)."""
    return round((time.perf_counter() - start) * 1000)


def endpoint(url: str) -> str:
    """``url`` without user info, query or fragment: safe to show and to record."""
    from mcp_orchestrator.runtimes._sdk_wire import public_endpoint  # imports httpx2: only when probing

    return public_endpoint(url)


def home_of(environ: Mapping[str, str]) -> Path:
    """The home directory ``environ`` names (``HOME``), else this user's."""
    home = environ.get("HOME", "").strip()
    return Path(home) if home else Path.home()


def make_result(probe: str, status: ProbeStatus, summary: str, remediation: str = "", **evidence: Any) -> ProbeResult:
    """A probe result; ``evidence`` are :class:`ProbeEvidence` fields."""
    return ProbeResult(
        probe=probe,
        status=status,
        summary=summary,
        remediation=remediation if status != "ok" else "",
        evidence=ProbeEvidence(**evidence),
    )


@dataclass(frozen=True)
class CommandRun:
    """How one command ended: exit code (``None`` when it never started or timed out), output, latency."""

    argv: list[str]
    exit_code: int | None
    stdout: str
    stderr: str
    latency_ms: int
    timed_out: bool = False
    error: str = ""

    @property
    def command(self) -> str:
        """The command as one line a person can paste into a shell."""
        return shlex.join(self.argv)

    @property
    def output(self) -> str:
        """stdout and stderr together."""
        return (self.stdout + self.stderr).strip()


async def _drain(stream: ByteReceiveStream | None, into: bytearray) -> None:
    if stream is None:
        return
    async for chunk in stream:
        room = _OUTPUT_CAP - len(into)
        if room > 0:
            into += chunk[:room]


async def run_command(
    argv: list[str], *, env: Mapping[str, str], time_limit: float, cwd: str | None = None
) -> CommandRun:
    """Run ``argv`` (stdin ``/dev/null``, its own session); after ``time_limit`` s kill its whole process group."""
    start = time.perf_counter()
    try:
        proc = await anyio.open_process(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
        )
    except OSError as e:
        return CommandRun(argv, None, "", "", elapsed_ms(start), error=f"{type(e).__name__}: {e}")
    out, err = bytearray(), bytearray()
    async with proc:
        with anyio.move_on_after(time_limit) as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(_drain, proc.stdout, out)
                tg.start_soon(_drain, proc.stderr, err)
            await proc.wait()
        if scope.cancelled_caught:
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with anyio.CancelScope(shield=True):
                await proc.wait()
    return CommandRun(
        argv,
        None if scope.cancelled_caught else proc.returncode,
        out.decode("utf-8", "replace"),
        err.decode("utf-8", "replace"),
        elapsed_ms(start),
        timed_out=scope.cancelled_caught,
        error=f"no answer within {time_limit:g} s" if scope.cancelled_caught else "",
    )
