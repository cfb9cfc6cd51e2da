"""Store write cost against store size: create_run + update_run at 10,000 stored runs vs at 100.

Each sample creates one run and updates it once (a step appended), the two writes every dispatch
starts with. fsync is off by default so the figure shows how the store scales with the number of
stored runs rather than the disk's flush latency (`--fsync` measures with it). Prints one JSON object.

    python bench/store_write.py [--small 100] [--large 10000] [--samples 400] [--fsync] [--dir /dev/shm]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from _common import fill_store, make_run, summary

from mcp_orchestrator.contracts import RunRecord, Step
from mcp_orchestrator.store import JsonRunStore


def _append_step(run: RunRecord) -> RunRecord:
    step = Step(index=len(run.steps), worker_name="bench-w", role="writer", runtime_mode="mock", status="running")
    return run.model_copy(update={"status": "running", "steps": [*run.steps, step]})


def main(small: int, large: int, samples: int, fsync: bool, where: str | None) -> dict[str, object]:
    with tempfile.TemporaryDirectory(dir=where) as tmp:
        fill: dict[str, float] = {}
        stores: dict[int, JsonRunStore] = {}
        for size in (small, large):
            started = time.perf_counter()
            fill_store(Path(tmp) / str(size), size)
            fill[str(size)] = round(time.perf_counter() - started, 2)
            stores[size] = JsonRunStore(Path(tmp) / str(size), fsync=fsync)
        times: dict[int, list[float]] = {small: [], large: []}
        for i in range(samples + 20):  # interleaved, so machine load hits both sizes alike
            for size, store in stores.items():
                run = make_run(size + 1 + i)
                start = time.perf_counter()
                store.create_run(run)
                store.update_run(run.run_id, _append_step)
                if i >= 20:  # the first writes warm caches
                    times[size].append(time.perf_counter() - start)
    return {
        "benchmark": "store_write",
        "what": "JsonRunStore create_run + update_run, one sample each (ms)",
        "fsync": fsync,
        "filesystem_dir": str(Path(tmp).parent),
        f"at_{small}": summary(times[small]),
        f"at_{large}": summary(times[large]),
        "fill_seconds": fill,
        "ratio": round(statistics.median(times[large]) / statistics.median(times[small]), 3),
        "goal_ratio_max": 1.5,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--large", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=400)
    parser.add_argument("--fsync", action="store_true")
    parser.add_argument("--dir", help="where the stores go (default: the temp dir; /dev/shm takes the disk out)")
    args = parser.parse_args()
    print(json.dumps(main(args.small, args.large, args.samples, args.fsync, args.dir)))
