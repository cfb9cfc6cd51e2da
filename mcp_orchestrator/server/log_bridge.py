"""``logging/setLevel``: this process's ``mcp_orchestrator`` log records as ``notifications/message``.

A session hears nothing until it sets a level (the SDK itself would send whatever a server logs;
a client that never asked for logs should not pay for them). From then on every record of the
``mcp_orchestrator`` loggers at or above that level reaches it, its text passed through the
redactor first. Records come from any thread (store work runs on worker threads): a record made
off the event loop is handed to it with ``anyio.from_thread``, and a sender task writes them out.

To deliver levels below what the process logs to stderr (``--verbose`` or not), the bridge lowers
the ``mcp_orchestrator`` logger's level while a session wants it and forwards to the parent
handlers only what they would have got before, so stderr stays as it was. 2026-era requests carry
their own log level in ``_meta`` and get request-scoped logs from the SDK; this bridge serves the
handshake era, where ``logging/setLevel`` exists.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

import anyio
import anyio.from_thread
import anyio.lowlevel
from anyio.streams.memory import MemoryObjectSendStream
from mcp.server.session import ServerSession
from mcp.types import LoggingLevel, LoggingMessageNotification, LoggingMessageNotificationParams

from mcp_orchestrator.observability.redact import Redactor

__all__ = ["LEVELS", "LogBridge", "mcp_level"]

ROOT = "mcp_orchestrator"

LEVELS: dict[str, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "notice": 25,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
    "alert": 55,
    "emergency": 60,
}


def mcp_level(levelno: int) -> LoggingLevel:
    """The MCP level of a python log level (the highest MCP level not above it)."""
    name: LoggingLevel = "debug"
    for candidate, number in LEVELS.items():
        if levelno >= number:
            name = candidate  # type: ignore[assignment]  # LEVELS' keys are the LoggingLevel literals
    return name


class LogBridge(logging.Handler):
    """Fans ``mcp_orchestrator`` records out to the sessions that set a level."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self._sessions: dict[int, tuple[ServerSession, int]] = {}  # connection key -> (session, python level)
        self._send: MemoryObjectSendStream[tuple[int, str, str]] | None = None
        self._token: anyio.lowlevel.EventLoopToken | None = None
        self._loop_thread: int | None = None
        self._users = 0
        self._outer = logging.WARNING  # what the parent handlers got before the bridge lowered the level
        self._saved: tuple[int, bool] | None = None  # the logger's own level and propagate flag

    def set_level(self, key: int, session: ServerSession, level: str) -> None:
        """Send records at or above ``level`` to ``session`` (connection ``key``) from now on."""
        self._sessions[key] = (session, LEVELS[level])
        self._tune()

    def _tune(self) -> None:
        """Lower the ``mcp_orchestrator`` logger's level to what the sessions want (never raise it)."""
        if self._saved is None:
            return
        wanted = min((lvl for _, lvl in self._sessions.values()), default=self._outer)
        logging.getLogger(ROOT).setLevel(min(wanted, self._outer))

    @asynccontextmanager
    async def running(self, redactor: Redactor) -> AsyncIterator[None]:
        """Bridge records while open (nested entries share one bridge)."""
        self._users += 1
        if self._users > 1:
            try:
                yield
            finally:
                self._users -= 1
            return
        send, receive = anyio.create_memory_object_stream[tuple[int, str, str]](1024)
        logger = logging.getLogger(ROOT)
        self._outer = logger.getEffectiveLevel()
        self._saved = (logger.level, logger.propagate)
        self._token = anyio.lowlevel.current_token()
        self._loop_thread = threading.get_ident()
        self._send = send
        logger.propagate = False  # the bridge forwards to the parents what they used to get
        logger.addHandler(self)
        self._tune()
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._sender, receive, redactor)
                try:
                    yield
                finally:
                    tg.cancel_scope.cancel()
        finally:
            logger.removeHandler(self)
            level, propagate = self._saved
            logger.setLevel(level)
            logger.propagate = propagate
            self._saved = self._send = self._token = None
            self._users -= 1
            send.close()

    def handle(self, record: logging.LogRecord) -> bool:
        """Emit without the handler lock: a worker thread waits here for the event loop, which may log too."""
        if not self.filter(record):
            return False
        self.emit(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        """Forward to the parents what they would have got, and queue the record for the sessions that want it."""
        saved = self._saved
        logger = logging.getLogger(ROOT)
        if saved is not None and saved[1] and record.levelno >= self._outer and logger.parent is not None:
            logger.parent.handle(record)
        send, token = self._send, self._token
        if send is None or not any(record.levelno >= lvl for _, lvl in self._sessions.values()):
            return
        try:
            item = (record.levelno, record.name, self.format(record))
        except Exception:  # a record whose arguments do not format: logging's own contract is to not raise
            return
        with suppress(anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError, RuntimeError):
            if threading.get_ident() == self._loop_thread:
                send.send_nowait(item)
            else:
                anyio.from_thread.run_sync(send.send_nowait, item, token=token)

    async def _sender(self, receive: anyio.abc.ObjectReceiveStream[tuple[int, str, str]], redactor: Redactor) -> None:
        async with receive:
            async for levelno, name, text in receive:
                params = LoggingMessageNotificationParams(
                    level=mcp_level(levelno), logger=name, data=redactor.text(text)
                )
                for key, (session, wanted) in list(self._sessions.items()):
                    if levelno < wanted:
                        continue
                    try:
                        await session.send_notification(LoggingMessageNotification(params=params))
                    except Exception:  # fan-out boundary; logging it here would loop back into the bridge
                        self._sessions.pop(key, None)
