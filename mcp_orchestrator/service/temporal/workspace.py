"""Git workspace operations of a workflow's plan, executed as activities where the workdirs are."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from temporalio import activity

from mcp_orchestrator.guards import jail_workdir
from mcp_orchestrator.strategies.remote import call_local, decode, encode
from mcp_orchestrator.strategies.workspace import ApplyError, GitError, Isolated

__all__ = ["WORKSPACE_ACTIVITY", "WorkspaceActivity", "WorkspaceCall", "raise_from"]

WORKSPACE_ACTIVITY = "mcp-orchestrator.workspace"


class WorkspaceCall(BaseModel):
    """A git workspace operation by name, with JSON-encoded arguments (``strategies.remote``)."""

    name: str
    args: list[Any] = Field(default_factory=list)


def raise_from(answer: dict[str, Any]) -> None:
    """Raise the git or apply error a workspace activity answered with, as the type the strategies catch."""
    if "gitError" in answer:
        e = answer["gitError"]
        raise GitError(list(e["argv"]), int(e["returncode"]), str(e["stderr"]))
    if "applyError" in answer:
        raise ApplyError(str(answer["applyError"]))


class WorkspaceActivity:
    """Serves workspace operations on paths inside this machine's roots."""

    def __init__(self, roots: tuple[Path, ...]) -> None:
        self.roots = roots

    @activity.defn(name=WORKSPACE_ACTIVITY)
    async def workspace(self, call: WorkspaceCall) -> dict[str, Any]:
        """Run one git workspace operation here; git and apply errors travel back by type."""
        args = decode(call.args)
        for value in args:  # never outside this machine's roots, whatever the cluster asks
            paths = [value.repo, value.workdir] if isinstance(value, Isolated) else [value]
            for path in paths:
                if isinstance(path, Path):
                    jail_workdir(str(path), self.roots)
        try:
            return {"ok": encode(await call_local(call.name, args))}
        except GitError as e:
            return {"gitError": {"argv": e.argv, "returncode": e.returncode, "stderr": e.stderr}}
        except ApplyError as e:
            return {"applyError": str(e)}
