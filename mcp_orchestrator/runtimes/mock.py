"""The ``mock`` runtime: a real, deterministic implementation of the runtime seam.

Output is derived from the task, so the same task always gives the same answer. A task
may script the step with a directive anywhere in its text::

    [[mock delay=1.5 fail=rate_limited bytes=100000 stall=1 chunks=10]]

``delay`` sleeps before answering (cancellable), ``fail`` ends the step with that failure
class, ``bytes`` pads the output to that many bytes, ``chunks`` streams the output in that
many pieces, ``stall`` goes silent for that many seconds before the answer.
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

_DIRECTIVE = re.compile(r"\[\[mock((?:\s+[a-z_]+=[^\s\]]+)*)\s*\]\]")
_MAX_BYTES = 256 << 20


def parse_directive(task: str) -> dict[str, str]:
    """The ``[[mock ...]]`` settings in ``task`` (empty when there is none)."""
    m = _DIRECTIVE.search(task)
    if m is None:
        return {}
    return dict(pair.split("=", 1) for pair in m.group(1).split())


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
        settings = parse_directive(ctx.prompt)
        delay = _number(settings, "delay", 0.0, 3600.0)
        stall = _number(settings, "stall", 0.0, 3600.0)
        size = int(_number(settings, "bytes", 0, _MAX_BYTES))
        chunks = max(int(_number(settings, "chunks", 1, 10_000)), 1)
        await ctx.report(f"mock: {ctx.worker.name} working")
        if delay:
            await anyio.sleep(delay)
        fail = settings.get("fail")
        if fail is not None:
            failure: FailureClass = fail if fail in get_args(FailureClass) else "process_error"  # type: ignore[assignment]
            raise RunFailure(failure, f"scripted failure ({fail}) from the mock runtime", exit_code=1)
        digest = hashlib.sha256(ctx.prompt.encode()).hexdigest()[:16]
        text = f"mock answer {digest} from {ctx.worker.name} ({ctx.worker.role}): {ctx.prompt[:200]}"
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
