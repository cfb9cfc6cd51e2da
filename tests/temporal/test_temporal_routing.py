"""Routing fallback, hedging and budgets inside a run's workflow, as on the local engine (tests/gateway).

One worker process serves ``codex_cli/cli`` (a fake codex: it answers at once, or, for a task that says
"be silent", starts a process tree and says nothing), ``codex_cli/mock`` and ``gemini_cli/mock``; nobody polls
``codex_cli/openai_sdk``. The server's gateway configuration lists ``mock, cli, openai_sdk`` for codex_cli and
hedges reviewers after 0.5 s; it reaches the workflow in the run's policy.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from support.procs import alive
from support.temporal_dev import DevServer
from support.temporal_workers import call, temporal_settings, worker_process

from mcp_orchestrator.gateway import GatewayConfig
from mcp_orchestrator.server import build_server

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

FAKE = """
import json, os, subprocess, sys, time
if "be silent" in " ".join(sys.argv):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    with open("tree.json.tmp", "w") as f:
        json.dump({"cli": os.getpid(), "child": child.pid}, f)
    os.replace("tree.json.tmp", "tree.json")
    time.sleep(300)
print(json.dumps({"type": "item.completed", "item": {"id": "i1", "type": "agent_message", "text": "cli answer"}}))
print(json.dumps({"type": "turn.completed", "usage": {"input_tokens": 3, "output_tokens": 2}}), flush=True)
"""
CONFIG = {
    "candidates": {"codex_cli": ["mock", "cli", "openai_sdk"]},
    "hedge": {"roles": ["reviewer"], "hedgeDelaySeconds": 0.5, "maxHedges": 1},
}
APPROVE = '[[mock@reviewer say={"decision":"approve","rationale":"fine"}]]'


async def _dispatch(c: Client, task: str, workers: list[str], **extra: Any) -> str:
    run = await call(c, "dispatch_task", agentId="default", task=task, workers=workers, waitSeconds=0, **extra)
    return str(run["runId"])


async def _ended(c: Client, run_id: str) -> dict[str, Any]:
    run = await call(c, "get_run", runId=run_id, waitSeconds=30, detail="full")
    assert run["status"] in ("completed", "failed", "canceled"), run
    return run


async def _tree(workdir: Path) -> set[int]:
    marker = workdir / "tree.json"
    with anyio.fail_after(20):
        while not marker.exists():  # noqa: ASYNC110 - the worker process's CLI writes it
            await anyio.sleep(0.05)
    pids = json.loads(marker.read_text())
    return {int(pids["cli"]), int(pids["child"])}


async def test_steps_fall_back_hedge_and_keep_their_budget_inside_the_workflow(
    temporal_server: DevServer, temporal_prefix: str, tmp_path: Path
) -> None:
    prefix = temporal_prefix.rstrip("-")
    root = (tmp_path / "root").resolve()
    for name in ("cx", "cs", "rv", "bw"):
        (root / name).mkdir(parents=True)
    fake = tmp_path / "fake-codex"
    fake.write_text(f"#!{sys.executable}\n" + textwrap.dedent(FAKE))
    fake.chmod(0o755)
    backends = ["codex_cli/cli", "codex_cli/mock", "gemini_cli/mock"]
    env = {"MCP_ORCHESTRATOR_CODEX_BIN": str(fake)}
    with worker_process(temporal_server, prefix, tmp_path / "worker", (root,), backends, extra_env=env):
        settings = temporal_settings(
            temporal_server, prefix, tmp_path / "a", (root,), retry_attempts=1, gateway=GatewayConfig.parse(CONFIG)
        )
        async with Client(build_server(settings)) as c:
            for name, model, runtime, role in [
                ("cx", "codex_cli", "mock", "writer"),
                ("cs", "codex_cli", "openai_sdk", "writer"),
                ("rv", "codex_cli", "cli", "reviewer"),
                ("bw", "codex_cli", "mock", "writer"),
                ("gm", "gemini_cli", "mock", "reviewer"),
            ]:
                await call(c, "spawn_worker", agentId="default", name=name, model=model, runtimeMode=runtime,
                           role=role, workdir=str(root / (name if name != "gm" else "bw")))  # fmt: skip
            pair = {"strategy": "codex_writes_gemini_reviews", "workers": ["bw", "gm"]}
            began = anyio.current_time()
            failing = await _dispatch(c, "[[mock@cx fail=rate_limited]] fix it", ["cx"])
            unpolled = await _dispatch(c, "fix it", ["cs"])
            hedged = await _dispatch(c, "be silent and review it", ["rv"])
            free = await _dispatch(c, f"validate input {APPROVE}", **pair)  # type: ignore[arg-type]
            tree = await _tree(root / "rv")

            # A fallback-safe failure on mock moves the step to the next candidate, recorded as locally.
            (step,) = (await _ended(c, failing))["steps"]
            assert (step["status"], step["runtimeMode"], step["output"]) == ("completed", "cli", "cli answer"), step
            fell = step["fallbackFrom"]
            assert (fell["runtimeMode"], fell["failureClass"]) == ("mock", "rate_limited"), fell
            assert [(a["runtimeMode"], a["failureClass"]) for a in step["attempts"]] == [
                ("mock", "rate_limited"),
                ("cli", None),
            ]
            assert [r["runtimeMode"] for r in step["routing"]["candidates"]] == ["mock", "cli", "openai_sdk"]

            # A backend no worker process polls falls back at once, not after the queue timeout (60 s here).
            (step,) = (await _ended(c, unpolled))["steps"]
            assert (step["status"], step["runtimeMode"]) == ("completed", "mock"), step
            fell = step["fallbackFrom"]
            assert (fell["runtimeMode"], fell["failureClass"]) == ("openai_sdk", "unavailable"), fell
            assert f"no worker process polls {prefix}.codex_cli.openai_sdk" in fell["message"]

            # The silent reviewer on cli is hedged by mock after 0.5 s; mock wins, cli's activity is canceled.
            (step,) = (await _ended(c, hedged))["steps"]
            assert (step["status"], step["runtimeMode"]) == ("completed", "mock"), step
            hedges = {h["runtimeMode"]: h for h in step["routing"]["hedges"]}
            assert (hedges["cli"]["outcome"], hedges["mock"]["outcome"]) == ("canceled", "won"), hedges
            assert hedges["mock"]["startedAfterMs"] >= 500, "the hedge waited for the delay"
            with anyio.fail_after(5):  # the canceled activity killed the silent CLI's tree
                while alive(tree):  # noqa: ASYNC110 - processes of the worker process
                    await anyio.sleep(0.05)
            assert anyio.current_time() - began < 30

            # A budget the writer uses up refuses the reviewer's step before it starts.
            ran = await _ended(c, free)
            assert ran["status"] == "completed", ran
            writer = ran["steps"][0]["usage"]["totalTokens"]
            limited = await _dispatch(c, f"validate input {APPROVE}", budget={"maxTokens": writer}, **pair)  # type: ignore[arg-type]
            run = await _ended(c, limited)
            assert (run["status"], run["error"]["class"]) == ("failed", "budget_exceeded"), run
            wrote, review = run["steps"]
            assert (wrote["status"], review["status"]) == ("completed", "failed"), run["steps"]
            refusal = f"budget_exceeded: the run's budget of {writer} tokens would be exceeded"
            assert review["output"].startswith(refusal), review
            assert review["usage"] is None and review["attempts"][0]["runtimeMode"] == "mock"
