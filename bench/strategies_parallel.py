"""parallel_dual_write_review: is the parallel run as fast as its slowest steps run alone?

Mock workers with scripted delays (writer A 1.0 s, writer B 1.2 s, reviewer 0.5 s) over stdio on the
product server. Each round runs every step alone as a ``single_worker`` run, then the whole
``parallel_dual_write_review`` run, in the same server. The baseline is the slowest writer alone plus
the reviewer alone (what perfect parallelism costs); ``ratio`` is the parallel run's wall time over that
baseline (goal <= 1.15). ``ratio_writer_phase`` compares the writers' phase of the run (run start to the
review's start) with the slowest writer alone. Run once with the workdir a plain directory (writers
share it) and once a git repository (each writer in its own worktree, committed and removed). Prints
one JSON object.

    python bench/strategies_parallel.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
from _common import product_params
from mcp import Client

AGENT = "bench"
DELAYS = {"wa": 1.0, "wb": 1.2, "rv": 0.5}
GOAL = 1.15


def _seconds(run: dict[str, Any], start: str = "startedAt", end: str = "endedAt") -> float:
    return (datetime.fromisoformat(run[end]) - datetime.fromisoformat(run[start])).total_seconds()


async def _call(client: Client, tool: str, **args: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, args)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


async def _run(client: Client, task: str, strategy: str, workers: list[str]) -> dict[str, Any]:
    run = await _call(
        client, "dispatch_task", agentId=AGENT, task=task, strategy=strategy, workers=workers, waitSeconds=60
    )
    assert run["status"] == "completed", run
    return run


def _git_repo(path: Path) -> None:
    ident = ["-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    (path / "shared.txt").write_text("base\n")
    for args in (["init", "--quiet"], ["add", "--all"], ["commit", "--quiet", "-m", "base"]):
        subprocess.run(["git", "-C", str(path), *ident, *args], check=True, capture_output=True)


async def _rounds(client: Client, rounds: int, tag: str) -> dict[str, Any]:
    ratios, phases, walls, baselines, critical = [], [], [], [], []
    for i in range(rounds):
        alone = {}
        for name, delay in DELAYS.items():
            run = await _run(client, f"{tag} {i} alone [[mock delay={delay}]]", "single_worker", [name])
            alone[name] = _seconds(run)
        task = f"{tag} {i} [[mock@wa delay={DELAYS['wa']}]] [[mock@wb delay={DELAYS['wb']}]] " + (
            f"[[mock@reviewer delay={DELAYS['rv']}]]"
        )
        run = await _run(client, task, "parallel_dual_write_review", ["wa", "wb", "rv"])
        wall = _seconds(run)
        baseline = max(alone["wa"], alone["wb"]) + alone["rv"]
        review = run["steps"][-1]
        writer_phase = (
            datetime.fromisoformat(review["startedAt"]) - datetime.fromisoformat(run["startedAt"])
        ).total_seconds()
        ms = [s["durationMs"] / 1000 for s in run["steps"]]
        walls.append(wall)
        baselines.append(baseline)
        ratios.append(wall / baseline)
        phases.append(writer_phase / max(alone["wa"], alone["wb"]))
        critical.append(wall / (max(ms[:2]) + ms[2]))
    return {
        "parallel_wall_s": round(statistics.median(walls), 3),
        "baseline_s": round(statistics.median(baselines), 3),
        "ratio": round(statistics.median(ratios), 3),
        "ratio_writer_phase": round(statistics.median(phases), 3),
        "ratio_vs_own_steps": round(statistics.median(critical), 3),
        "ratios": [round(r, 3) for r in ratios],
    }


async def main(rounds: int) -> dict[str, Any]:
    out: dict[str, Any] = {"bench": "strategies_parallel", "delays_s": DELAYS, "goal_ratio": GOAL, "rounds": rounds}
    for variant in ("shared_workdir", "git_worktrees"):
        with tempfile.TemporaryDirectory() as tmp:
            home, root = Path(tmp) / "home", Path(tmp) / "root"
            home.mkdir()
            root.mkdir()
            if variant == "git_worktrees":
                _git_repo(root)
            async with Client(product_params(home, root)) as client:
                for name, model in (("wa", "mock"), ("wb", "codex_cli")):
                    await _call(client, "spawn_worker", agentId=AGENT, name=name, model=model, runtimeMode="mock")
                await _call(client, "spawn_worker", agentId=AGENT, name="rv", model="mock", role="reviewer")
                await _run(client, "warm-up", "single_worker", ["wa"])
                out[variant] = await _rounds(client, rounds, variant)
    out["ok"] = all(out[v]["ratio"] <= GOAL for v in ("shared_workdir", "git_worktrees"))
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3)
    print(json.dumps(anyio.run(main, parser.parse_args().rounds), indent=1))
