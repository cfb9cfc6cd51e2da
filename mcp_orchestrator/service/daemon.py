"""The per-data-dir executor: ``mcp-orchestrator daemon run``, and ``daemon status | stop``.

One process per data directory (an exclusive ``flock`` held for its lifetime) runs the scheduler
and every worker process of the runs that front ends (``serve``) hand to it. It is started detached,
in its own session, by the first ``serve`` that finds none, so a run keeps executing however its
client session ends. It takes over what a dead executor or server left behind at start-up, like any
instance, and exits once it has had no unfinished run and no connection for ``idle`` seconds.

``stop`` cancels the runs executing here (their steps' process trees are killed) and leaves the
queued ones accepted: the next executor starts them. After a host reboot the next executor fails the
runs that were executing as ``interrupted`` and starts the queued ones.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
import time
from typing import Any

import anyio
from anyio.abc import SocketStream
from anyio.streams.memory import MemoryObjectReceiveStream

from mcp_orchestrator import __version__
from mcp_orchestrator.config import Settings
from mcp_orchestrator.contracts import RunRecord, WorkerRecord, utcnow
from mcp_orchestrator.errors import OrchestratorError, Overloaded
from mcp_orchestrator.service.events import RunEvent
from mcp_orchestrator.service.executor import ExecutorPaths, read_lines, request
from mcp_orchestrator.service.orchestrator import Orchestrator
from mcp_orchestrator.store._files import atomic_write, is_alive

__all__ = ["daemon_status", "daemon_stop", "detach_and_lock", "run_executor"]

log = logging.getLogger(__name__)

LOCK_WAIT_SECONDS = 5.0
SWEEP_SECONDS = 1.0


def _records(req: dict[str, Any]) -> tuple[RunRecord | None, list[WorkerRecord] | None]:
    """The run and worker records a claim carries, if well formed (else the executor reads the store)."""
    try:
        run = RunRecord.model_validate(req["run"])
        workers = [WorkerRecord.model_validate(w) for w in req["workers"]]
    except (KeyError, TypeError, ValueError):
        return None, None
    return run, workers


def _pending(first: RunEvent, events: MemoryObjectReceiveStream[RunEvent]) -> list[RunEvent]:
    """``first`` and the events already waiting behind it, up to the run's end."""
    batch = [first]
    while batch[-1].kind != "run_ended":
        try:
            batch.append(events.receive_nowait())
        except (anyio.WouldBlock, anyio.EndOfStream):
            break
    return batch


class _Executor:
    """The socket side of a running executor."""

    def __init__(self, orch: Orchestrator, idle_seconds: float) -> None:
        self.orch = orch
        self.idle_seconds = idle_seconds
        self.connections = 0
        self.last_busy = time.monotonic()
        self.started = utcnow()
        self.stop = anyio.Event()
        self.lock = anyio.Lock()  # claims and sweeps one at a time: a run starts once

    def busy(self) -> bool:
        return bool(self.connections or self.orch.engine.running() or self.orch.engine.queued())

    async def handle(self, stream: SocketStream) -> None:
        self.connections += 1
        self.last_busy = time.monotonic()
        try:
            async with stream:
                async for req in read_lines(stream):  # one request per connection
                    if req.get("op") == "watch":
                        await self.watch(stream, str(req.get("runId", "")))
                    elif req.get("op") == "claim" and req.get("watch"):
                        await self.claim_and_watch(stream, req)
                    else:
                        await stream.send(json.dumps(await self.answer(req)).encode() + b"\n")
                    if req.get("op") == "stop":
                        self.stop.set()  # only once the answer is out: `daemon stop` must not think it was ignored
                    return
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, ValueError) as e:
            log.debug("executor connection ended: %s", e)
        finally:
            self.connections -= 1
            self.last_busy = time.monotonic()

    async def answer(self, req: dict[str, Any]) -> dict[str, Any]:
        op = req.get("op")
        if op == "hello":
            try:
                self.orch.engine.check_capacity(req.get("priority", "interactive"))
            except Overloaded as e:
                full = {"depth": e.depth, "limit": e.limit, "retryAfter": e.retry_after_seconds}
                return {"overloaded": full, **self.queues()}
            return {"owner": self.orch.process.model_dump(mode="json"), **self.queues()}
        if op == "claim":
            async with self.lock:
                task = req.get("task")
                run, workers = _records(req)
                ok = await self.orch.claim(
                    str(req.get("runId", "")), task if isinstance(task, str) else None, run=run, workers=workers
                )
            return {"ok": ok, "owner": self.orch.process.model_dump(mode="json"), **self.queues()}
        if op == "status":
            return self.status()
        if op == "beat":  # a front end wants a fresh scheduler view in the heartbeats
            await self.orch.beat()
            return {"ok": True}
        if op == "stop":
            self.orch.shutdown_reason = "the executor was stopped by the operator"
            return {"ok": True}
        return {"error": f"unknown op {op!r}"}

    async def watch(self, stream: SocketStream, run_id: str) -> None:
        async with self.orch.events.subscribe(run_id) as events:
            await self._send_events(stream, run_id, events, check_first=True)

    async def claim_and_watch(self, stream: SocketStream, req: dict[str, Any]) -> None:
        """A claim whose connection then carries the run's events: subscribed before the run starts."""
        run_id = str(req.get("runId", ""))
        async with self.orch.events.subscribe(run_id) as events:
            answer = await self.answer(req)
            await stream.send(json.dumps(answer).encode() + b"\n")
            if answer.get("ok"):
                await self._send_events(stream, run_id, events, check_first=False)

    async def _send_events(
        self, stream: SocketStream, run_id: str, events: MemoryObjectReceiveStream[RunEvent], *, check_first: bool
    ) -> None:
        """Send the run's events until it ends. The store is checked first (unless the run was just claimed
        under this subscription) and after each quiet second: a full buffer drops events, ``run_ended`` too."""
        ended = {"kind": "run_ended", "message": "run ended"}
        check = check_first
        while True:
            if check:
                with contextlib.suppress(OrchestratorError):
                    if (await self.orch.get_run(run_id)).terminal:  # ended before the watcher came, or unheard
                        await stream.send(json.dumps(ended).encode() + b"\n")
                        return
            check = True
            with anyio.move_on_after(SWEEP_SECONDS):
                async for event in events:
                    batch = _pending(event, events)  # a burst goes in one write: one wake-up at the front end
                    await stream.send(b"".join(json.dumps({"kind": e.kind, "message": e.message}).encode() + b"\n"
                                               for e in batch))  # fmt: skip
                    if batch[-1].kind == "run_ended":
                        return

    def queues(self) -> dict[str, Any]:
        """Queue depth and limit per priority class, for a front end's next capacity check."""
        view = self.orch.engine.snapshot()
        return {"depth": view["depth"], "limits": view["queueLimits"]}

    def status(self) -> dict[str, Any]:
        engine = self.orch.engine
        others = self.connections - 1  # not counting the one asking
        idle = 0.0 if others or engine.running() or engine.queued() else time.monotonic() - self.last_busy
        return {
            "pid": os.getpid(),
            "instance": self.orch.process.instance,
            "home": str(self.orch.settings.home),
            "version": __version__,
            "startedAt": self.started.isoformat(),
            "running": sorted(engine.running()),
            "queued": sorted(engine.queued()),
            "connections": others,
            "idleSeconds": round(idle, 1),
            "idleExitSeconds": self.idle_seconds,
        }

    async def sweep(self) -> None:
        """Pick up hand-overs whose message was lost; stop once idle for long enough."""
        while not self.stop.is_set():
            with anyio.move_on_after(SWEEP_SECONDS):
                await self.stop.wait()
            async with self.lock:
                await self.orch.claim_owned()
            if self.busy():
                self.last_busy = time.monotonic()
            elif time.monotonic() - self.last_busy >= self.idle_seconds:
                log.warning("executor: idle for %.0f s with no unfinished run; exiting", self.idle_seconds)
                self.stop.set()


def _lock(paths: ExecutorPaths) -> int | None:
    """Take the executor lock, waiting a little for one that is stopping; ``None`` if another holds it."""
    paths.prepare()
    fd = os.open(paths.lock, os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                return None
            time.sleep(0.05)


def detach_and_lock(settings: Settings) -> int | None:
    """Take the executor lock, then leave the starter: fork, the parent exits 0 at once, the child goes on
    in a new session (reparented, no longer anyone's child). ``None``: another executor holds the lock."""
    fd = _lock(ExecutorPaths(settings.home))
    if fd is None:
        log.warning("executor: another executor holds %s", ExecutorPaths(settings.home).lock)
        return None
    if os.fork() > 0:
        os._exit(0)  # the lock stays with the child: flock belongs to the open file, which it shares
    os.setsid()
    return fd


async def run_executor(settings: Settings, fd: int | None = None) -> int:
    """Run the executor of ``settings.home`` until stopped or idle (``fd``: the lock, if already taken);
    0 also when another one runs."""
    import faulthandler

    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1 <pid>`: every thread's stack to the log
    paths = ExecutorPaths(settings.home)
    if fd is None:
        fd = await anyio.to_thread.run_sync(_lock, paths)
    if fd is None:
        log.warning("executor: another executor holds %s", paths.lock)
        return 0
    try:
        orch = Orchestrator(settings)
        async with orch.running():
            paths.socket.unlink(missing_ok=True)  # a dead executor's: we hold the lock
            listener = await anyio.create_unix_listener(paths.socket)
            os.chmod(paths.socket, 0o600)
            executor = _Executor(orch, settings.executor_idle_seconds)
            info = {"pid": os.getpid(), "process": orch.process.model_dump(mode="json"), "socket": str(paths.socket)}
            atomic_write(paths.info, json.dumps(info).encode(), fsync=False)
            async with listener, anyio.create_task_group() as tg:
                tg.start_soon(listener.serve, executor.handle)
                tg.start_soon(executor.sweep)
                tg.start_soon(_signals, executor)
                await executor.stop.wait()
                tg.cancel_scope.cancel()
            # Shutting down records how each running run ended: a second SIGTERM must not cut that short.
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            log.warning("executor: stopping (%s)", orch.shutdown_reason)
            paths.socket.unlink(missing_ok=True)
        log.warning("executor: stopped")
        paths.info.unlink(missing_ok=True)  # last: until now `daemon stop` and status see it
    finally:
        os.close(fd)
    return 0


async def _signals(executor: _Executor) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for _ in signals:
            executor.stop.set()
            return


async def daemon_status(settings: Settings) -> dict[str, Any]:
    """What the executor of ``settings.home`` reports, or why none answers."""
    paths = ExecutorPaths(settings.home)
    try:
        answer = await request(paths.socket, {"op": "status"}, within=5.0)
    except (OSError, TimeoutError) as e:
        return {"alive": False, "home": str(settings.home), "locked": paths.held(), "reason": str(e)}
    return {"alive": True, **answer}


async def daemon_stop(settings: Settings, wait_seconds: float = 30.0) -> dict[str, Any]:
    """Ask the executor to stop and wait for its process to end (SIGTERM if it does not answer)."""
    from mcp_orchestrator.contracts import ProcessRef

    paths = ExecutorPaths(settings.home)
    info = paths.read_info() or {}
    try:
        await request(paths.socket, {"op": "stop"}, within=5.0)
    except (OSError, TimeoutError):
        pid = info.get("pid")
        if not isinstance(pid, int):
            return {"stopped": False, "reason": "no executor is running"}
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    ref = info.get("process")
    if isinstance(ref, dict):
        process = ProcessRef.model_validate(ref)
        with anyio.move_on_after(wait_seconds):
            while is_alive(process):  # noqa: ASYNC110 - another process: nothing to wait on but its pid
                await anyio.sleep(0.05)
        if is_alive(process):
            return {"stopped": False, "reason": f"pid {process.pid} still runs after {wait_seconds:.0f} s"}
    return {"stopped": True, "pid": info.get("pid")}
