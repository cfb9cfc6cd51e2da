"""``<cli> --version``, probed once per binary and cached, with a short time limit.

``runtimes`` and ``list_workers`` ask for every adapter's version on every call. A CLI that hangs on
``--version`` (a stuck launcher, a network check at start-up) must not hang those tools: the probe
gets ``MCP_ORCHESTRATOR_VERSION_TIMEOUT`` seconds (default 5), then its whole process group is
killed and the CLI is reported unavailable. Results are cached per (path, modification time): a
version until the binary changes, a failure for ``FAILURE_TTL`` seconds (a CLI slow only on a cold
start gets another chance). Concurrent callers for one binary wait for a single probe.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass

__all__ = ["DEFAULT_TIMEOUT", "FAILURE_TTL", "binary_version", "clear_cache", "probe_count"]

DEFAULT_TIMEOUT = 5.0
FAILURE_TTL = 300.0
_VERSION_RE = re.compile(r"\d+\.\d+\.\d+(?:[-+.][0-9A-Za-z.-]+)?")


@dataclass(frozen=True)
class _Probe:
    version: str | None
    problem: str
    at: float  # time.monotonic() of the probe


_Key = tuple[str, int]
_cache: dict[_Key, _Probe] = {}
_locks: dict[_Key, threading.Lock] = {}
_guard = threading.Lock()
_probes = 0  # probes run by this process (tests check that a cached answer probes nothing)


def _timeout() -> float:
    raw = os.environ.get("MCP_ORCHESTRATOR_VERSION_TIMEOUT", "")
    try:
        value = float(raw) if raw.strip() else DEFAULT_TIMEOUT
    except ValueError:
        return DEFAULT_TIMEOUT
    return value if 0 < value <= 120 else DEFAULT_TIMEOUT


def _env() -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": os.environ.get("HOME", "/"),
        "GEMINI_CLI_NO_RELAUNCH": "true",
        "DISABLE_AUTOUPDATER": "1",
    }


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _probe(path: str) -> tuple[str | None, str]:
    global _probes
    _probes += 1
    limit = _timeout()
    try:
        proc = subprocess.Popen(
            [path, "--version"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_env(),
            start_new_session=True,  # its own process group: a timeout kills the launcher and its children
        )
    except OSError as e:
        return None, f"`{path} --version` failed: {e}"
    with proc:
        try:
            out, err = proc.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            return None, f"`{path} --version` did not answer within {limit:g} s (MCP_ORCHESTRATOR_VERSION_TIMEOUT)"
    text = out.decode("utf-8", "replace") + err.decode("utf-8", "replace")
    match = _VERSION_RE.search(text)
    if proc.returncode != 0 or match is None:
        return None, f"`{path} --version` exited {proc.returncode}: {text.strip()[:200]}"
    return match.group(0), ""


def binary_version(path: str, mtime_ns: int) -> tuple[str | None, str]:
    """``(version, "")`` or ``(None, why not)`` for the binary at ``path`` as last modified at ``mtime_ns``."""
    key = (path, mtime_ns)
    with _guard:
        lock = _locks.setdefault(key, threading.Lock())
    with lock:
        cached = _cache.get(key)
        if cached is not None and (cached.version is not None or time.monotonic() - cached.at < FAILURE_TTL):
            return cached.version, cached.problem
        version, problem = _probe(path)
        with _guard:
            for old in [k for k in _cache if k[0] == path and k != key]:  # an older build of this binary
                del _cache[old]
            _cache[key] = _Probe(version, problem, time.monotonic())
        return version, problem


def probe_count() -> int:
    """How many ``--version`` probes this process has run."""
    return _probes


def clear_cache() -> None:
    """Forget every cached probe (the next call probes again)."""
    with _guard:
        _cache.clear()
