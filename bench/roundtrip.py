"""Tool round trips over stdio with 10,000 stored runs: get_run and list_worker_runs vs list_workers.

The product server has no trivial tool, so the baseline is `list_workers` with one stored worker
(one small document read: the transport plus a minimal tool call). Runs are stored directly through
JsonRunStore (no fsync) before the server starts; measuring begins once the server's start-up work
(recovery and the background store check) is over. The three calls are interleaved. Prints one JSON
object.

    python bench/roundtrip.py [--runs 10000] [--calls 300]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from _common import children_running, fill_store, make_run, product_params, summary, wait_until_idle
from mcp import Client


async def main(stored: int, calls: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        home, root = Path(tmp) / "home", Path(tmp) / "root"
        home.mkdir()
        root.mkdir()
        started = time.perf_counter()
        fill_store(home, stored, root=root)
        fill_seconds = time.perf_counter() - started
        ids = [make_run(i).run_id for i in range(stored)]
        rng = random.Random(7)

        async with Client(product_params(home, root)) as client:
            (pid,) = children_running("mcp_orchestrator")
            idle_wait = await anyio.to_thread.run_sync(wait_until_idle, pid)

            async def timed(tool: str, args: dict[str, Any]) -> float:
                start = time.perf_counter()
                result = await client.call_tool(tool, args)
                elapsed = time.perf_counter() - start
                assert not result.is_error, result.content
                return elapsed

            cases: dict[str, Callable[[], Awaitable[float]]] = {
                "list_workers": lambda: timed("list_workers", {}),
                "get_run": lambda: timed("get_run", {"runId": rng.choice(ids)}),
                "list_worker_runs": lambda: timed("list_worker_runs", {"limit": 50}),
                "list_worker_runs_by_worker": lambda: timed("list_worker_runs", {"limit": 50, "workerName": "bench-w"}),
                "list_worker_runs_page_3": lambda: timed("list_worker_runs", {"limit": 50, "cursor": ids[-101]}),
            }
            samples: dict[str, list[float]] = {name: [] for name in cases}
            for case in cases.values():  # warm-up: first reads fill the listing and summary caches
                for _ in range(5):
                    await case()
            for _ in range(calls):
                for name, case in cases.items():
                    samples[name].append(await case())
            # Informational: a status filter that matches nothing has no index to use and reads the
            # summary of every stored run (cached, but still one stat per run), so few samples.
            scan = [await timed("list_worker_runs", {"limit": 50, "status": "running"}) for _ in range(15)]

    base = statistics.median(samples["list_workers"])
    return {
        "benchmark": "roundtrip",
        "what": f"tool round trip over stdio with {stored} stored runs (ms)",
        "stored_runs": stored,
        "fill_seconds": round(fill_seconds, 2),
        "server_startup_work_seconds": round(idle_wait, 2),
        "baseline_is": "list_workers with one stored worker (the product server has no trivial tool)",
        "baseline": summary(samples["list_workers"]),
        **{name: summary(s) for name, s in samples.items() if name != "list_workers"},
        "ratios": {
            name: round(statistics.median(s) / base, 3) for name, s in samples.items() if name != "list_workers"
        },
        "goal_ratio_max": 2.0,
        "goal_applies_to": ["get_run", "list_worker_runs"],
        "informational": {
            "list_worker_runs_status_running_none_match": summary(scan),
            "ratio": round(statistics.median(scan) / base, 3),
        },
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    print(json.dumps(anyio.run(main, args.runs, args.calls)))
