"""The process-tree scan reads /proc only from the leader's pid up while pids cannot have wrapped, and still
finds every member (issue 15: the scan runs on the event loop at every CLI step's end)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from mcp_orchestrator.runtimes.cli.process import ProcessTree

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _members_when(tree: ProcessTree, want: int, seconds: float = 5.0) -> dict[int, int]:
    deadline = time.monotonic() + seconds
    found = tree.scan(deep=True)
    while len(found) < want and time.monotonic() < deadline:
        time.sleep(0.02)  # polling /proc for the children to appear, bounded by the deadline
        found = tree.scan(deep=True)
    return found


def test_a_fresh_tree_scans_from_its_leader_and_an_old_one_scans_everything() -> None:
    proc = subprocess.Popen(["sh", "-c", "sleep 30 & sleep 30"], start_new_session=True)
    try:
        tree = ProcessTree(proc.pid, "scan-floor")
        assert tree._pid_floor() == proc.pid  # just spawned: no wrap can have happened
        fresh = _members_when(tree, 3)
        assert proc.pid in fresh and len(fresh) == 3  # the shell and both sleeps, all from the leader up
        tree.spawned -= 10**7  # as if it had run long enough for the pids to go round
        assert tree._pid_floor() == 0
        assert set(tree.scan(deep=True)) == set(fresh)  # the full scan finds the same members
    finally:
        tree.signal(signal.SIGKILL)
        proc.wait(timeout=10)
