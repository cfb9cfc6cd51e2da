"""100 runs while worker processes are killed with SIGKILL at random: none is lost, none executes twice.

The fake codex CLI writes a ledger line when it starts a run's step; a step whose worker was killed ends
``interrupted`` (never run again: it may have half-changed files), every other run completes.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sys
import textwrap
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from support.temporal_dev import DevServer
from support.temporal_workers import temporal_settings, worker_process

from mcp_orchestrator.server import build_server

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

RUNS = 100
LEDGER_CLI = """
import json, os, sys, time
prompt = sys.argv[-1]
run = prompt.split()[0]
with open(os.environ["LEDGER"], "a") as f:
    f.write(f"{run} {os.getpid()}\\n")
print(json.dumps({"type": "thread.started", "thread_id": "t"}), flush=True)
time.sleep(float(os.environ.get("FAKE_SECONDS", "0.4")))
print(json.dumps({"type": "item.completed", "item": {"id": "i1", "type": "agent_message", "text": "done " + run}}))
print(json.dumps({"type": "turn.completed", "usage": {"input_tokens": 1, "output_tokens": 1}}), flush=True)
"""


async def call(c: Client, tool: str, **args: Any) -> dict[str, Any]:
    result = await c.call_tool(tool, args)
    assert not result.is_error, f"{tool}: {result.content}"
    assert result.structured_content is not None
    return result.structured_content


async def test_random_worker_kills_lose_nothing_and_run_nothing_twice(
    temporal_server: DevServer, temporal_prefix: str, tmp_path: Path
) -> None:
    prefix = temporal_prefix.rstrip("-")
    root = (tmp_path / "root").resolve()
    (root / "work").mkdir(parents=True)
    cli = tmp_path / "ledger-codex"
    cli.write_text(f"#!{sys.executable}\n" + textwrap.dedent(LEDGER_CLI))
    cli.chmod(0o755)
    ledger = tmp_path / "ledger.txt"
    extra = {"MCP_ORCHESTRATOR_CODEX_BIN": str(cli), "LEDGER": str(ledger), "OPENAI_API_KEY": "sk-test"}
    extra["MCP_ORCHESTRATOR_WORKER_ENV"] = "LEDGER"  # workers pass only allowlisted variables to a CLI
    rng = random.Random(14)
    generation = 0

    def start(stack: ExitStack) -> Any:
        nonlocal generation
        generation += 1
        home = tmp_path / f"worker-{generation}"
        return stack.enter_context(
            worker_process(temporal_server, prefix, home, (root,), ["codex_cli/cli"], extra_env=extra)
        )

    settings = temporal_settings(temporal_server, prefix, tmp_path / "home", (root,))
    killed = 0
    with ExitStack() as stack:
        workers = [start(stack), start(stack)]
        async with Client(build_server(settings)) as c:
            await call(
                c,
                "spawn_worker",
                agentId="default",
                name="cx",
                model="codex_cli",
                runtimeMode="cli",
                workdir=str(root / "work"),
            )
            ids = []

            async def chaos() -> None:
                nonlocal killed
                while True:
                    await anyio.sleep(rng.uniform(0.5, 1.5))
                    victim = workers.pop(rng.randrange(len(workers)))
                    victim.send_signal(signal.SIGKILL)
                    killed += 1
                    workers.append(await anyio.to_thread.run_sync(start, stack))

            async with anyio.create_task_group() as tg:
                tg.start_soon(chaos)  # from the first dispatch on (a dispatch reads the cluster's registry)
                for i in range(RUNS):
                    run = await call(
                        c, "dispatch_task", agentId="default", task=f"job-{i} go", workers=["cx"], waitSeconds=0
                    )
                    ids.append(run["runId"])
                ended = [await call(c, "get_run", runId=run_id, waitSeconds=120, detail="full") for run_id in ids]
                tg.cancel_scope.cancel()
    for line in ledger.read_text().splitlines():  # the orphans of killed workers
        pid = int(line.split()[1])
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert killed >= 3
    statuses = Counter(r["status"] for r in ended)
    assert set(statuses) <= {"completed", "failed"}, statuses  # nothing lost: every run ended
    for run in ended:
        if run["status"] == "failed":
            assert run["error"]["class"] == "interrupted", run["error"]
    starts = Counter(line.split()[0] for line in ledger.read_text().splitlines())
    assert max(starts.values()) == 1, [k for k, v in starts.items() if v > 1]  # never executed twice
    assert statuses["completed"] >= RUNS // 2, statuses
    completed = {f"job-{i}" for i, r in enumerate(ended) if r["status"] == "completed"}
    assert completed <= set(starts), "a completed run's step ran"
