"""``serve`` over stdio without a thread hop per message (issue 15: the hot path).

The SDK's ``stdio_server`` reads each line and writes (then flushes) each message through ``anyio.wrap_file``:
three thread hops per request and its answer, each a GIL hand-off and an event-loop wake-up. When stdin and
stdout are pipes or sockets (as every MCP client starts a server), this module hands the SDK's transport line
and message streams that read and write the descriptors on the event loop instead (``wait_readable`` /
``wait_writable``); the parsing, the serialisation and the context streams stay the SDK's. Anything else (a
terminal, a file) keeps the SDK's own transport.

Like the SDK's, the transport claims fds 0 and 1 while it serves: the wire moves to private close-on-exec
duplicates, fd 0 reads the null device and fd 1 writes to stderr (a child or a stray print never reaches the
wire); both are restored on exit.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio

__all__ = ["FdLines", "FdWriter", "run_stdio"]

READ_CHUNK = 1 << 16


def _is_stream(fd: int) -> bool:
    """True for a pipe or a socket (what ``wait_readable`` can wait on)."""
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


class FdLines:
    """The lines of a readable descriptor as text, read on the event loop (``async for line in ...``)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._lines: list[bytes] = []
        self._partial = b""
        self._eof = False

    def __aiter__(self) -> FdLines:
        return self

    async def __anext__(self) -> str:
        while not self._lines:
            if self._eof:
                if self._partial:  # a last line without its newline, as a text file's iterator yields it
                    last, self._partial = self._partial, b""
                    return last.decode("utf-8", "replace")
                raise StopAsyncIteration
            await anyio.wait_readable(self.fd)
            try:
                chunk = os.read(self.fd, READ_CHUNK)
            except BlockingIOError:  # a spurious wake-up
                continue
            if not chunk:
                self._eof = True
                continue
            *complete, self._partial = (self._partial + chunk).split(b"\n")
            self._lines = [line + b"\n" for line in reversed(complete)]  # popped from the end
        return self._lines.pop().decode("utf-8", "replace")


class FdWriter:
    """Text written to a non-blocking descriptor on the event loop (``write``, then ``flush``)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    async def write(self, text: str) -> int:
        """Write all of ``text``, waiting on the descriptor while the reader's pipe is full."""
        data = memoryview(text.encode("utf-8"))
        while data:
            try:
                sent = os.write(self.fd, data)
            except BlockingIOError:
                sent = 0
            data = data[sent:]
            if data:
                await anyio.wait_writable(self.fd)
        return len(text)

    async def flush(self) -> None:
        """Nothing is buffered."""


@contextlib.contextmanager
def _claimed() -> Iterator[tuple[int, int] | None]:
    """fds 0 and 1 moved to private duplicates (stdout's non-blocking), or ``None`` when they are not streams."""
    if sys.platform == "win32" or not (_is_stream(0) and _is_stream(1)):
        yield None
        return
    import fcntl

    wire_in = fcntl.fcntl(0, fcntl.F_DUPFD_CLOEXEC, 3)
    wire_out = fcntl.fcntl(1, fcntl.F_DUPFD_CLOEXEC, 3)
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        sys.stdout.flush()
        os.dup2(null, 0)
        os.dup2(2, 1)
        was_blocking = os.get_blocking(wire_out)
        os.set_blocking(wire_out, False)
        try:
            yield wire_in, wire_out
        finally:
            with contextlib.suppress(OSError):
                os.set_blocking(wire_out, was_blocking)
            os.dup2(wire_in, 0)
            os.dup2(wire_out, 1)
    finally:
        for fd in (null, wire_in, wire_out):
            with contextlib.suppress(OSError):
                os.close(fd)


@asynccontextmanager
async def _streams() -> AsyncIterator[tuple[Any, Any]]:
    from mcp.server.stdio import stdio_server

    with _claimed() as wire:
        if wire is None:
            async with stdio_server() as streams:
                yield streams
            return
        wire_in, wire_out = wire
        async with stdio_server(FdLines(wire_in), FdWriter(wire_out)) as streams:  # type: ignore[arg-type]
            yield streams


async def run_stdio(server: Any) -> None:
    """``MCPServer.run_stdio_async`` on the event-loop transport."""
    low = server._lowlevel_server
    async with _streams() as (read_stream, write_stream):
        await low.run(read_stream, write_stream, low.create_initialization_options())
