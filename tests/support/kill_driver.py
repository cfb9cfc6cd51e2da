"""A fork server for the kill-at-random-instants test (issue #15): it imports the orchestrator once, then forks
one child per trial, which runs the hot path until the test kills it with SIGKILL.

Protocol, one line each way on stdin/stdout:

    go <home> <root> <events>   ->  pid <child pid>    (the child runs; the test kills it)
                                ->  exited <pid> <raw wait status>
    quit

The child is an ``Orchestrator`` on ``home`` (fsync on, the default settings), which first recovers what the
previous child left. It then dispatches mock runs from several concurrent callers without end (a third with a
short delay, so that kills also land while steps run). To ``events`` (append-only, one ``os.write`` per line,
so a line is whole or absent) it writes ``ready``, ``accepted <runId>`` once ``dispatch`` has returned, and
``terminal <runId> <status>`` once ``wait_run`` has answered a terminal status: what a caller was told.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio

from mcp_orchestrator.config import Settings
from mcp_orchestrator.contracts import TERMINAL_RUN_STATUSES
from mcp_orchestrator.service import Orchestrator

AGENT = "killed"
WORKERS = [f"k{i}" for i in range(6)]
CALLERS = 6


def _emit(fd: int, line: str) -> None:
    os.write(fd, (line + "\n").encode())


async def _hot_path(home: Path, root: Path, fd: int) -> None:
    orch = Orchestrator(Settings(home=home, roots=(root,), fsync=True))
    async with orch.running():
        _emit(fd, "ready")

        async def caller(k: int) -> None:
            i = k
            while True:
                task = f"trial task {i}" + (" [[mock delay=0.05]]" if i % 3 == 0 else "")
                run = await orch.dispatch(AGENT, task, workers=[WORKERS[i % len(WORKERS)]])
                _emit(fd, f"accepted {run.run_id}")
                done = await orch.wait_run(run.run_id, 30)
                if done.status in TERMINAL_RUN_STATUSES:
                    _emit(fd, f"terminal {run.run_id} {done.status}")
                i += CALLERS

        async with anyio.create_task_group() as tg:
            for k in range(CALLERS):
                tg.start_soon(caller, k)


def _child(home: str, root: str, events: str) -> None:
    fd = os.open(events, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        anyio.run(_hot_path, Path(home), Path(root), fd)
    finally:
        os._exit(0)


def main() -> None:
    """Serve ``go`` requests until ``quit`` or end of input."""
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] == "quit":
            return
        _, home, root, events = words
        pid = os.fork()
        if pid == 0:
            _child(home, root, events)
        print(f"pid {pid}", flush=True)
        _, status = os.waitpid(pid, 0)
        print(f"exited {pid} {status}", flush=True)


if __name__ == "__main__":
    main()
