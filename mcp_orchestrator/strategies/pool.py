"""Parallel writers: each in its own git worktree when it can be, all at once, none lost when one fails.

``writer_pool`` prepares the workspaces and removes them at the end (unless the caller keeps them);
``write_all`` runs every writer concurrently and records each one's workspace on its step;
``candidate_sections`` shows the results to the reviewer or adjudicator; ``apply_chosen`` applies
the chosen result to its main workdir when the caller asked for it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import anyio

from mcp_orchestrator.contracts import Step, WorkerRecord, Workspace
from mcp_orchestrator.strategies.base import StrategyContext, StrategyOptions
from mcp_orchestrator.strategies.common import Ledger, reason, run_phase
from mcp_orchestrator.strategies.prompts import Section
from mcp_orchestrator.strategies.workspace import (
    ApplyError,
    GitError,
    Isolated,
    apply_workspace,
    change_of,
    create_worktree,
    finalize_worktree,
    remove_worktrees,
)

__all__ = ["Candidate", "apply_chosen", "candidate_sections", "record", "write_all", "writer_pool"]


@dataclass
class Candidate:
    """One parallel writer: its worker, its isolated checkout (if any), its step and its change."""

    worker: WorkerRecord
    iso: Isolated | None = None
    step: Step | None = None
    diff: str = ""
    files: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the writer's last step completed."""
        return self.step is not None and self.step.status == "completed"

    @property
    def workspace(self) -> Workspace | None:
        """Where the writer's result is."""
        return self.step.workspace if self.step is not None else None


@asynccontextmanager
async def writer_pool(
    ctx: StrategyContext, writers: list[WorkerRecord], ledger: Ledger, options: StrategyOptions
) -> AsyncIterator[list[Candidate]]:
    """Candidates for ``writers``, each in its own worktree when its workdir is in a git repository with a commit."""
    pool = [Candidate(w) for w in writers]
    try:
        for c in pool:
            workdir = Path(c.worker.workdir)
            try:
                made = await create_worktree(workdir, ctx.run_id, c.worker.name)
            except GitError as e:
                made = f"its worktree could not be created ({e})"
            if isinstance(made, str):
                ledger.add(f"{c.worker.name} works in {workdir} itself, not isolated: {made}")
            else:
                c.iso = made
                ledger.add(
                    f"{c.worker.name} works in its own worktree {made.worktree} on branch {made.workspace.branch}"
                )
        shared = [c for c in pool if c.iso is None]
        if len(shared) > 1 and len({c.worker.workdir for c in shared}) < len(shared):
            ledger.add("writers without isolation share a workdir: their changes mix there")
        yield pool
    finally:
        isolated = [c.iso for c in pool if c.iso is not None]
        if options.keep_worktrees:
            ledger.lines.extend(f"kept worktree {iso.worktree} (keepWorktrees)" for iso in isolated)
        else:
            with anyio.CancelScope(shield=True):
                await remove_worktrees(isolated)


def _relative(path: str, root: Path | None) -> str:
    """A reported path relative to the worktree when it is inside it."""
    if root is None:
        return path
    try:
        return str(Path(path).resolve().relative_to(root.resolve()))
    except (ValueError, OSError):
        return path


async def record(ctx: StrategyContext, c: Candidate, ledger: Ledger) -> None:
    """Commit what the writer left (even after a failure: partial work is kept) and store its workspace."""
    assert c.step is not None
    if c.iso is None:
        ws = Workspace(workdir=c.worker.workdir, isolated=False)
        files = list(c.step.files_changed)
    else:
        try:
            ws, files = await finalize_worktree(c.iso, c.worker.name)
            c.diff = await change_of(c.iso.repo, ws)
        except GitError as e:
            ws, files = c.iso.workspace, []
            ledger.add(f"could not commit {c.worker.name}'s work on {c.iso.workspace.branch}: {e}")
        reported = [_relative(p, c.iso.worktree) for p in c.step.files_changed]
        files = list(dict.fromkeys([*files, *reported]))
    c.files = files
    c.step = c.step.model_copy(update={"workspace": ws, "files_changed": files[:200]})
    await ctx.save_step(c.step)


async def write_all(ctx: StrategyContext, pool: list[Candidate], phase: str) -> Ledger:
    """Run every candidate's step at once; the returned ledger lists how each ended, in pool order."""
    ledger = Ledger()
    notes: dict[str, Ledger] = {c.worker.name: Ledger() for c in pool}

    async def one(c: Candidate) -> None:
        workdir = c.iso.workdir if c.iso is not None else None
        c.step = await run_phase(ctx, c.worker, phase, [], workdir=workdir)
        await record(ctx, c, notes[c.worker.name])

    async with anyio.create_task_group() as tg:
        for c in pool:
            tg.start_soon(one, c)
    for c in pool:
        assert c.step is not None
        ledger.step(c.step, phase)
        ledger.lines.extend(notes[c.worker.name].lines)
        ws = c.workspace
        if ws is not None and ws.isolated:
            change = f"commit {ws.commit[:12]}, {len(c.files)} file(s)" if ws.commit else "no changes"
            ledger.add(f"  {c.worker.name}: {change} on {ws.branch}")
    return ledger


def candidate_sections(pool: list[Candidate]) -> list[Section]:
    """Each survivor's report and change for the reader; a line for each writer that failed."""
    out: list[Section] = []
    for c in pool:
        name = f"{c.worker.name} ({c.worker.model})"
        if c.step is None:
            continue
        if not c.ok:
            out.append(Section(f"{name}: failed", f"{reason(c.step)}. Not a candidate."))
            continue
        out.append(Section(f"Candidate {name}: report", c.step.output or "(no report)"))
        ws = c.workspace
        if ws is not None and ws.isolated:
            where = f"Its files are in {ws.workdir} (branch {ws.branch}, from {ws.base_commit}).\n"
            out.append(Section(f"Candidate {name}: diff", where + (c.diff or "(no changes)")))
        elif c.files:
            out.append(Section(f"Candidate {name}: files changed", "\n".join(c.files)))
    return out


async def apply_chosen(c: Candidate, ledger: Ledger, options: StrategyOptions) -> None:
    """Apply the chosen candidate's change to its main workdir when the caller asked for it."""
    ws = c.workspace
    if not options.apply_result:
        if ws is not None and ws.isolated and ws.commit:
            ledger.add(f"the chosen result is on branch {ws.branch} (commit {ws.commit[:12]}); not applied")
        return
    if ws is None or not ws.isolated:
        ledger.add(f"nothing to apply: {c.worker.name} worked in {c.worker.workdir} itself")
        return
    if not ws.commit:
        ledger.add(f"nothing to apply: {c.worker.name} changed no files")
        return
    try:
        stat = await apply_workspace(Path(c.worker.workdir), ws)
    except (ApplyError, GitError) as e:
        ledger.fail("process_error", f"applyResult: {e}")
        return
    ledger.add(f"applied {c.worker.name}'s change (branch {ws.branch}) to {c.worker.workdir}:\n{stat}")
