"""What authentication costs: a `get_run` round trip over Streamable HTTP with a bearer token vs without.

Two servers on the same data directory, started the same way, one on 127.0.0.1 without auth and one with
a tokens file (auth on). One mock run is dispatched, then `get_run` calls alternate between the two servers
(interleaved, so machine load hits both alike). Prints one JSON object: medians and the ratio (goal <= 1.05).

    python bench/auth_overhead.py [--calls 300]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import httpx2
from _common import REPO, server_env, summary
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

sys.path.insert(0, str(REPO / "tests"))
from support.servers import ServerProcess

from mcp_orchestrator.server.auth.tokens import TokenStore


async def main(calls: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        home, root = Path(tmp) / "home", Path(tmp) / "root"
        home.mkdir()
        root.mkdir()
        env = server_env(home, root)
        token, _ = TokenStore(Path(tmp) / "tokens.json").add(["bench"], ["runs:read", "runs:write"])
        plain = ServerProcess(env, Path(tmp) / "plain.log", extra=("--no-auth",))
        authed = ServerProcess(env, Path(tmp) / "authed.log", extra=("--tokens", str(Path(tmp) / "tokens.json")))
        try:
            await plain.ready()
            await authed.ready()
            async with (
                httpx2.AsyncClient(timeout=30) as h_plain,
                httpx2.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {token}"}) as h_auth,
                Client(streamable_http_client(plain.url, http_client=h_plain)) as c_plain,
                Client(streamable_http_client(authed.url, http_client=h_auth)) as c_auth,
            ):
                await c_auth.call_tool("spawn_worker", {"agentId": "bench", "name": "w", "model": "mock"})
                run = await c_auth.call_tool("dispatch_task", {"agentId": "bench", "task": "t", "workers": ["w"]})
                run_id = (run.structured_content or {})["runId"]

                async def timed(client: Client) -> float:
                    start = time.perf_counter()
                    result = await client.call_tool("get_run", {"runId": run_id})
                    elapsed = time.perf_counter() - start
                    assert not result.is_error, result.content
                    return elapsed

                samples: dict[str, list[float]] = {"off": [], "on": []}
                for _ in range(10):
                    await timed(c_plain)
                    await timed(c_auth)
                for _ in range(calls):
                    samples["off"].append(await timed(c_plain))
                    samples["on"].append(await timed(c_auth))
        finally:
            plain.stop()
            authed.stop()
    off, on = summary(samples["off"]), summary(samples["on"])
    out: dict[str, Any] = {
        "benchmark": "auth_overhead",
        "transport": "streamable-http",
        "calls": calls,
        "get_run_auth_off_ms": off,
        "get_run_auth_on_ms": on,
        "ratio_on_over_off": round(float(on["median"]) / float(off["median"]), 3),
        "goal": "<= 1.05",
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=300)
    print(json.dumps(anyio.run(main, parser.parse_args().calls), indent=2))
