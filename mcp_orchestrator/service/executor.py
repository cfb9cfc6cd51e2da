"""The front end's link to the per-data-dir executor: find it, start it, hand runs to it, follow them.

``serve`` accepts runs but does not execute them: a detached ``mcp-orchestrator daemon run`` process
(one per data directory, under a lock, in its own session outside the client's process group) owns
the scheduler and every worker process, so a run outlives the client session that started it.

The hand-over is the store's own lease protocol: the front end writes the run ``accepted`` and owned by
the executor's instance (``owned/<instance>/<runId>``), then tells the executor over a local Unix
socket. If that message is lost, the executor still finds the run in its owned markers within a
second; if the executor died meanwhile, the next one takes the run over like any dead instance's.

Wire: one JSON line per request on a fresh connection, JSON lines back. Requests: ``hello``
(capacity check + the executor's process identity), ``claim``, ``watch`` (a run's events until it
ends), ``status`` and ``stop``. The socket lives in a 0700 directory of the user.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream

from mcp_orchestrator.config import Settings
from mcp_orchestrator.errors import Overloaded, Unavailable
from mcp_orchestrator.service.events import RunEvent
from mcp_orchestrator.store._files import is_alive

if TYPE_CHECKING:  # a front end starts the executor before it needs the models (issue 15: start-up)
    from mcp_orchestrator.contracts import ProcessRef, RunRecord, WorkerRecord

__all__ = ["ExecutorLink", "ExecutorPaths", "open_request", "read_lines", "request"]

log = logging.getLogger(__name__)

START_TIMEOUT_SECONDS = 20.0
MAX_LINE = 1 << 20


class ExecutorPaths:
    """Where one data directory's executor keeps its lock, its identity, its log and its socket."""

    def __init__(self, home: Path) -> None:
        self.dir = home / "executor"
        self.lock = self.dir / "lock"
        self.info = self.dir / "info.json"
        self.log = self.dir / "executor.log"
        sock = self.dir / "sock"
        if len(str(sock)) > 100:  # AF_UNIX paths are capped at 108 bytes: use a short per-user folder
            digest = hashlib.sha256(str(home).encode()).hexdigest()[:20]
            sock = Path(tempfile.gettempdir()) / f"mcp-orchestrator-{os.getuid()}" / f"{digest}.sock"
        self.socket = sock

    def prepare(self) -> None:
        """Create the folders, private to this user."""
        for d in {self.dir, self.socket.parent}:
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
            if d.stat().st_uid != os.getuid():
                raise Unavailable(f"{d} belongs to another user", hint="Point MCP_ORCHESTRATOR_HOME elsewhere.")

    def held(self) -> bool:
        """True while some process holds the executor lock (an executor runs or is starting)."""
        self.prepare()
        fd = os.open(self.lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing drops a lock we took
        return False

    def read_info(self) -> dict[str, Any] | None:
        """What the running executor wrote about itself, if anything."""
        try:
            data = json.loads(self.info.read_bytes())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None


async def read_lines(stream: SocketStream) -> Any:
    """Yield the JSON lines of ``stream`` until it closes."""
    buffered = BufferedByteReceiveStream(stream)
    while True:
        try:
            line = await buffered.receive_until(b"\n", MAX_LINE)
        except (anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError, anyio.ClosedResourceError):
            return
        yield json.loads(line)


async def open_request(
    path: Path, payload: dict[str, Any], within: float = 10.0
) -> tuple[dict[str, Any], SocketStream, AsyncIterator[Any]]:
    """Send one request; return the first answer line with the still open connection and its further lines
    (the caller closes the stream). ``OSError`` when nobody listens."""
    with anyio.fail_after(within):
        stream = await anyio.connect_unix(path)
        try:
            await stream.send(json.dumps(payload).encode() + b"\n")
            lines = read_lines(stream)
            try:
                answer = await lines.__anext__()
            except StopAsyncIteration:
                raise ConnectionResetError("the executor closed the connection without an answer") from None
        except BaseException:
            await stream.aclose()
            raise
    return dict(answer), stream, lines


async def request(path: Path, payload: dict[str, Any], within: float = 10.0) -> dict[str, Any]:
    """Send one request and return the first answer line; ``OSError`` when nobody listens."""
    answer, stream, _ = await open_request(path, payload, within)
    await stream.aclose()
    return answer


class ExecutorLink:
    """What a front end uses: start the executor when none runs, check capacity, hand over, follow."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.paths = ExecutorPaths(settings.home)
        self._spawned: subprocess.Popen[bytes] | None = None
        self._spawn_lock = threading.Lock()
        self._owner: ProcessRef | None = None  # the executor's identity, queue depths and limits, as last told
        self._depth: dict[str, int] = {}
        self._limits: dict[str, int] = {}
        self._claims = 0  # claims sent and not answered yet

    # ---- starting ---------------------------------------------------------------------------

    def spawn(self) -> None:
        """Start ``mcp-orchestrator daemon run`` detached, unless an executor runs or is starting."""
        with self._spawn_lock:
            if self._spawned is not None and self._spawned.poll() is None:
                return  # ours is still starting (or waiting for a stopping one's lock)
            if self.paths.held():
                return
            self.paths.prepare()
            env = dict(os.environ)
            env["MCP_ORCHESTRATOR_HOME"] = str(self.settings.home)
            env["MCP_ORCHESTRATOR_ROOTS"] = os.pathsep.join(str(r) for r in self.settings.roots)
            env["MCP_ORCHESTRATOR_EXECUTOR_IDLE_SECONDS"] = str(self.settings.executor_idle_seconds)
            with self.paths.log.open("ab") as err:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "mcp_orchestrator", "daemon", "run", "--detach"],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                    env=env,
                    cwd=str(self.settings.home),
                    start_new_session=True,  # and it forks into another: the client's group never reaches it
                    close_fds=True,
                )
            self._spawned = proc
            threading.Thread(target=proc.wait, name="executor-reaper", daemon=True).start()

    async def call(self, payload: dict[str, Any], *, within: float = 10.0) -> dict[str, Any]:
        """One request to the executor, starting it first when nobody answers."""
        answer, stream, _ = await self.call_open(payload, within=within)
        await stream.aclose()
        return answer

    async def call_open(
        self, payload: dict[str, Any], *, within: float = 10.0
    ) -> tuple[dict[str, Any], SocketStream, AsyncIterator[Any]]:
        """``call``, keeping the connection open for the lines after the answer (the caller closes it)."""
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        delay = 0.01
        spawned = False
        while True:
            try:
                return await open_request(self.paths.socket, payload, within)
            except (OSError, TimeoutError) as e:
                if time.monotonic() > deadline:
                    raise Unavailable(
                        f"the run executor of {self.settings.home} did not answer within "
                        f"{START_TIMEOUT_SECONDS:.0f} s ({e}); its log: {self.paths.log}"
                    ) from e
            if not spawned:
                await anyio.to_thread.run_sync(self.spawn)
                spawned = True
            elif self._spawned is not None and self._spawned.poll() not in (None, 0):
                raise Unavailable(f"the run executor exited with {self._spawned.returncode}; its log: {self.paths.log}")
            elif not await anyio.to_thread.run_sync(self.paths.held):
                spawned = False  # the starter is done but nobody holds the lock (it stopped meanwhile): again
            await anyio.sleep(delay)
            delay = min(delay * 2, 0.2)

    # ---- the hand-over ----------------------------------------------------------------------

    async def admit(self, priority: str) -> ProcessRef:
        """Check the executor's queue for ``priority``; returns the identity runs are handed to.

        While the executor last reported its queue under half full and still runs, the answer comes from that
        report (each claim refreshes it) and costs no round trip; otherwise it asks (``hello``)."""
        owner, depth, limit = self._owner, self._depth.get(priority), self._limits.get(priority)
        if owner is not None and depth is not None and limit is not None and depth * 2 < limit and is_alive(owner):
            self._depth[priority] = depth + 1  # until the next claim's report
            return owner
        answer = await self.call({"op": "hello", "priority": priority})
        self._remember(answer)
        full = answer.get("overloaded")
        if isinstance(full, dict):
            raise Overloaded(priority, int(full["depth"]), int(full["limit"]), int(full["retryAfter"]))
        from mcp_orchestrator.contracts import ProcessRef

        return ProcessRef.model_validate(answer["owner"])

    async def claim(
        self, run: RunRecord, workers: list[WorkerRecord], task: str, publish: Callable[[Any], None] | None = None
    ) -> tuple[bool, Callable[[], Awaitable[None]] | None]:
        """Tell the executor to start ``run`` (stored as owned by it, sent with its workers so the executor need
        not read them back); the task goes as given, unredacted.

        With ``publish``, the same connection then carries the run's events (the executor subscribes before it
        starts the run, so none is missed): the second value forwards them to ``publish`` until the run ends,
        and the caller must start it at once (it closes the connection)."""
        run_id = run.run_id
        payload: dict[str, Any] = {
            "op": "claim",
            "runId": run_id,
            "task": task,
            "run": run.model_dump(mode="json"),
            "workers": [w.model_dump(mode="json") for w in workers],
        }
        if publish is not None:
            payload["watch"] = True
        self._claims += 1
        try:
            answer, stream, lines = await self.call_open(payload)
        except Unavailable:
            self._owner = None
            raise
        finally:
            self._claims -= 1
        self._remember(answer)
        ok = bool(answer.get("ok"))
        if publish is None or not ok:
            await stream.aclose()
            return ok, None

        async def forward() -> None:
            async with stream:
                await _publish_lines(run_id, lines, publish)

        return ok, forward

    def _remember(self, answer: dict[str, Any]) -> None:
        """Keep the executor's identity and queue report for the next ``admit``."""
        from mcp_orchestrator.contracts import ProcessRef

        if "owner" in answer:
            self._owner = ProcessRef.model_validate(answer["owner"])
        if isinstance(answer.get("depth"), dict) and isinstance(answer.get("limits"), dict):
            # Claims still on their way (handed over in the background) are not in this report yet: counted in.
            self._depth = {str(k): int(v) + self._claims for k, v in answer["depth"].items()}
            self._limits = {str(k): int(v) for k, v in answer["limits"].items()}

    async def watch(self, run_id: str, publish: Callable[[Any], None]) -> None:
        """Forward the executor's events of ``run_id`` to ``publish`` until the run ends or we are canceled."""
        with contextlib.suppress(OSError):
            stream = await anyio.connect_unix(self.paths.socket)
            async with stream:
                await stream.send(json.dumps({"op": "watch", "runId": run_id}).encode() + b"\n")
                await _publish_lines(run_id, read_lines(stream), publish)


async def _publish_lines(run_id: str, lines: AsyncIterator[Any], publish: Callable[[Any], None]) -> None:
    """Publish each event line of ``run_id`` as a ``RunEvent``."""
    async for item in lines:
        if isinstance(item, dict) and item.get("kind"):
            publish(RunEvent(run_id, item["kind"], str(item.get("message", ""))))
