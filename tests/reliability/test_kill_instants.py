"""Issue #15: the hot path killed at random instants (100 trials) loses nothing a caller was told.

A fork server (``support/kill_driver.py``) runs the orchestrator's hot path in a child process: mock runs
dispatched by six concurrent callers, fsync on. The test kills the child with SIGKILL at a random instant,
from its start-up (when it is still recovering what the previous child left) to well into its runs. Ten
trials share a data directory, so each child recovers the previous one's crash. After each chain of ten:

* every run a caller saw accepted is stored and readable, and every terminal status a caller was told is
  the stored status;
* no document is corrupt: the only thing a check may move to quarantine is a temporary file that a killed
  writer had not yet renamed into place;
* once one more orchestrator has recovered the data directory, every run has ended: completed with its
  output, or failed as ``interrupted`` (it was running when its process died; a run still queued is resumed
  and completes); no worker is left busy.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from support.kill_driver import AGENT, WORKERS
from support.servers import REPO

from mcp_orchestrator.config import Settings
from mcp_orchestrator.contracts import TERMINAL_RUN_STATUSES
from mcp_orchestrator.service import Orchestrator
from mcp_orchestrator.store import JsonRunStore, RunFilter

DRIVER = REPO / "tests" / "support" / "kill_driver.py"
TRIALS, CHAIN = 100, 10
UNFINISHED = ("accepted", "running")
KILL_AFTER = (0.0, 0.6)  # seconds after the fork: start-up recovery takes the first ~0.05-0.2 s


class ForkServer:
    """The driver process: ``go`` forks a child running the hot path; the caller kills it."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(DRIVER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )

    def line(self) -> list[str]:
        assert self.proc.stdout is not None
        got = self.proc.stdout.readline()
        assert got, f"the fork server died (exit {self.proc.poll()})"
        return got.split()

    def go(self, home: Path, root: Path, events: Path) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"go {home} {root} {events}\n")
        word, pid = self.line()
        assert word == "pid"
        return int(pid)

    def reaped(self, pid: int) -> int:
        word, who, status = self.line()
        assert (word, int(who)) == ("exited", pid)
        return int(status)

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("quit\n")
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


@pytest.fixture
def fork_server() -> Iterator[ForkServer]:
    server = ForkServer()
    try:
        yield server
    finally:
        if server.proc.poll() is None:
            server.close()


def told(events: Path) -> tuple[set[str], dict[str, str]]:
    """What callers were told before the kill: the runs accepted, and the terminal statuses answered."""
    accepted: set[str] = set()
    terminal: dict[str, str] = {}
    for line in events.read_text().splitlines():
        words = line.split()
        if words[0] == "accepted":
            accepted.add(words[1])
        elif words[0] == "terminal":
            terminal[words[1]] = words[2]
    return accepted, terminal


def assert_nothing_lost(store: JsonRunStore, accepted: set[str], terminal: dict[str, str]) -> None:
    for run_id in accepted:
        store.get_run(run_id)  # raises NotFound if an accepted run was lost, CorruptDocument if torn
    for run_id, status in terminal.items():
        assert store.get_run(run_id).status == status, f"{run_id}: told {status}"
    moved = [Path(path).name for path, _ in store.check()]
    assert all(".tmp-" in name for name in moved), f"documents quarantined: {moved}"
    for path in store.home.rglob("*.json"):
        if "quarantine" not in path.relative_to(store.home).parts:
            json.loads(path.read_bytes())


async def settle(home: Path, root: Path) -> None:
    """One more orchestrator recovers ``home`` and serves until no run is left unfinished."""
    orch = Orchestrator(Settings(home=home, roots=(root,), fsync=True))

    async def unfinished() -> bool:
        return any([(await orch.io(orch.store.list_runs, RunFilter(status=s), 1, None))[0] for s in UNFINISHED])

    async with orch.running():
        with anyio.fail_after(120):
            while True:
                if not await unfinished():
                    return
                await anyio.sleep(0.05)


async def spawn_workers(home: Path, root: Path) -> None:
    orch = Orchestrator(Settings(home=home, roots=(root,), fsync=True))
    async with orch.running(take_over=False):
        for name in WORKERS:
            await orch.spawn_worker(AGENT, name, "mock", workdir=str(root))


@pytest.mark.slow
@pytest.mark.anyio
async def test_the_hot_path_killed_at_random_instants_loses_nothing_a_caller_was_told(
    fork_server: ForkServer, tmp_path: Path
) -> None:
    seed = int(os.environ.get("KILL_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    totals = {"accepted": 0, "terminal": 0, "interrupted": 0, "before_ready": 0}
    for chain in range(TRIALS // CHAIN):
        home, root = tmp_path / f"home-{chain}", tmp_path / f"root-{chain}"
        home.mkdir()
        root.mkdir()
        await spawn_workers(home, root)
        accepted: set[str] = set()
        terminal: dict[str, str] = {}
        for trial in range(CHAIN):
            events = tmp_path / f"events-{chain}-{trial}"
            events.touch()
            pid = fork_server.go(home, root, events)
            await anyio.sleep(rng.uniform(*KILL_AFTER))  # the random instant is the point, not a wait for an event
            os.kill(pid, signal.SIGKILL)
            status = fork_server.reaped(pid)
            assert os.WIFSIGNALED(status), f"seed {seed}: the child ended by itself ({status}): {events.read_text()}"
            got_accepted, got_terminal = told(events)
            totals["before_ready"] += "ready" not in events.read_text()
            accepted |= got_accepted
            terminal.update(got_terminal)
        store = JsonRunStore(home, fsync=False)
        assert_nothing_lost(store, accepted, terminal)
        queued = {run_id for run_id in accepted if store.get_run(run_id).status == "accepted"}
        await settle(home, root)
        for run_id in accepted:
            run = store.get_run(run_id)
            assert run.status in TERMINAL_RUN_STATUSES, f"seed {seed}: {run_id} still {run.status}"
            if run.status == "completed":
                assert run.steps and run.steps[-1].output.startswith("mock answer"), run
            else:
                assert run_id not in queued, f"seed {seed}: {run_id} was queued, so it runs once: {run.error}"
                assert run.status == "failed" and run.error is not None, run
                assert run.error.failure_class == "interrupted", f"seed {seed}: {run_id}: {run.error}"
                totals["interrupted"] += 1
        for run_id, status in terminal.items():
            assert store.get_run(run_id).status == status
        busy = [w.name for w in store.list_workers() if w.current_run_id is not None or w.status == "busy"]
        assert busy == [], f"seed {seed}: workers left busy after recovery: {busy}"
        totals["accepted"] += len(accepted)
        totals["terminal"] += len(terminal)
    # The trials reached the hot path: runs were accepted and finished, and some kills landed mid-run.
    assert totals["accepted"] >= 200 and totals["terminal"] >= 100 and totals["interrupted"] >= 1, totals
    print(f"kill trials: seed {seed}, {totals}")
