"""Spawning a CLI and ending its whole process tree.

The CLI runs in a new session (``start_new_session=True``), so it leads its own process group.
Its descendants are found in ``/proc`` by parent chain, session or group, and - for those that
start their own session and are then orphaned (gemini runs shell commands detached) - by a
per-step tag in their environment (``STEP_TAG_VAR``). Ending a step - on cancellation, a
timeout, or leftovers after a normal exit - sends SIGTERM to the group and to every member,
waits up to a grace period, then SIGKILLs what is left.

Output is read as it streams: every chunk goes to the step's ``OutputSink`` (bounded memory,
spooled to a capped file) and complete lines go to a callback; a line longer than
``MAX_LINE_BYTES`` is dropped rather than buffered. Only a bounded tail of stderr is kept.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.abc

from mcp_orchestrator.errors import RunFailure
from mcp_orchestrator.runtimes.base import OutputSink
from mcp_orchestrator.runtimes.cli.reaper import use_pidfd_reaper

__all__ = ["MAX_LINE_BYTES", "STEP_TAG_VAR", "ProcessExit", "ProcessTree", "run_process"]

MAX_LINE_BYTES = 4 << 20
STEP_TAG_VAR = "MCP_ORCHESTRATOR_STEP_TAG"
_STDERR_TAIL = 64 << 10
_STDOUT_TAIL = 256 << 10
_PROC = Path("/proc")
_WATCH_INTERVAL = 0.5
_DRAIN_SECONDS = 2.0
_FORKS_PER_SECOND = 10_000  # far above what a machine sustains: how fast pids could wrap around at most


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_bytes())
    except (OSError, ValueError):
        return None


_PID_MAX = _read_int(_PROC / "sys" / "kernel" / "pid_max")


@dataclass
class ProcessExit:
    """How the process ended: exit code (negative: killed by that signal) and bounded tails."""

    exit_code: int
    stderr_tail: bytes
    stdout_tail: bytes
    oversized_lines: int


class _Tail:
    """The last ``cap`` bytes of a stream."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._chunks: deque[bytes] = deque()
        self._size = 0

    def add(self, data: bytes) -> None:
        self._chunks.append(data)
        self._size += len(data)
        while self._size - len(self._chunks[0]) >= self.cap:
            self._size -= len(self._chunks.popleft())

    def value(self) -> bytes:
        return b"".join(self._chunks)[-self.cap :]


def _stat(pid: int) -> tuple[str, int, int, int, int] | None:
    """(state, ppid, pgrp, session, start time) of ``pid`` from /proc, or None if it is gone."""
    try:
        raw = (_PROC / str(pid) / "stat").read_bytes()
    except OSError:
        return None
    fields = raw[raw.rfind(b")") + 2 :].split()
    try:
        return fields[0].decode(), int(fields[1]), int(fields[2]), int(fields[3]), int(fields[19])
    except (IndexError, ValueError):
        return None


class ProcessTree:
    """The processes of one CLI run: its session leader and every descendant, even re-parented ones."""

    def __init__(self, pid: int, tag: str | None = None) -> None:
        self.pid = pid
        self.tag = f"{STEP_TAG_VAR}={tag}".encode() if tag else None
        self.has_proc = _PROC.is_dir()
        self.spawned = time.monotonic()
        self.known: dict[int, int] = {}  # pid -> start time, to survive pid reuse
        leader = _stat(pid) if self.has_proc else None
        self.leader_start = leader[4] if leader else None
        if leader is not None:
            # Just spawned: it has no descendants yet (watch() and the scans when ending find them). No full
            # /proc scan here: it costs milliseconds on the event loop for every step.
            self.known[pid] = leader[4]

    def _tagged(self, pid: int) -> bool:
        if self.tag is None:
            return False
        try:
            return self.tag in (_PROC / str(pid) / "environ").read_bytes().split(b"\0")
        except OSError:
            return False

    def scan(self, *, deep: bool = False) -> dict[int, int]:
        """Find the members alive now and remember them; returns pid -> start time.

        ``deep`` also reads every process's environment for the step tag (slower; used when ending).
        """
        if not self.has_proc:
            return {}
        floor = self._pid_floor()
        stats: dict[int, tuple[str, int, int, int, int]] = {}
        for entry in os.listdir(_PROC):
            if entry.isdigit() and int(entry) >= floor and (st := _stat(int(entry))) is not None and st[0] != "Z":
                stats[int(entry)] = st
        children: dict[int, list[int]] = {}
        for pid, st in stats.items():
            children.setdefault(st[1], []).append(pid)
        # The kernel never reuses a pid still in use as a group or session id; if the leader's pid now
        # names a younger process, our session is gone and those ids mean someone else's processes.
        leader = stats.get(self.pid)
        reused = leader is not None and leader[4] != self.leader_start
        me = os.getpid()
        members = {
            pid
            for pid, st in stats.items()
            if (not reused and (pid == self.pid or self.pid in (st[2], st[3])))
            # Only processes started no earlier than the leader can carry its tag (reading every
            # environment is the slow part of a scan).
            or (deep and pid != me and (self.leader_start is None or st[4] >= self.leader_start) and self._tagged(pid))
        }
        todo = list(members)
        while todo:
            for child in children.get(todo.pop(), []):
                if child not in members:
                    members.add(child)
                    todo.append(child)
        found = {pid: stats[pid][4] for pid in members}
        self.known.update(found)
        return found

    def _pid_floor(self) -> int:
        """The lowest pid a member can have. Members start after the leader, and pids are handed out in
        increasing order until they wrap around at ``pid_max``: while no wrap can have happened since the
        leader started, only /proc entries from the leader's pid up are read (a full scan reads every
        process of the machine: ~1.7 ms for 90 processes, on the event loop, at every step's end)."""
        last = _read_int(_PROC / "sys" / "kernel" / "ns_last_pid")
        if last is None or _PID_MAX is None or last < self.pid:  # unknown, or wrapped since the leader began
            return 0
        if time.monotonic() - self.spawned > (_PID_MAX - self.pid) / _FORKS_PER_SECOND:
            return 0  # long enough for the pids to have gone all the way round: look at every process
        return self.pid

    def alive(self) -> list[int]:
        """Members, current or remembered, that still run (zombies count as gone)."""
        if not self.has_proc:
            try:
                os.killpg(self.pid, 0)
            except (ProcessLookupError, PermissionError):
                return []
            return [self.pid]
        live = []
        for pid, start in list(self.known.items()):
            st = _stat(pid)
            if st is None or st[4] != start or st[0] == "Z":
                del self.known[pid]
            else:
                live.append(pid)
        return live

    def signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the process group and to every live member outside it."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)
        for pid in self.alive():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)

    async def terminate(self, grace: float) -> None:
        """SIGTERM the tree, wait up to ``grace`` seconds, SIGKILL whatever is left, wait for it to go."""
        self.scan(deep=True)
        self.signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            self.scan()
            if not self.alive():
                return
            await anyio.sleep(0.05)
        for _ in range(40):
            self.scan(deep=True)
            if not self.alive():
                return
            self.signal(signal.SIGKILL)
            await anyio.sleep(0.025)

    async def watch(self) -> None:
        """Rescan now and then so descendants that leave the session are still known at kill time."""
        while True:
            await anyio.sleep(_WATCH_INTERVAL)
            self.scan()


async def _feed(proc: anyio.abc.Process, data: bytes) -> None:
    assert proc.stdin is not None
    try:
        await proc.stdin.send(data)
    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
        pass
    finally:
        await proc.stdin.aclose()


async def run_process(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    output: OutputSink,
    on_line: Callable[[bytes], Awaitable[None]],
    stdin: bytes | None = None,
    grace: float = 3.0,
    tag: str | None = None,
) -> ProcessExit:
    """Run ``argv`` to completion, streaming stdout lines to ``on_line``; the tree never outlives the call.

    Raises ``RunFailure('unavailable')`` when the binary cannot be started. On cancellation the whole
    tree is terminated (shielded) and the cancellation propagates. ``tag`` is the value of
    ``STEP_TAG_VAR`` in ``env``, used to find descendants that left the session.
    """
    use_pidfd_reaper()  # its exit reaches the loop through a pidfd, not a thread per process (Python 3.11)
    try:
        proc = await anyio.open_process(
            list(argv),
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=dict(env),
            start_new_session=True,
        )
    except (FileNotFoundError, PermissionError) as e:
        raise RunFailure("unavailable", f"cannot start {argv[0]}: {e.strerror or e}") from e
    except OSError as e:
        raise RunFailure("process_error", f"cannot start {argv[0]}: {e}") from e

    tree = ProcessTree(proc.pid, tag)
    stderr_tail = _Tail(_STDERR_TAIL)
    stdout_tail = _Tail(_STDOUT_TAIL)
    oversized = 0

    async def pump_stdout(done: anyio.Event) -> None:
        nonlocal oversized
        assert proc.stdout is not None
        buf = bytearray()
        skipping = False
        try:
            async for chunk in proc.stdout:
                output.write(chunk)
                stdout_tail.add(chunk)
                buf += chunk
                while (nl := buf.find(b"\n")) >= 0:
                    line = bytes(buf[:nl])
                    del buf[: nl + 1]
                    if skipping:
                        skipping = False
                    else:
                        await on_line(line)
                if len(buf) > MAX_LINE_BYTES:
                    if not skipping:
                        oversized += 1
                    skipping = True
                    buf.clear()
            if buf and not skipping:
                await on_line(bytes(buf))
        finally:
            done.set()

    async def pump_stderr(done: anyio.Event) -> None:
        assert proc.stderr is not None
        try:
            async for chunk in proc.stderr:
                stderr_tail.add(chunk)
                output.last_activity = time.monotonic()
        finally:
            done.set()

    try:
        async with anyio.create_task_group() as tg:
            out_done, err_done = anyio.Event(), anyio.Event()
            tg.start_soon(pump_stdout, out_done)
            tg.start_soon(pump_stderr, err_done)
            if stdin is not None:
                tg.start_soon(_feed, proc, stdin)
            if tree.has_proc:
                tg.start_soon(tree.watch)
            exit_code = await proc.wait()
            # Leftover descendants would keep the pipes open and keep running: end them too.
            if tree.scan(deep=True) or tree.alive():
                await tree.terminate(grace)
            with anyio.move_on_after(_DRAIN_SECONDS):
                await out_done.wait()
                await err_done.wait()
            tg.cancel_scope.cancel()
    except BaseException:
        with anyio.CancelScope(shield=True):
            await tree.terminate(grace)
            await _close(proc)
        raise
    with anyio.CancelScope(shield=True):
        await _close(proc)
    return ProcessExit(exit_code, stderr_tail.value(), stdout_tail.value(), oversized)


async def _close(proc: anyio.abc.Process) -> None:
    """Close the pipes and reap the process (it has been told to end already)."""
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            await stream.aclose()
    if proc.returncode is None:
        with anyio.move_on_after(2):
            await proc.wait()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
