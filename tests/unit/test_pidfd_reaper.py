"""The pidfd reaper: a CLI's exit reaches its loop with no thread per process, on any loop, in any thread."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading

import anyio
import pytest

from mcp_orchestrator.runtimes.cli.reaper import use_pidfd_reaper

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="pidfds are Linux's")


async def _exits(codes: list[int]) -> tuple[list[int], list[str]]:
    """Run one ``sh`` per code at once; their exit codes, and the waitpid threads seen while they ran."""
    seen: list[str] = []
    results: dict[int, int] = {}

    async def one(i: int, code: int) -> None:
        script = "kill -TERM $$" if code < 0 else f"sleep 0.2; exit {code}"
        async with await anyio.open_process(["sh", "-c", script], stdin=subprocess.DEVNULL) as proc:
            await anyio.sleep(0.05)
            seen.extend(t.name for t in threading.enumerate() if "waitpid" in t.name)
            results[i] = await proc.wait()

    async with anyio.create_task_group() as tg:
        for i, code in enumerate(codes):
            tg.start_soon(one, i, code)
    return [results[i] for i in range(len(codes))], seen


def test_exit_codes_arrive_without_a_thread_per_process() -> None:
    use_pidfd_reaper()
    codes, threads = anyio.run(_exits, [0, 3, 7, -signal.SIGTERM])
    assert codes == [0, 3, 7, -signal.SIGTERM]
    if sys.version_info < (3, 12):
        assert threads == []  # asyncio's ThreadedChildWatcher would show one waitpid thread per process


def test_loops_in_two_threads_share_it() -> None:
    use_pidfd_reaper()
    out: dict[str, list[int]] = {}

    def in_thread(name: str, codes: list[int]) -> None:
        out[name] = anyio.run(_exits, codes)[0]

    workers = [threading.Thread(target=in_thread, args=(n, c)) for n, c in (("a", [1, 2]), ("b", [4, 5]))]
    for t in workers:
        t.start()
    for t in workers:
        t.join(30)
    assert out == {"a": [1, 2], "b": [4, 5]}
    assert anyio.run(_exits, [9])[0] == [9]  # and a later loop on this thread too
