"""Orchestration overhead of a CLI step: ``dispatch_task`` through the stdio server vs spawning the same CLI.

For each case the same executable runs with the same argv (``build_invocation``, as the runtime builds it),
the same filtered environment and workdir, once through the server (``dispatch_task``, single_worker,
``waitSeconds`` 120, timed at the client) and once spawned directly from this process (``anyio.open_process``,
new session, stdin ``/dev/null``, both pipes read to EOF). The two alternate, after a warm-up.

Cases:
* ``fake_python``: ``bench/fake_cli.py`` (codex ``exec --json`` output, answers at once), run as
  ``<this interpreter> -IS`` through a launcher pointed to by ``MCP_ORCHESTRATOR_CODEX_BIN``;
* ``fake_sh``: the same four JSONL lines from a ``/bin/sh`` script (``printf``; about 1 ms of its own);
* ``codex_cli``, ``gemini_cli``, ``claude_cli``: the real CLIs (``.tools/clis`` or PATH) answering to the
  loopback model server (``tests/support/model_server.py``).

Prints one JSON object: medians (ms), the ratio dispatch/direct (goal <= 1.10) and the overhead in ms.

    python bench/cli_overhead.py [--n-fake 30] [--n 5] [--no-real]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters

REPO = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
TOOLS_BIN = REPO / ".tools" / "clis" / "node_modules" / ".bin"
sys.path.insert(0, str(REPO))

from mcp_orchestrator.runtimes.cli import ADAPTERS, find_binary  # noqa: E402
from mcp_orchestrator.runtimes.cli.env import worker_env  # noqa: E402
from mcp_orchestrator.runtimes.cli.templates import build_invocation  # noqa: E402
from tests.support.loopback import loopback_env  # noqa: E402
from tests.support.model_server import ModelServer  # noqa: E402

AGENT = "bench"
REAL = ("codex_cli", "gemini_cli", "claude_cli")
# gemini asks a router model first unless a model is named.
MODEL_NAMES = {"gemini_cli": "gemini-2.5-flash"}
FAKE_SH = """#!/bin/sh
printf '%s\\n' '{"type":"thread.started","thread_id":"0199b000-0000-7000-8000-00000000fa4e"}' \\
  '{"type":"turn.started"}' \\
  '{"type":"item.completed","item":{"id":"item_0","type":"agent_message","text":"fake answer"}}' \\
  '{"type":"turn.completed","usage":{"input_tokens":12,"cached_input_tokens":0,"output_tokens":3}}'
"""


def summary(samples: list[float]) -> dict[str, float | int]:
    """Median, p10, p90 (ms) and count."""
    ordered = sorted(samples)

    def pick(q: float) -> float:
        return ordered[min(int(q * len(ordered)), len(ordered) - 1)]

    return {
        "median": round(statistics.median(ordered) * 1000, 2),
        "p10": round(pick(0.10) * 1000, 2),
        "p90": round(pick(0.90) * 1000, 2),
        "n": len(ordered),
    }


async def spawn_direct(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    """Run ``argv`` as the runtime does (new session, stdin /dev/null, pipes read to EOF); seconds taken."""
    started = time.perf_counter()
    proc = await anyio.open_process(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=env,
        start_new_session=True,
    )
    out = bytearray()

    async def drain(stream: Any, into: bytearray | None) -> None:
        async for chunk in stream:
            if into is not None:
                into += chunk

    async with proc, anyio.create_task_group() as tg:
        tg.start_soon(drain, proc.stdout, out)
        tg.start_soon(drain, proc.stderr, None)
        code = await proc.wait()
    elapsed = time.perf_counter() - started
    if code != 0 or (b"turn.completed" not in out and b'"result"' not in out):
        raise RuntimeError(f"{argv[0]} exited {code}: {bytes(out[-500:])!r}")
    return elapsed


class Session:
    """A client on a stdio server, with timed dispatches."""

    def __init__(self, client: Client, root: Path) -> None:
        self.client = client
        self.root = root

    async def call(self, tool: str, **args: Any) -> dict[str, Any]:
        result = await self.client.call_tool(tool, args)
        if result.is_error or result.structured_content is None:
            raise RuntimeError(f"{tool} failed: {result.content}")
        return result.structured_content

    async def spawn(self, model: str, name: str) -> None:
        args: dict[str, Any] = {"agentId": AGENT, "name": name, "model": model, "workdir": str(self.root / "work")}
        if model in MODEL_NAMES:
            args["modelName"] = MODEL_NAMES[model]
        await self.call("spawn_worker", **args)

    async def dispatch(self, worker: str, task: str) -> float:
        started = time.perf_counter()
        run = await self.call("dispatch_task", agentId=AGENT, task=task, workers=[worker], waitSeconds=120)
        elapsed = time.perf_counter() - started
        if run["status"] != "completed":
            raise RuntimeError(f"run {run['runId']} ended {run['status']}: {run.get('error')}")
        return elapsed


async def compare(
    dispatch: Callable[[str], Awaitable[float]],
    direct: Callable[[str], Awaitable[float]],
    n: int,
    warmup: int,
) -> dict[str, Any]:
    """Alternate ``dispatch`` and ``direct`` ``n`` times after ``warmup`` rounds of each."""
    via, raw = [], []
    for i in range(warmup + n):
        task = f"benchmark task {i}"
        first, second = (dispatch, direct) if i % 2 else (direct, dispatch)
        a = await first(task)
        b = await second(task)
        d, r = (a, b) if i % 2 else (b, a)
        if i >= warmup:
            via.append(d)
            raw.append(r)
    med_via, med_raw = statistics.median(via), statistics.median(raw)
    return {
        "dispatch": summary(via),
        "direct": summary(raw),
        "ratio": round(med_via / med_raw, 3),
        "overhead_ms": round((med_via - med_raw) * 1000, 2),
    }


def base_env(home: Path, root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_")}
    env.update(MCP_ORCHESTRATOR_HOME=str(home), MCP_ORCHESTRATOR_ROOTS=str(root), PYTHONUNBUFFERED="1")
    env["MCP_ORCHESTRATOR_EXECUTOR_IDLE_SECONDS"] = "10"  # the executor outlives the server: not for long
    return env


def fresh_dirs(tmp: Path, name: str) -> tuple[Path, Path]:
    home, root = tmp / name / "home", tmp / name / "root"
    home.mkdir(parents=True)
    (root / "work").mkdir(parents=True)
    return home, root.resolve()


def params(env: dict[str, str]) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable, args=["-m", "mcp_orchestrator", "serve"], env=env, cwd=str(REPO)
    )


async def bench_fake(tmp: Path, name: str, exe: Path, n: int) -> dict[str, Any]:
    """One fake executable as the codex binary: dispatch vs direct."""
    home, root = fresh_dirs(tmp, name)
    env = base_env(home, root)
    env["MCP_ORCHESTRATOR_CODEX_BIN"] = str(exe)
    wenv = worker_env("codex_cli", env)
    async with Client(params(env), read_timeout_seconds=180) as client:
        s = Session(client, root)
        await s.spawn("codex_cli", "fake")

        async def direct(task: str) -> float:
            inv = build_invocation("codex_cli", str(exe), task, role="writer")
            return await spawn_direct(inv.argv, wenv, root / "work")

        result = await compare(lambda t: s.dispatch("fake", t), direct, n, warmup=5)
    stop_executor(env)
    return result


def stop_executor(env: dict[str, str]) -> None:
    """``daemon stop`` for the session's data directory: its executor outlives the server and would still write
    there while the directory is removed."""
    subprocess.run(
        [sys.executable, "-m", "mcp_orchestrator", "daemon", "stop"],
        env=env,
        cwd=str(REPO),
        capture_output=True,
        check=False,
        timeout=60,
    )


async def bench_real(tmp: Path, n: int) -> dict[str, Any]:
    """The real CLIs against the loopback model server: dispatch vs direct."""
    home, root = fresh_dirs(tmp, "real")
    env = base_env(home, root)
    cli_home = tmp / "real" / "cli-home"
    cli_home.mkdir()
    out: dict[str, Any] = {}
    with ModelServer() as model_server:
        env.update(loopback_env(model_server.url, tmp / "real" / "cli-config"))
        env["HOME"] = str(cli_home)
        if TOOLS_BIN.is_dir():
            env["PATH"] = f"{TOOLS_BIN}{os.pathsep}{env.get('PATH', os.defpath)}"
        async with Client(params(env), read_timeout_seconds=180) as client:
            s = Session(client, root)
            for model in REAL:
                binary = find_binary(model, env)
                if binary is None:
                    out[model] = {"skipped": f"{ADAPTERS[model].binary} is not installed (scripts/install-clis)"}
                    continue
                await s.spawn(model, model.replace("_", "-"))
                wenv = worker_env(model, env)

                async def direct(
                    task: str, model: str = model, binary: str = binary, wenv: dict[str, str] = wenv
                ) -> float:
                    inv = build_invocation(model, binary, task, role="writer", model_name=MODEL_NAMES.get(model))
                    return await spawn_direct(inv.argv, wenv, root / "work")

                name = model.replace("_", "-")
                out[model] = await compare(lambda t, name=name: s.dispatch(name, t), direct, n, warmup=1)
                out[model]["binary"] = binary
    stop_executor(env)
    return out


async def main(n_fake: int, n_real: int, real: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        launcher = tmp / "fake-codex"
        launcher.write_text(f"#!{sys.executable} -IS\n" + (BENCH / "fake_cli.py").read_text())
        launcher.chmod(0o755)
        sh = tmp / "fake-codex.sh"
        sh.write_text(FAKE_SH)
        sh.chmod(0o755)
        result: dict[str, Any] = {
            "benchmark": "cli_overhead",
            "what": "dispatch_task through the stdio server vs spawning the same CLI directly (ms)",
            "goal_ratio_max": 1.10,
            "fake_python": await bench_fake(tmp, "fake-python", launcher, n_fake),
            "fake_sh": await bench_fake(tmp, "fake-sh", sh, n_fake),
        }
        if real:
            result["real_clis"] = await bench_real(tmp, n_real)
        result["cpus"] = os.cpu_count()
        result["load_average_1m"] = round(os.getloadavg()[0], 2)
        result["fsync"] = True
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n-fake", type=int, default=30, help="measured rounds per fake case (default 30)")
    parser.add_argument("--n", type=int, default=5, help="measured rounds per real CLI (default 5)")
    parser.add_argument("--no-real", action="store_true", help="skip the real CLIs")
    args = parser.parse_args()
    if shutil.which("sh") is None:
        raise SystemExit("needs /bin/sh")
    print(json.dumps(anyio.run(main, args.n_fake, args.n, not args.no_real), indent=2))
