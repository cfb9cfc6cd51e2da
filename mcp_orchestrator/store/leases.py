"""Leases: which orchestrator instance holds which run, who is alive, and cancel requests between them.

``owned/<instance>/<runId>`` says which instance holds a queued or running run (moved atomically to an
heir when its holder died); ``processes/<instance>.json``, rewritten every heartbeat, proves an instance
is alive and carries its scheduler view; ``cancel/<runId>`` asks whichever instance holds a run to
cancel it, with why.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Mapping

from mcp_orchestrator.store._files import atomic_write
from mcp_orchestrator.store.documents import DocumentFiles

__all__ = ["LeaseFiles"]


class LeaseFiles(DocumentFiles):
    """Ownership markers, heartbeats and cancel requests under ``home``."""

    def own(self, run_id: str, instance: str) -> None:
        """Record that ``instance`` holds ``run_id``."""
        self._mark(self.home / "owned" / instance, run_id)

    def disown(self, run_id: str, instance: str) -> None:
        """Forget that ``instance`` holds ``run_id``."""
        (self.home / "owned" / instance / run_id).unlink(missing_ok=True)

    def owns(self, run_id: str, instance: str) -> bool:
        """Whether ``instance`` still holds ``run_id``."""
        return os.path.exists(f"{self.home}/owned/{instance}/{run_id}")  # a string: pathlib costs more than the stat

    def transfer(self, run_id: str, dead: str, heir: str) -> bool:
        """Move ``run_id`` from ``dead`` to ``heir`` atomically; False if another process got it first."""
        d = self.home / "owned" / heir
        d.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(self.home / "owned" / dead / run_id, d / run_id)
        except FileNotFoundError:
            return False
        return True

    def owners(self) -> dict[str, list[str]]:
        """Every instance holding runs, with the runs it holds."""
        root = self.home / "owned"
        if not root.exists():
            return {}
        return {d.name: sorted(p.name for p in d.iterdir()) for d in root.iterdir() if d.is_dir()}

    def request_cancel(self, run_id: str, reason: str = "") -> None:
        """Leave a cancel request (with why, for the run's record) for whichever instance holds ``run_id``."""
        d = self.home / "cancel"
        d.mkdir(exist_ok=True)
        (d / run_id).write_text(reason[:500], encoding="utf-8")

    def cancel_requests(self, held: frozenset[str]) -> list[tuple[str, str]]:
        """The requested cancels among ``held`` runs, with their reasons ("" if none); each is consumed."""
        d = self.home / "cancel"
        try:
            wanted = [name for name in os.listdir(d) if name in held]
        except FileNotFoundError:
            return []
        out = []
        for name in wanted:
            try:
                reason = (d / name).read_text(encoding="utf-8", errors="replace").strip()
            except OSError:
                reason = ""
            (d / name).unlink(missing_ok=True)
            out.append((name, reason))
        return out

    def beat(self, instance: str, payload: Mapping[str, object]) -> None:
        """Prove ``instance`` is alive (and publish its scheduler view)."""
        d = self.home / "processes"
        d.mkdir(exist_ok=True)
        atomic_write(d / f"{instance}.json", json.dumps(payload, default=str).encode(), fsync=False)

    def heartbeats(self) -> dict[str, tuple[float, dict[str, object]]]:
        """Every instance's last heartbeat: (age in seconds, payload)."""
        out: dict[str, tuple[float, dict[str, object]]] = {}
        d = self.home / "processes"
        if not d.exists():
            return out
        now = time.time()
        for p in d.glob("*.json"):
            try:
                out[p.stem] = (now - p.stat().st_mtime, json.loads(p.read_bytes()))
            except (OSError, ValueError):
                continue
        return out

    def bury(self, instance: str) -> None:
        """Remove a dead instance's heartbeat and (empty) ownership folder."""
        (self.home / "processes" / f"{instance}.json").unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            (self.home / "owned" / instance).rmdir()
