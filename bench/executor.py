"""Issue #13: what the executor costs. ``serve`` hands each run to the data directory's executor process.

1. ``dispatch_task`` round trip (a mock worker, ``waitSeconds`` 30, the answer at once) through the front end and
   its executor vs today's in-process server (``MCP_ORCHESTRATOR_EXECUTOR=inline``), both over stdio, interleaved
   after a warm-up. Goal: ratio <= 1.10.
2. Start-up of the first ``serve``, the one that starts the executor (a fresh data directory each time): spawn to
   the first ``tools/list`` answer, vs a bare MCPServer started the same way. Goal: under 1.5x. Also reported:
   spawn until the executor answers ``daemon status`` (it starts in the background, off the answer's path).

Prints one JSON object.

    python bench/executor.py [--calls 50] [--starts 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
from _common import REPO, bare_params, first_answer, product_params, server_env, stop_executor, summary
from mcp import Client, StdioServerParameters

AGENT = "bench"


def params(home: Path, root: Path, mode: str) -> StdioServerParameters:
    p = product_params(home, root)
    assert p.env is not None
    p.env["MCP_ORCHESTRATOR_EXECUTOR"] = mode
    return p


async def dispatches(calls: int) -> dict[str, object]:
    samples: dict[str, list[float]] = {"daemon": [], "inline": []}
    with tempfile.TemporaryDirectory() as tmp:
        clients = {}
        for mode in samples:
            home, root = Path(tmp) / mode / "home", Path(tmp) / mode / "root"
            home.mkdir(parents=True)
            root.mkdir()
            clients[mode] = (home, root)
        async with (
            Client(params(*clients["daemon"], "daemon")) as front,
            Client(params(*clients["inline"], "inline")) as inline,
        ):
            by_mode = {"daemon": front, "inline": inline}
            for client in by_mode.values():
                await client.call_tool("spawn_worker", {"agentId": AGENT, "name": "w", "model": "mock"})

            async def once(mode: str) -> float:
                start = time.perf_counter()
                result = await by_mode[mode].call_tool(
                    "dispatch_task", {"agentId": AGENT, "task": "answer at once", "waitSeconds": 30}
                )
                elapsed = time.perf_counter() - start
                assert result.structured_content and result.structured_content["status"] == "completed", result
                return elapsed

            for _ in range(5):  # warm-up: runtimes loaded, executor started, caches filled
                for mode in samples:
                    await once(mode)
            for _ in range(calls):
                for mode in samples:
                    samples[mode].append(await once(mode))
        stop_executor(*clients["daemon"])
    ratio = statistics.median(samples["daemon"]) / statistics.median(samples["inline"])
    return {
        "front_end_and_executor": summary(samples["daemon"]),
        "inline": summary(samples["inline"]),
        "ratio": round(ratio, 3),
        "added_ms": round((statistics.median(samples["daemon"]) - statistics.median(samples["inline"])) * 1000, 3),
        "goal_ratio_max": 1.10,
    }


async def executor_up(home: Path, root: Path, started: float) -> float:
    while True:
        proc = await anyio.run_process(
            [sys.executable, "-m", "mcp_orchestrator", "daemon", "status"],
            env=server_env(home, root),
            cwd=str(REPO),
            check=False,
        )
        if proc.returncode == 0:
            return time.perf_counter() - started
        await anyio.sleep(0.02)


async def startups(starts: int) -> dict[str, object]:
    first: list[float] = []
    bare: list[float] = []
    executor: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        await first_answer(bare_params())  # warm the OS file cache
        for i in range(starts + 1):
            home, root = Path(tmp) / f"h{i}", Path(tmp) / f"r{i}"
            home.mkdir()
            root.mkdir()
            bare_s = await first_answer(bare_params())
            started = time.perf_counter()
            first_s = await first_answer(params(home, root, "daemon"))
            up = await executor_up(home, root, started)
            stop_executor(home, root)
            if i:  # the first round warms the caches
                bare.append(bare_s)
                first.append(first_s)
                executor.append(up)
    return {
        "first_serve": summary(first),
        "bare_mcpserver": summary(bare),
        "ratio": round(statistics.median(first) / statistics.median(bare), 3),
        "goal_ratio_max": 1.5,
        "spawn_to_executor_answering": summary(executor),
    }


async def main(calls: int, starts: int) -> dict[str, object]:
    return {
        "benchmark": "executor",
        "what": "dispatch_task round trip through the executor vs inline; first serve start-up (ms)",
        "dispatch": await dispatches(calls),
        "startup": await startups(starts),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--starts", type=int, default=7)
    args = parser.parse_args()
    print(json.dumps(anyio.run(main, args.calls, args.starts)))
