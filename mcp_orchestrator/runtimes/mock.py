"""The ``mock`` runtime: a real, deterministic implementation of the runtime seam.

Output is derived from the task, so the same task always gives the same answer. A task
may script the step with a directive anywhere in its text::

    [[mock delay=1.5 fail=rate_limited bytes=100000 stall=1 chunks=10]]

``delay`` sleeps before answering (cancellable), ``fail`` ends the step with that failure
class (``fail_times=N``: only the first N attempts), ``bytes`` pads the output to that many
bytes, ``chunks`` streams the output in that many pieces, ``stall`` goes silent for that many seconds before the answer,
``say=TEXT`` puts TEXT on the answer's first line.

A directive keyed to a worker or a role, ``[[mock@writer-b fail=unavailable]]``, applies only to the steps of that
worker (or run in that role) and wins over an unkeyed one: a task that reaches every step of a multi-step strategy
can script just one of them.
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import get_args

import anyio
import anyio.lowlevel

from mcp_orchestrator.contracts import FailureClass, Usage
from mcp_orchestrator.errors import RunFailure
from mcp_orchestrator.runtimes.base import StepContext, StepOutcome, WorkerRuntime

__all__ = ["MockRuntime", "parse_directive"]

_DIRECTIVE = re.compile(r"\[\[mock(?:@([A-Za-z0-9_.-]+))?((?:\s+[a-z_]+=[^\s\]]+)*)\s*\]\]")
_MAX_BYTES = 256 << 20


def parse_directive(task: str, *targets: str) -> dict[str, str]:
    """The ``[[mock ...]]`` settings in ``task`` (empty when there is none).

    The first directive keyed to one of ``targets`` (``[[mock@name ...]]``) wins; else the first unkeyed one.
    """
    unkeyed: re.Match[str] | None = None
    for m in _DIRECTIVE.finditer(task):
        key = m.group(1)
        if key is not None and key in targets:
            unkeyed = m
            break
        if key is None and unkeyed is None:
            unkeyed = m
            if not targets:
                break
    if unkeyed is None:
        return {}
    return dict(pair.split("=", 1) for pair in unkeyed.group(2).split())


def _number(settings: dict[str, str], key: str, default: float, upper: float) -> float:
    try:
        value = float(settings.get(key, default))
    except ValueError:
        return default
    if math.isnan(value):  # float("nan") parses, and would slip through min/max
        return default
    return min(max(value, 0.0), upper)


class MockRuntime(WorkerRuntime):
    """Deterministic answers with scriptable delays, stalls, sizes and failures."""

    mode = "mock"

    async def run_step(self, ctx: StepContext) -> StepOutcome:
        """Answer the task after the scripted delay, or fail as scripted."""
        settings = parse_directive(ctx.prompt, ctx.worker.name, ctx.worker.role)
        delay = _number(settings, "delay", 0.0, 3600.0)
        stall = _number(settings, "stall", 0.0, 3600.0)
        size = int(_number(settings, "bytes", 0, _MAX_BYTES))
        chunks = max(int(_number(settings, "chunks", 1, 10_000)), 1)
        await ctx.report(f"mock: {ctx.worker.name} working")
        if delay:
            await anyio.sleep(delay)
        fail = settings.get("fail")
        # fail_times=N: only the first N attempts fail (a transient fault that a retry cures).
        if fail is not None and ctx.attempt <= int(_number(settings, "fail_times", 1e9, 1e9)):
            failure: FailureClass = fail if fail in get_args(FailureClass) else "process_error"  # type: ignore[assignment]
            raise RunFailure(failure, f"scripted failure ({fail}) from the mock runtime", exit_code=1)
        digest = hashlib.sha256(ctx.prompt.encode()).hexdigest()[:16]
        text = f"mock answer {digest} from {ctx.worker.name} ({ctx.worker.role}): {ctx.prompt[:200]}"
        if "say" in settings:
            text = f"{settings['say']}\n{text}"
        if size > len(text):
            text += "\n" + "x" * (size - len(text) - 1)
        data = text.encode()
        step = max(len(data) // chunks, 1)
        for i in range(0, len(data), step):
            ctx.output.write(data[i : i + step])
            if chunks > 1:
                await anyio.lowlevel.checkpoint()
            if stall and i == 0:
                await anyio.sleep(stall)
        words = len(ctx.prompt.split())
        return StepOutcome(
            text=text,
            exit_code=0,
            usage=Usage(input_tokens=words, output_tokens=len(text.split()), total_tokens=words + len(text.split())),
            session_id=f"mock-{ctx.worker.name}",
        )
