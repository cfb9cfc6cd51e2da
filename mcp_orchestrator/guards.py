"""Input guards shared by every entry point: ids, names and the workdir jail."""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

from mcp_orchestrator.errors import InvalidArgument, PathNotAllowed

__all__ = ["check_agent_id", "check_machine", "check_name", "check_run_id", "jail_workdir", "this_machine"]

_AGENT_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# Names become file names: no leading dot, so "." and ".." can never appear.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_RUN_ID = re.compile(r"run_[0-9a-f]{12}[0-9a-f]{8}")
_MACHINE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")  # a task queue name's suffix: short, no "@" or "/"
_MAX_PATH = 4096  # PATH_MAX: no longer path can name a directory


def _show(value: str, limit: int = 200) -> str:
    """``value`` quoted for an error message, cut so a huge argument never comes back whole."""
    return repr(value if len(value) <= limit else value[:limit] + "…")


def check_agent_id(value: object) -> str:
    """Return ``value`` if it is a valid agentId, else raise ``InvalidArgument``."""
    if not isinstance(value, str) or not _AGENT_ID.fullmatch(value):
        raise InvalidArgument(
            "agentId",
            "must be 1-64 characters of A-Z a-z 0-9 . _ -",
            hint="Pass a stable id for the calling agent, e.g. agentId='claude-main'.",
        )
    return value


def check_name(value: object, field: str = "name") -> str:
    """Return ``value`` if it is a valid worker name, else raise ``InvalidArgument``."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise InvalidArgument(
            field,
            "must be 1-64 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit",
            hint="Choose a short name such as 'writer-1'.",
        )
    return value


def check_machine(value: object, field: str = "machine") -> str:
    """Return ``value`` if it is a valid machine name (a worker process's placement), else ``InvalidArgument``."""
    if not isinstance(value, str) or not _MACHINE.fullmatch(value):
        raise InvalidArgument(
            field,
            f"{_show(str(value), 80)} is not a machine name: 1-63 characters of A-Z a-z 0-9 . _ -, "
            "starting with a letter or digit",
            hint="Use the name the machine's `mcp-orchestrator worker --machine NAME` serves, e.g. 'build-1'.",
        )
    return value


def this_machine(configured: str | None = None) -> str:
    """This machine's name: ``configured`` (``MCP_ORCHESTRATOR_MACHINE``), else the hostname (its first label
    when the whole name is too long or not a valid machine name)."""
    if configured:
        return check_machine(configured, "MCP_ORCHESTRATOR_MACHINE")
    host = socket.gethostname()
    if _MACHINE.fullmatch(host):
        return host
    label = host.split(".", 1)[0][:63]
    return label if _MACHINE.fullmatch(label) else "localhost"


def check_run_id(value: object, field: str = "runId") -> str:
    """Return ``value`` if it has the shape of a run id, else raise ``InvalidArgument``."""
    if not isinstance(value, str) or not _RUN_ID.fullmatch(value):
        raise InvalidArgument(
            field,
            "is not a run id (run_ followed by 20 hex digits)",
            hint="Use a runId returned by dispatch_task or list_worker_runs.",
        )
    return value


def jail_workdir(value: str | None, roots: tuple[Path, ...]) -> Path:
    """Resolve a workdir (symlinks followed) and require it inside an allowed root.

    ``None`` means the first root. Relative paths are taken from the first root.
    """
    if value is None or value == "":
        return roots[0]
    if "\x00" in value:
        raise InvalidArgument("workdir", "contains a NUL byte", hint="Pass a plain directory path.")
    if len(value) > _MAX_PATH:
        raise InvalidArgument("workdir", f"is longer than {_MAX_PATH} characters", hint="Pass a plain directory path.")
    shown = _show(value)
    raw = Path(value)
    candidate = raw if raw.is_absolute() else roots[0] / raw
    try:
        resolved = candidate.resolve(strict=True)
    except (OSError, RuntimeError) as e:
        raise PathNotAllowed("workdir", f"{shown} does not exist or cannot be resolved", roots=list(roots)) from e
    if not resolved.is_dir():
        raise PathNotAllowed("workdir", f"{shown} is not a directory", roots=list(roots))
    for root in roots:
        if resolved == root or resolved.is_relative_to(root):
            if not os.access(resolved, os.R_OK | os.X_OK):
                raise PathNotAllowed("workdir", f"{shown} is not readable", roots=list(roots))
            return resolved
    raise PathNotAllowed(
        "workdir", f"{shown} resolves to {_show(str(resolved))}, outside the allowed roots", roots=list(roots)
    )
