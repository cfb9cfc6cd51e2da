"""The per-data-dir executor in tests: find its process, stop it, wait for it."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from mcp_orchestrator.contracts import ProcessRef
from mcp_orchestrator.service.executor import ExecutorPaths
from mcp_orchestrator.store._files import is_alive

__all__ = ["executor_process", "inline", "stop_executor"]


def executor_process(home: Path) -> ProcessRef | None:
    """The executor of ``home`` as it recorded itself, if it still runs."""
    try:
        info = json.loads((home / "executor" / "info.json").read_bytes())
        ref = ProcessRef.model_validate(info["process"])
    except (OSError, ValueError, KeyError):
        return None
    return ref if is_alive(ref) else None


def stop_executor(home: Path, within: float = 15.0) -> None:
    """SIGTERM the executor of ``home`` (if any) and wait until it is gone; SIGKILL after ``within``."""
    ref = executor_process(home)
    deadline = time.monotonic() + 3.0
    while ref is None and _held(home) and time.monotonic() < deadline:  # still starting: let it record itself
        time.sleep(0.05)
        ref = executor_process(home)
    if ref is None:
        return
    try:
        os.kill(ref.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + within
    while is_alive(ref) and time.monotonic() < deadline:
        time.sleep(0.05)
    if is_alive(ref):
        os.kill(ref.pid, signal.SIGKILL)


def _held(home: Path) -> bool:
    return (home / "executor").is_dir() and ExecutorPaths(home).held()


def inline(server_env: dict[str, str]) -> dict[str, str]:
    """``serve`` running its runs itself (``MCP_ORCHESTRATOR_EXECUTOR=inline``): for the tests of a server
    process's own scheduler, leases and crash recovery, which the executor process runs in the same way."""
    return {**server_env, "MCP_ORCHESTRATOR_EXECUTOR": "inline"}
