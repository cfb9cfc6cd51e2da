"""Workspace operations that an engine may run elsewhere.

A strategy calls the git workspace functions (``create_worktree``, ``pending_change``...) directly. Run
in-process, they run here. Under an engine whose plan code runs away from the workdirs (a Temporal
workflow), the engine sets ``delegate``: each call is then sent, by name and JSON-encoded arguments, to
a process on the machine that holds the workdirs, which runs it with ``call_local``. Errors come back as
the same exception types, so the strategies cannot tell where their workspace lives.

The codec knows only the types these functions take and return (paths, workspaces, isolated worktrees,
lists and tuples of them): no pickle, nothing a cluster could use to run code on a worker.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from mcp_orchestrator.contracts import Workspace

__all__ = ["Delegate", "Isolated", "call_local", "decode", "delegate", "encode", "remote"]

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True)
class Isolated:
    """A writer's isolated checkout: the worktree, where the writer works inside it, and the record."""

    repo: Path
    worktree: Path
    workdir: Path
    workspace: Workspace


Delegate = Callable[[str, list[Any]], Awaitable[Any]]
delegate: ContextVar[Delegate | None] = ContextVar("mcp_orchestrator_workspace_delegate", default=None)
_LOCAL: dict[str, Callable[..., Awaitable[Any]]] = {}


def remote(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Make ``fn`` a workspace operation: local unless a ``delegate`` is set for the calling task."""
    _LOCAL[fn.__name__] = fn

    @functools.wraps(fn)
    async def call(*args: P.args, **kwargs: P.kwargs) -> T:
        send = delegate.get()
        if send is None:
            return await fn(*args, **kwargs)
        if kwargs:
            raise TypeError(f"{fn.__name__}: a delegated workspace call takes positional arguments only")
        result: T = await send(fn.__name__, list(args))
        return result

    return call


async def call_local(name: str, args: list[Any]) -> Any:
    """Run the workspace operation ``name`` here (on the machine that holds the workdirs)."""
    fn = _LOCAL.get(name)
    if fn is None:
        raise LookupError(f"no workspace operation {name!r}")
    return await fn(*args)


def encode(value: Any) -> Any:
    """``value`` as JSON-ready data with type tags for paths, workspaces and isolated worktrees."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, Path):
        return {"$path": str(value)}
    if isinstance(value, Workspace):
        return {"$workspace": value.model_dump(mode="json")}
    if isinstance(value, Isolated):
        return {"$isolated": {k: encode(getattr(value, k)) for k in ("repo", "worktree", "workdir", "workspace")}}
    if isinstance(value, tuple):
        return {"$tuple": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    raise TypeError(f"cannot send a {type(value).__name__} to a workspace operation")


def decode(value: Any) -> Any:
    """The inverse of ``encode``."""
    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "$path" in value:
        return Path(value["$path"])
    if "$workspace" in value:
        return Workspace.model_validate(value["$workspace"])
    if "$isolated" in value:
        return Isolated(**{k: decode(v) for k, v in value["$isolated"].items()})
    if "$tuple" in value:
        return tuple(decode(v) for v in value["$tuple"])
    raise TypeError(f"unknown workspace value {sorted(value)}")
