"""Helpers shared by the benchmark scripts (not a benchmark itself)."""

from __future__ import annotations

import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

from mcp import StdioServerParameters

from mcp_orchestrator.contracts import RunRecord, WorkerRecord, utcnow
from mcp_orchestrator.store import JsonRunStore

REPO = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent


def server_env(home: Path, root: Path) -> dict[str, str]:
    """The environment of a product server on ``home`` and ``root`` (none of the caller's MCP_ settings)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_")}
    env.update(MCP_ORCHESTRATOR_HOME=str(home), MCP_ORCHESTRATOR_ROOTS=str(root), PYTHONUNBUFFERED="1")
    # The executor a server starts outlives it: let it go soon after the benchmark's last call.
    env.setdefault("MCP_ORCHESTRATOR_EXECUTOR_IDLE_SECONDS", "10")
    return env


def product_params(home: Path, root: Path) -> StdioServerParameters:
    """``python -m mcp_orchestrator serve`` over stdio."""
    return StdioServerParameters(
        command=sys.executable, args=["-m", "mcp_orchestrator", "serve"], env=server_env(home, root), cwd=str(REPO)
    )


def bare_params() -> StdioServerParameters:
    """A bare ``MCPServer`` with one trivial tool, started the same way."""
    return StdioServerParameters(
        command=sys.executable, args=[str(BENCH / "_bare_server.py")], env=dict(os.environ), cwd=str(REPO)
    )


def summary(samples: list[float], scale: float = 1000.0) -> dict[str, float | int]:
    """Median, p10, p90 and count of ``samples`` (seconds), in milliseconds by default."""
    ordered = sorted(samples)
    pick = lambda q: ordered[min(int(q * len(ordered)), len(ordered) - 1)]  # noqa: E731
    return {
        "median": round(statistics.median(ordered) * scale, 3),
        "p10": round(pick(0.10) * scale, 3),
        "p90": round(pick(0.90) * scale, 3),
        "n": len(ordered),
    }


def make_run(i: int, *, worker: str = "bench-w", agent: str = "bench") -> RunRecord:
    """A completed run whose id sorts by ``i``."""
    now = utcnow()
    return RunRecord(
        run_id=f"run_{i:012x}{i:08x}",
        status="completed",
        strategy="single_worker",
        task=f"benchmark task number {i}",
        agent_id=agent,
        created_at=now,
        ended_at=now + timedelta(milliseconds=5),
        workers=[worker],
        summary=f"{worker} completed the task in 5 ms.",
    )


def fill_store(home: Path, count: int, *, worker: str = "bench-w", root: Path | None = None) -> JsonRunStore:
    """``count`` completed runs (and their worker) stored directly, without fsync."""
    store = JsonRunStore(home, fsync=False)
    store.put_worker(
        WorkerRecord(
            name=worker,
            model="mock",
            runtime_mode="mock",
            workdir=str(root or home),
            owner_agent_id="bench",
            created_at=utcnow(),
        )
    )
    for i in range(count):
        store.create_run(make_run(i, worker=worker))
    return store


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def children_running(module: str) -> list[int]:
    """Pids of this process's children whose command line mentions ``module``."""
    me = os.getpid()
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == me and module.encode() in cmd:
            out.append(int(entry))
    return out


def wait_until_idle(pid: int, *, window: float = 0.4, timeout: float = 60.0) -> float:
    """Block until ``pid`` used no CPU for ``window`` seconds (its start-up work is over); returns the wait."""
    start = time.monotonic()
    last = _cpu_ticks(pid)
    while time.monotonic() - start < timeout:
        time.sleep(window)
        now = _cpu_ticks(pid)
        if now == last:
            break
        last = now
    return time.monotonic() - start


def stop_executor(home: Path, root: Path) -> None:
    """``mcp-orchestrator daemon stop`` for ``home``: the executor a product server started outlives it."""
    import subprocess

    subprocess.run(
        [sys.executable, "-m", "mcp_orchestrator", "daemon", "stop"],
        env=server_env(home, root),
        cwd=str(REPO),
        capture_output=True,
        check=False,
        timeout=60,
    )


async def first_answer(params: StdioServerParameters) -> float:
    """Seconds from spawning the server to the answer of its first ``tools/list``."""
    from mcp import Client

    start = time.perf_counter()
    async with Client(params) as client:
        tools = await client.list_tools()
        elapsed = time.perf_counter() - start
    assert tools.tools
    return elapsed
