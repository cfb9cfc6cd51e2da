"""Ways to start the real server in tests: stdio parameters, an HTTP server subprocess, free ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx2
from mcp import StdioServerParameters

__all__ = ["REPO", "ServerProcess", "free_port", "http_server", "stdio_params"]

REPO = Path(__file__).resolve().parents[2]


def stdio_params(env: dict[str, str], *extra: str) -> StdioServerParameters:
    """How to start ``mcp-orchestrator serve`` over stdio as a subprocess."""
    return StdioServerParameters(
        command=sys.executable, args=["-m", "mcp_orchestrator", "serve", *extra], env=env, cwd=str(REPO)
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """``serve --transport <transport>`` as a child we hold the pid of (to SIGKILL or SIGSTOP it)."""

    def __init__(
        self,
        env: dict[str, str],
        log: Path,
        *,
        transport: str = "streamable-http",
        host: str = "127.0.0.1",
        extra: tuple[str, ...] = (),
        new_session: bool = False,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}{'/sse' if transport == 'sse' else '/mcp'}"
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        # stderr to a file: uvicorn logs every request, and an unread pipe would fill up and block the server.
        with log.open("ab") as err:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "mcp_orchestrator",
                    "serve",
                    "--transport",
                    transport,
                    "--port",
                    f"{self.port}",
                    "--host",
                    host,
                    *extra,
                ],
                env=env,
                cwd=str(REPO),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=new_session,  # its own process group, to kill as a whole
            )

    @property
    def pid(self) -> int:
        """The server's pid."""
        return self.proc.pid

    async def ready(self) -> None:
        """Until the server answers HTTP."""
        with anyio.fail_after(30):
            async with httpx2.AsyncClient() as http:
                while True:
                    if self.proc.poll() is not None:
                        raise RuntimeError(f"server exited early:\n{self.log.read_text()}")
                    try:
                        await http.get(f"http://127.0.0.1:{self.port}/", timeout=1)
                        return
                    except httpx2.TransportError:
                        await anyio.sleep(0.05)

    def signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the server."""
        os.kill(self.proc.pid, sig)

    def kill_group(self) -> None:
        """SIGKILL the server's whole process group (``new_session`` servers only) and reap it."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def kill9(self) -> None:
        """``kill -9`` the server and reap it."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        """Terminate (then kill) the server if it still runs."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@asynccontextmanager
async def http_server(env: dict[str, str], transport: str) -> AsyncIterator[str]:
    """Start ``serve --transport <transport>`` and yield its URL once it answers."""
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(env, Path(tmp) / "server.log", transport=transport)
        try:
            await server.ready()
            yield server.url
        finally:
            server.stop()
