""" "Machines" for the Temporal engine tests: a data dir and a workdir root each, and a fake codex CLI whose
long step is a real process tree (the CLI and a child), so a cancel or a killed worker can be seen in /proc."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from mcp import Client

from support.temporal_dev import DevServer
from support.temporal_workers import call, temporal_settings, worker_process

__all__ = ["Machine", "codex_env", "fake_codex", "long_run", "served_machines", "tree_of"]

FAKE_CODEX = """
import json, os, subprocess, sys, time
print(json.dumps({"type": "thread.started", "thread_id": "thread-fake"}), flush=True)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
with open(os.path.join(os.getcwd(), "tree.json"), "w") as f:
    json.dump({"cli": os.getpid(), "child": child.pid}, f)
seconds = float(os.environ.get("FAKE_SECONDS", "30"))
end = time.monotonic() + seconds
while time.monotonic() < end:
    print(json.dumps({"type": "item.started", "item": {"id": "i0", "type": "command_execution",
                      "command": "working", "status": "in_progress"}}), flush=True)
    time.sleep(0.5)
child.kill()
print(json.dumps({"type": "item.completed", "item": {"id": "i1", "type": "agent_message", "text": "fake done"}}))
print(json.dumps({"type": "turn.completed", "usage": {"input_tokens": 3, "output_tokens": 2}}), flush=True)
"""


class Machine:
    """One "machine": a data dir and a workdir root, with a worker process and an MCP server of its own."""

    def __init__(self, base: Path, name: str) -> None:
        self.root = (base / name / "root").resolve()
        (self.root / "work").mkdir(parents=True)
        self.server_home = base / name / "server"
        self.server_home.mkdir(parents=True)
        self.worker_home = base / name / "worker"


def fake_codex(base: Path) -> Path:
    """The fake codex CLI, written into ``base``."""
    path = base / "fake-codex"
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(FAKE_CODEX))
    path.chmod(0o755)
    return path


def codex_env(binary: Path, seconds: float) -> dict[str, str]:
    """A worker process's environment for the fake CLI, whose step takes ``seconds``."""
    return {"MCP_ORCHESTRATOR_CODEX_BIN": str(binary), "FAKE_SECONDS": str(seconds), "OPENAI_API_KEY": "sk-test"}


async def tree_of(workdir: Path, seconds: float = 60) -> set[int]:
    """The pids of the fake CLI's tree, once it has written them."""
    marker = workdir / "tree.json"
    with anyio.fail_after(seconds):
        while not marker.exists() or not marker.read_text():  # noqa: ASYNC110 - another process writes it
            await anyio.sleep(0.1)
    tree = json.loads(marker.read_text())
    return {int(tree["cli"]), int(tree["child"])}


async def long_run(c: Client, machine: Machine, name: str = "cx") -> tuple[str, set[int]]:
    """A codex_cli worker on ``machine`` (the fake CLI) and a run dispatched to it: its id and the CLI's tree."""
    workdir = str(machine.root / "work")
    await call(c, "spawn_worker", agentId="default", name=name, model="codex_cli", runtimeMode="cli", workdir=workdir)
    run = await call(c, "dispatch_task", agentId="default", task="long work", workers=[name], waitSeconds=0)
    return run["runId"], await tree_of(machine.root / "work")


@asynccontextmanager
async def served_machines(
    server: DevServer, prefix: str, machines: tuple[Machine, Machine], seconds: float
) -> AsyncIterator[tuple[Client, Client]]:
    """Machine A's worker process runs the fake codex CLI (a step of ``seconds``), B's the mock backend; each
    machine has an MCP server of its own (A's and B's clients are yielded), sharing only ``server``."""
    from mcp_orchestrator.server import build_server

    a, b = machines
    extra = codex_env(fake_codex(a.worker_home.parent), seconds)
    with (
        worker_process(server, prefix, a.worker_home, (a.root,), ["codex_cli/cli"], extra_env=extra),
        worker_process(server, prefix, b.worker_home, (b.root,), ["mock/mock"]),
    ):
        on_a = temporal_settings(server, prefix, a.server_home, (a.root,))
        on_b = temporal_settings(server, prefix, b.server_home, (b.root,))
        async with Client(build_server(on_a)) as ca, Client(build_server(on_b)) as cb:
            yield ca, cb
