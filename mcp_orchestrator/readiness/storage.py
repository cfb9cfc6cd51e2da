"""The store probe: the data directory is writable, its file locks exclude, and there is room to write.

Non-destructive: it writes one temporary document beside the others (atomically, as the store
does), reads it back, takes that document's lock, checks that a second lock on it is refused,
releases it, and removes both files. A data directory that does not exist yet is not created
(the server creates it at start-up); its nearest existing parent is checked instead. It also
reports the panic switch and quarantined documents, which stop or degrade a running server.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mcp_orchestrator.contracts import PanicState
from mcp_orchestrator.readiness._common import elapsed_ms, make_result
from mcp_orchestrator.readiness.models import ProbeResult, ProbeStatus
from mcp_orchestrator.store._files import DocLock, LockTimeout, atomic_write, doc_lock
from mcp_orchestrator.store.slots import TornDocument, document

__all__ = ["MIN_FREE_BYTES", "WARN_FREE_BYTES", "probe_store"]

WARN_FREE_BYTES = 1 << 30  # below 1 GiB free: warn (a step's output may spool up to 64 MiB)
MIN_FREE_BYTES = 64 << 20  # below 64 MiB free: fail

PROBE = "store"


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def _lock_roundtrip(doc: Path) -> str | None:
    """Take ``doc``'s lock, check a second taker is refused, release; the problem, or ``None``."""
    lock = doc_lock(doc)
    try:
        lock.acquire(timeout=5)
    except LockTimeout:
        return f"could not take the lock {lock.lock_file} within 5 s"
    try:
        rival = DocLock(lock.lock_file, timeout=0)
        try:
            rival.acquire(timeout=0)
        except LockTimeout:
            pass
        else:
            rival.release()
            return "a second lock on the same document was granted: this file system does not support file locks"
    finally:
        lock.release()
    try:
        lock.acquire(timeout=1)  # released means free again
    except LockTimeout:
        return "the lock stayed held after it was released"
    lock.release()
    return None


def _write_roundtrip(home: Path, fsync: bool) -> str | None:
    """Write, read back, lock and remove one temporary document; the problem, or ``None``."""
    doc = home / f".readiness-{os.getpid()}-{secrets.token_hex(4)}.json"
    payload = json.dumps({"probe": PROBE, "at": time.time()}).encode()
    try:
        atomic_write(doc, payload, fsync=fsync)
        if doc.read_bytes() != payload:
            return f"{doc} read back different bytes"
        return _lock_roundtrip(doc)
    except OSError as e:
        return f"cannot write in {home}: {e.strerror or e}"
    finally:
        with contextlib.suppress(OSError):
            doc.unlink()
        with contextlib.suppress(OSError):
            doc.with_name(doc.name + ".lock").unlink()


def _panic(home: Path) -> tuple[bool | None, str]:
    try:
        state = PanicState.model_validate_json(document((home / "panic.json").read_bytes()))
    except FileNotFoundError:
        return False, ""
    except (OSError, ValidationError, TornDocument) as e:
        return None, f"panic.json does not read as the panic switch: {type(e).__name__}"
    return state.engaged, state.reason


def probe_store(home: Path, *, fsync: bool = True) -> ProbeResult:
    """Probe the data directory ``home`` (blocking: run it in a worker thread)."""
    start = time.perf_counter()
    facts: dict[str, Any] = {"home": str(home), "exists": home.is_dir()}
    target = home if home.is_dir() else _nearest_existing(home)
    try:
        usage = shutil.disk_usage(target)
    except OSError as e:
        return make_result(PROBE, "fail", f"cannot read {target}: {e}", f"check {home} and its parents", path=str(home))
    facts.update(freeBytes=usage.free, totalBytes=usage.total)
    problems: list[tuple[ProbeStatus, str, str]] = []
    if home.exists() and not home.is_dir():
        problems.append(("fail", "it is not a directory", "set MCP_ORCHESTRATOR_HOME to a directory"))
    elif not home.is_dir():
        if os.access(target, os.W_OK | os.X_OK):
            problems.append(("warn", "it does not exist yet; the server creates it", f"mkdir -p {home}"))
        else:
            problems.append(("fail", f"it does not exist and {target} is not writable", f"mkdir -p {home}"))
    else:
        problem = _write_roundtrip(home, fsync)
        facts["writeAndLock"] = problem is None
        if problem:
            problems.append(("fail", problem, f"make {home} writable by this user (or set MCP_ORCHESTRATOR_HOME)"))
        engaged, reason = _panic(home)
        facts["panicEngaged"] = engaged
        if engaged:
            problems.append(("warn", f"the panic switch is engaged ({reason})", "mcp-orchestrator panic off"))
        elif engaged is None:
            problems.append(("warn", reason, "mcp-orchestrator panic status"))
        quarantine = home / "quarantine"
        count = sum(1 for p in quarantine.iterdir() if not p.name.endswith(".reason.txt")) if quarantine.is_dir() else 0
        facts["quarantined"] = count
        if count:
            problems.append(("warn", f"{count} quarantined document(s)", "mcp-orchestrator store check"))
    free_mib = usage.free >> 20
    if usage.free < MIN_FREE_BYTES:
        problems.append(("fail", f"only {free_mib} MiB free", f"free space on the file system of {home}"))
    elif usage.free < WARN_FREE_BYTES:
        problems.append(("warn", f"only {free_mib} MiB free", f"free space on the file system of {home}"))
    status: ProbeStatus = "fail" if any(p[0] == "fail" for p in problems) else "warn" if problems else "ok"
    head = f"data directory {home}: " + ("; ".join(p[1] for p in problems) if problems else "writable, locks exclude")
    return make_result(
        PROBE,
        status,
        f"{head}; {free_mib} MiB free",
        "; ".join(p[2] for p in problems),
        latency_ms=elapsed_ms(start),
        path=str(home),
        facts=facts,
    )
