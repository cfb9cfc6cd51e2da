"""Looking at processes through /proc from tests: who descends from whom, who is still running."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["alive", "cmdline", "descendants", "pids_with_arg"]

_PROC = Path("/proc")


def _stat(pid: int) -> tuple[str, int] | None:
    try:
        raw = (_PROC / str(pid) / "stat").read_bytes()
    except OSError:
        return None
    fields = raw[raw.rfind(b")") + 2 :].split()
    return fields[0].decode(), int(fields[1])


def _all() -> dict[int, tuple[str, int]]:
    found = {}
    for entry in os.listdir(_PROC):
        if entry.isdigit() and (st := _stat(int(entry))) is not None:
            found[int(entry)] = st
    return found


def descendants(pid: int) -> set[int]:
    """Every live (non-zombie) process below ``pid``."""
    stats = _all()
    children: dict[int, list[int]] = {}
    for child, (_, ppid) in stats.items():
        children.setdefault(ppid, []).append(child)
    out: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in out:
                out.add(child)
                todo.append(child)
    return {p for p in out if stats[p][0] != "Z"}


def cmdline(pid: int) -> list[str]:
    """The argv of ``pid`` (empty if it is gone)."""
    try:
        raw = (_PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]


def pids_with_arg(arg: str) -> set[int]:
    """Live processes that have ``arg`` as one of their arguments."""
    return {pid for pid, (state, _) in _all().items() if state != "Z" and arg in cmdline(pid)}


def alive(pids: set[int]) -> set[int]:
    """The subset of ``pids`` still running (zombies count as gone)."""
    out = set()
    for pid in pids:
        st = _stat(pid)
        if st is not None and st[0] != "Z":
            out.add(pid)
    return out
