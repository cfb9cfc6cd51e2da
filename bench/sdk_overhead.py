"""Orchestration overhead of an SDK step: ``dispatch_task`` (openai_sdk) through the stdio server vs a direct call.

Both sides talk to the same loopback model server (``tests/support/model_server.py``, a subprocess, default
answer): the server runs one ``openai_sdk`` step (``dispatch_task`` with ``runtimeMode: openai_sdk`` and
``waitSeconds`` 120 on a ``codex_cli`` worker, timed at the client); the baseline is
``AsyncOpenAI(...).responses.create(stream=True)`` from this process, read to ``response.completed`` (one
client reused, as a caller would; the loopback server closes each connection, so no keep-alive favours it).
The two alternate, after a warm-up, and the ratio of medians is reported (goal <= 1.05).

Where the difference goes (same run, same model server, interleaved with the main pair):

* ``layers``: the same step one layer at a time, in this process - the runtime alone
  (``OpenAISdkRuntime.run_step``: fresh HTTP client + SDK client per step, wire capture, spooled output), the
  service alone (``Orchestrator.dispatch`` + ``wait_run``, store writes included, no MCP), and a trivial MCP
  tool round trip (``list_workers``) on the stdio server;
* ``server_side``: from each dispatched run's own timestamps - accept to start, the step, the run's end,
  and the client's time outside the run.

``--model-delay S`` makes the model server wait S seconds before each answer, to see the ratio against a
model that takes time to answer. Also reports whether the server loads a vendor SDK when it serves no SDK
step (a fresh server under ``python -X importtime``), and (unless ``--no-startup``) runs ``bench/startup.py``
with both SDKs installed. Prints one JSON object.

    python bench/sdk_overhead.py [--n 50] [--warmup 5] [--model-delay 0] [--no-layers] [--no-startup]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

REPO = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(REPO))

import openai  # noqa: E402
from _common import server_env, summary  # noqa: E402

from mcp_orchestrator.config import Settings  # noqa: E402
from mcp_orchestrator.contracts import WorkerRecord, utcnow  # noqa: E402
from mcp_orchestrator.runtimes.base import OutputSink, StepContext  # noqa: E402
from mcp_orchestrator.runtimes.openai_sdk import OpenAISdkRuntime  # noqa: E402
from mcp_orchestrator.service import Orchestrator  # noqa: E402

AGENT = "bench"
MODEL = "gpt-5.5"
KEY = "sk-bench-loopback"
GOAL = 1.05


def start_model_server(delay: float) -> tuple[subprocess.Popen[str], str]:
    """``python -m tests.support.model_server`` on a free port; returns the process and its OpenAI base URL."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.model_server",
            "--port",
            "0",
            "--answer",
            "benchmark answer",
            "--delay",
            str(delay),
        ],
        cwd=str(REPO),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # "model server listening on http://127.0.0.1:N (openai base http://.../v1)"
    if "openai base" not in line:
        proc.kill()
        raise RuntimeError(f"the model server did not start: {line!r}")
    return proc, line.rsplit("openai base ", 1)[1].rstrip(")\n")


def ms_between(a: str | None, b: str | None) -> float:
    """Milliseconds from ISO timestamp ``a`` to ``b``."""
    if a is None or b is None:
        return float("nan")
    return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds() * 1000


class Bench:
    """The stdio server session, the direct client and the in-process layers."""

    def __init__(self, client: Client, base_url: str, tmp: Path) -> None:
        self.client = client
        self.base_url = base_url
        self.tmp = tmp
        self.direct_client = openai.AsyncOpenAI(base_url=base_url, api_key=KEY, max_retries=0)
        self.server_side: dict[str, list[float]] = {"accept_to_start": [], "step": [], "run": [], "outside_run": []}
        self.runtime = OpenAISdkRuntime(environ={"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": base_url})
        self.orch: Orchestrator | None = None
        self.counter = 0

    async def call(self, tool: str, **args: Any) -> dict[str, Any]:
        result = await self.client.call_tool(tool, args)
        structured: dict[str, Any] | None = result.structured_content
        if result.is_error or structured is None:
            raise RuntimeError(f"{tool} failed: {result.content}")
        return structured

    # ---- the measured pair --------------------------------------------------------------------------------

    async def dispatch(self, task: str, record: bool) -> float:
        started = time.perf_counter()
        run = await self.call(
            "dispatch_task",
            agentId=AGENT,
            task=task,
            workers=["sdk"],
            waitSeconds=120,
            runtimeMode="openai_sdk",
            detail="full",
        )
        elapsed = time.perf_counter() - started
        if run["status"] != "completed" or run["steps"][0]["runtimeMode"] != "openai_sdk":
            raise RuntimeError(f"run {run['runId']} ended {run['status']}: {run.get('error')}")
        if record:
            step = run["steps"][0]
            side = self.server_side
            side["accept_to_start"].append(ms_between(run["createdAt"], run["startedAt"]))
            side["step"].append(ms_between(step["startedAt"], step["endedAt"]))
            side["run"].append(ms_between(run["createdAt"], run["endedAt"]))
            side["outside_run"].append(elapsed * 1000 - side["run"][-1])
        return elapsed

    async def direct(self, task: str) -> float:
        started = time.perf_counter()
        stream = await self.direct_client.responses.create(model=MODEL, input=task, stream=True)
        text, done = [], False
        try:
            async for event in stream:
                if event.type == "response.output_text.delta":
                    text.append(event.delta)
                elif event.type == "response.completed":
                    done = True
                    break
        finally:
            await stream.close()
        elapsed = time.perf_counter() - started
        if not done or not "".join(text):
            raise RuntimeError("the direct call did not complete")
        return elapsed

    # ---- one layer at a time ------------------------------------------------------------------------------

    async def runtime_only(self, task: str) -> float:
        self.counter += 1
        workdir = self.tmp / "layers" / "work"
        workdir.mkdir(parents=True, exist_ok=True)
        worker = WorkerRecord(
            name="layer",
            model="codex_cli",
            runtime_mode="openai_sdk",
            workdir=str(workdir),
            owner_agent_id=AGENT,
            created_at=utcnow(),
        )

        async def report(_: str) -> None:
            pass

        ctx = StepContext(
            run_id=f"run_{self.counter:020x}",
            step_index=0,
            prompt=task,
            worker=worker,
            workdir=workdir,
            output=OutputSink(self.tmp / "layers" / "out" / f"{self.counter}.log"),
            report=report,
        )
        started = time.perf_counter()
        try:
            outcome = await self.runtime.run_step(ctx)
        finally:
            ctx.output.close()
        elapsed = time.perf_counter() - started
        if not outcome.text:
            raise RuntimeError("the runtime returned no text")
        return elapsed

    async def service_only(self, task: str) -> float:
        assert self.orch is not None
        started = time.perf_counter()
        run = await self.orch.dispatch(AGENT, task, workers=["sdk"], runtime_mode="openai_sdk")
        run = await self.orch.wait_run(run.run_id, 120)
        elapsed = time.perf_counter() - started
        if run.status != "completed":
            raise RuntimeError(f"in-process run ended {run.status}: {run.error}")
        return elapsed

    async def mcp_trivial(self, _: str) -> float:
        started = time.perf_counter()
        await self.call("list_workers")
        return time.perf_counter() - started


async def interleave(
    cases: dict[str, Callable[[str, bool], Awaitable[float]]], n: int, warmup: int
) -> dict[str, list[float]]:
    """Every case once per round, in a rotating order; ``warmup`` unrecorded rounds first."""
    names = list(cases)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for i in range(warmup + n):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            seconds = await cases[name](f"benchmark task {i} ({name})", i >= warmup)
            if i >= warmup:
                samples[name].append(seconds)
    return samples


async def import_check(env: dict[str, str], root: Path, tmp: Path) -> dict[str, Any]:
    """Which vendor SDK modules the server loads: on import, and while serving work that needs no SDK.

    A fresh server runs under ``python -X importtime`` (every import it makes goes to stderr) and serves
    ``tools/list``, ``runtimes``, ``list_workers`` and a mock dispatch.
    """
    log = tmp / "importtime.log"
    params = StdioServerParameters(
        command=sys.executable, args=["-X", "importtime", "-m", "mcp_orchestrator", "serve"], env=env, cwd=str(REPO)
    )
    started = time.perf_counter()
    with log.open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog), read_timeout_seconds=60) as client:
            await client.list_tools()
            first_answer = time.perf_counter() - started
            for tool, args in (
                ("runtimes", {}),
                ("list_workers", {}),
                ("spawn_worker", {"agentId": AGENT, "name": "m", "model": "mock", "workdir": str(root / "work")}),
                ("dispatch_task", {"agentId": AGENT, "task": "hello", "workers": ["m"], "waitSeconds": 30}),
            ):
                result = await client.call_tool(tool, args)
                if result.is_error:
                    raise RuntimeError(f"{tool} failed: {result.content}")
    modules = [line.rsplit("|", 1)[1].strip() for line in log.read_text().splitlines() if line.count("|") == 2]
    return {
        "openai_imported": any(m == "openai" or m.startswith("openai.") for m in modules),
        "google_genai_imported": any(m.startswith("google.genai") for m in modules),
        "modules_imported": len(modules),
        "spawn_to_first_answer_ms_under_importtime": round(first_answer * 1000, 1),
        "served": "tools/list, runtimes, list_workers, spawn_worker + dispatch_task (mock)",
    }


def startup_ratio() -> dict[str, Any]:
    """``bench/startup.py`` as is (both SDKs are installed: they are package dependencies)."""
    out = subprocess.run(
        [sys.executable, str(BENCH / "startup.py")], cwd=str(REPO), capture_output=True, text=True, check=True
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return {k: result[k] for k in ("ratio", "goal_ratio_max", "product", "baseline")}


async def main(n: int, warmup: int, layers: bool, delay: float) -> dict[str, Any]:
    model_proc, base_url = start_model_server(delay)
    try:
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            home, root = tmp / "home", tmp / "root"
            home.mkdir()
            (root / "work").mkdir(parents=True)
            env = {k: v for k, v in server_env(home, root.resolve()).items() if not k.startswith("OPENAI_")}
            env.update(OPENAI_API_KEY=KEY, OPENAI_BASE_URL=base_url)
            params = StdioServerParameters(
                command=sys.executable, args=["-m", "mcp_orchestrator", "serve"], env=env, cwd=str(REPO)
            )
            async with Client(params, read_timeout_seconds=180) as client:
                bench = Bench(client, base_url, tmp)
                await bench.call(
                    "spawn_worker",
                    agentId=AGENT,
                    name="sdk",
                    model="codex_cli",
                    runtimeMode="openai_sdk",
                    workdir=str(root / "work"),
                )
                cases: dict[str, Callable[[str, bool], Awaitable[float]]] = {
                    "dispatch": bench.dispatch,
                    "direct": lambda task, _: bench.direct(task),
                }
                if not layers:
                    samples = await interleave(cases, n, warmup)
                else:
                    # The in-process service gets its own data directory and reads the key from this process.
                    os.environ.update(OPENAI_API_KEY=KEY, OPENAI_BASE_URL=base_url)
                    lhome = tmp / "layers" / "home"
                    lhome.mkdir(parents=True)
                    orch = Orchestrator(Settings(home=lhome, roots=(root.resolve(),)))
                    async with orch.running():
                        bench.orch = orch
                        await orch.spawn_worker(
                            AGENT, "sdk", "codex_cli", runtime_mode="openai_sdk", workdir=str(root / "work")
                        )
                        cases["runtime_in_process"] = lambda task, _: bench.runtime_only(task)
                        cases["service_in_process"] = lambda task, _: bench.service_only(task)
                        cases["mcp_list_workers"] = lambda task, _: bench.mcp_trivial(task)
                        samples = await interleave(cases, n, warmup)
                await bench.direct_client.close()
                server_side = {k: round(statistics.median(v), 2) for k, v in bench.server_side.items()}
    finally:
        model_proc.terminate()
        model_proc.wait(10)

    med = {name: statistics.median(s) * 1000 for name, s in samples.items()}
    result: dict[str, Any] = {
        "benchmark": "sdk_overhead",
        "what": "one openai_sdk step: dispatch_task over stdio vs a direct AsyncOpenAI streamed call (ms)",
        "dispatch": summary(samples["dispatch"]),
        "direct": summary(samples["direct"]),
        "ratio": round(med["dispatch"] / med["direct"], 3),
        "overhead_ms": round(med["dispatch"] - med["direct"], 2),
        "goal_ratio_max": GOAL,
        "model_delay_seconds": delay,
        "server_side_medians_ms": server_side,
    }
    if layers:
        result["layers"] = {name: summary(samples[name]) for name in samples if name not in ("dispatch", "direct")}
        result["layer_overheads_ms"] = {
            "runtime_over_direct": round(med["runtime_in_process"] - med["direct"], 2),
            "service_over_runtime": round(med["service_in_process"] - med["runtime_in_process"], 2),
            "mcp_stdio_over_service": round(med["dispatch"] - med["service_in_process"], 2),
            "mcp_trivial_round_trip": round(med["mcp_list_workers"], 2),
        }
    with tempfile.TemporaryDirectory() as tmp_name:
        home, root = Path(tmp_name) / "home", Path(tmp_name) / "root"
        home.mkdir()
        (root / "work").mkdir(parents=True)
        env = {**server_env(home, root.resolve()), "OPENAI_API_KEY": KEY, "GEMINI_API_KEY": KEY}
        result["imports"] = await import_check(env, root.resolve(), Path(tmp_name))
    result["cpus"] = os.cpu_count()
    result["load_average_1m"] = round(os.getloadavg()[0], 2)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=50, help="measured rounds (default 50)")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured rounds first (default 5)")
    parser.add_argument("--no-layers", action="store_true", help="only the dispatch/direct pair")
    parser.add_argument("--no-startup", action="store_true", help="skip bench/startup.py")
    parser.add_argument(
        "--model-delay", type=float, default=0.0, help="seconds the model server waits before each answer (default 0)"
    )
    args = parser.parse_args()
    out = anyio.run(main, args.n, args.warmup, not args.no_layers, args.model_delay)
    if not args.no_startup:
        out["startup"] = startup_ratio()
    print(json.dumps(out, indent=2))
