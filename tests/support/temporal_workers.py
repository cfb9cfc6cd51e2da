"""``mcp-orchestrator worker`` processes for the Temporal engine tests, and the settings that reach them."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from mcp import Client

from mcp_orchestrator.config import Settings, TemporalConfig
from support.temporal_dev import DevServer

__all__ = ["MOCK_BACKENDS", "call", "listed", "temporal_settings", "two_servers", "worker_env", "worker_process"]

MOCK_BACKENDS = ["mock/mock", "codex_cli/mock", "gemini_cli/mock", "claude_cli/mock"]


async def call(c: Client, tool: str, **args: Any) -> dict[str, Any]:
    """A tool call that must succeed: its structured result."""
    result = await c.call_tool(tool, args)
    assert not result.is_error, f"{tool}: {result.content}"
    assert result.structured_content is not None
    return result.structured_content


async def listed(c: Client, want: dict[str, str], within: float = 10.0) -> dict[str, str]:
    """Wait until ``list_workers`` on ``c`` shows each of ``want``'s workers with its status (the cluster's
    listing is visibility, eventually consistent); every worker's status then."""
    import anyio

    with anyio.fail_after(within):
        while True:
            seen = {w["name"]: w["status"] for w in (await call(c, "list_workers"))["workers"]}
            if all(seen.get(name) == status for name, status in want.items()):
                return seen
            await anyio.sleep(0.1)  # visibility has no event to wait on


def temporal_settings(server: DevServer, prefix: str, home: Path, roots: tuple[Path, ...], **extra: object) -> Settings:
    """A server's settings on the Temporal engine of ``server`` under ``prefix``."""
    cfg = TemporalConfig(address=server.address, task_queue_prefix=prefix, heartbeat_seconds=3.0, queue_seconds=60.0)
    return Settings(home=home, roots=roots, engine="temporal", executor="inline", temporal=cfg, **extra)  # type: ignore[arg-type]


def worker_env(server: DevServer, prefix: str, home: Path, roots: tuple[Path, ...]) -> dict[str, str]:
    """The environment of a worker process: its own data dir and roots, the shared cluster."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_ORCHESTRATOR_")}
    env.update(
        MCP_ORCHESTRATOR_ENGINE="temporal",
        MCP_ORCHESTRATOR_TEMPORAL_ADDRESS=server.address,
        MCP_ORCHESTRATOR_TEMPORAL_TASK_QUEUE_PREFIX=prefix,
        MCP_ORCHESTRATOR_HOME=str(home),
        MCP_ORCHESTRATOR_ROOTS=os.pathsep.join(str(r) for r in roots),
        MCP_ORCHESTRATOR_RETRY_ATTEMPTS="1",
    )
    return env


@contextmanager
def worker_process(
    server: DevServer,
    prefix: str,
    home: Path,
    roots: tuple[Path, ...],
    backends: list[str] | None = None,
    *,
    extra_env: dict[str, str] | None = None,
    machine: str | None = None,
) -> Iterator[subprocess.Popen[str]]:
    """A worker process, started and polling (it prints its ready line), stopped with SIGTERM afterwards;
    ``machine``: its ``--machine`` (else the hostname)."""
    argv = [sys.executable, "-m", "mcp_orchestrator", "worker"]
    if machine is not None:
        argv += ["--machine", machine]
    for backend in backends or MOCK_BACKENDS:
        argv += ["--backend", backend]
    home.mkdir(parents=True, exist_ok=True)
    log = (home / "worker.log").open("w")
    proc = subprocess.Popen(
        argv,
        env={**worker_env(server, prefix, home, roots), **(extra_env or {})},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 60.0)  # its ready line, or EOF if it died
        line = proc.stdout.readline() if ready else ""
        if "worker ready" not in line:
            proc.wait(timeout=10)
            raise RuntimeError(f"the worker did not start: {(home / 'worker.log').read_text()[-3000:]}")
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


@asynccontextmanager
async def two_servers(
    server: DevServer, prefix: str, tmp_path: Path, *, worker: bool = True, backends: list[str] | None = None
) -> AsyncIterator[tuple[Client, Client, str, subprocess.Popen[str] | None]]:
    """Servers A and B on data dirs of their own (in this process), sharing ``server`` under ``prefix``, one workdir
    root (its ``work`` folder is yielded) and, with ``worker``, one worker process (yielded too) serving
    ``backends`` (``mock/mock`` unless told)."""
    from mcp_orchestrator.server import build_server

    root = (tmp_path / "root").resolve()
    (root / "work").mkdir(parents=True)
    with ExitStack() as stack:
        proc = None
        if worker:
            proc = stack.enter_context(
                worker_process(server, prefix, tmp_path / "worker", (root,), backends or ["mock/mock"])
            )
        on_a = temporal_settings(server, prefix, tmp_path / "a", (root,))
        on_b = temporal_settings(server, prefix, tmp_path / "b", (root,))
        async with Client(build_server(on_a)) as ca, Client(build_server(on_b)) as cb:
            yield ca, cb, str(root / "work"), proc
