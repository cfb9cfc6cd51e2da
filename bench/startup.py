"""Spawn-to-first-answer: `python -m mcp_orchestrator serve` over stdio vs a bare MCPServer started the same way.

Measures, for each server, the wall time from spawning the process to the answer of the first
`tools/list` (the client's connection handshake included, identical for both). The two kinds are
interleaved so machine load hits both alike. Prints one JSON object.

    python bench/startup.py [--runs 9]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import anyio
from _common import bare_params, first_answer, product_params, summary


async def main(runs: int) -> dict[str, object]:
    product: list[float] = []
    bare: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        home, root = Path(tmp) / "home", Path(tmp) / "root"
        home.mkdir()
        root.mkdir()
        await first_answer(bare_params())  # warm the OS file cache for both before measuring
        await first_answer(product_params(home, root))
        for _ in range(runs):
            bare.append(await first_answer(bare_params()))
            product.append(await first_answer(product_params(home, root)))
    ratio = statistics.median(product) / statistics.median(bare)
    return {
        "benchmark": "startup",
        "what": "spawn to first tools/list answer over stdio (ms)",
        "product": summary(product),
        "baseline": summary(bare),
        "baseline_is": "bench/_bare_server.py: MCPServer with one trivial tool, `python <script>`",
        "ratio": round(ratio, 3),
        "goal_ratio_max": 1.15,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    print(json.dumps(anyio.run(main, args.runs)))
