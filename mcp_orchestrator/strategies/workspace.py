"""Isolated writers: one ``git worktree`` and branch per parallel writer, and applying the chosen result.

A writer's worktree lives inside its own workdir, under ``.mcp-orchestrator/worktrees/<run>/<worker>``
(that directory ignores itself, so the main checkout stays clean), on the branch
``mcp-orchestrator/<run>/<worker>`` started at the workdir's ``HEAD``. When the writer is done,
everything it left is committed on that branch; the branch outlives the worktree, so a result can
still be applied after the run. Every git call is an argv list with ``git -C <dir>``; nothing runs
through a shell, and the repository's hooks never run.

Applying a result writes the chosen branch's change into the main workdir as an uncommitted change
(``git apply``), after checking that it applies cleanly; nothing is applied when it does not.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import anyio

from mcp_orchestrator.contracts import Workspace
from mcp_orchestrator.errors import OrchestratorError
from mcp_orchestrator.strategies.remote import Isolated, remote

__all__ = [
    "ApplyError",
    "GitError",
    "Isolated",
    "apply_workspace",
    "change_of",
    "create_worktree",
    "discard_run_worktrees",
    "finalize_worktree",
    "git_base",
    "pending_change",
    "remove_worktree",
    "remove_worktrees",
]

STATE_DIR = ".mcp-orchestrator"
GIT_TIMEOUT = 60.0
MAX_DIFF_BYTES = 4 << 20
MAX_NEW_FILES = 20
MAX_NEW_FILE_BYTES = 20_000
_IDENTITY = ("-c", "user.name=mcp-orchestrator", "-c", "user.email=mcp-orchestrator@localhost")
_QUIET = ("-c", "core.hooksPath=/dev/null", "-c", "commit.gpgsign=false", "-c", "core.quotepath=false")


class GitError(OrchestratorError):
    """A git command failed; ``argv`` and ``stderr`` say which and why."""

    def __init__(self, argv: list[str], returncode: int, stderr: str) -> None:
        super().__init__(f"`{' '.join(argv[:6])}` exited {returncode}: {stderr.strip()[:500]}")
        self.argv = argv
        self.returncode = returncode
        self.stderr = stderr


class ApplyError(OrchestratorError):
    """The chosen result could not be applied to the main workdir; nothing was changed there."""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C", GIT_OPTIONAL_LOCKS="0")
    return env


async def _run(cwd: Path, *args: str, stdin: bytes | None = None, check: bool = True) -> bytes:
    """Run ``git -C cwd args``; its stdout, or ``GitError``."""
    argv = ["git", "-C", str(cwd), *_QUIET, *args]
    try:
        with anyio.fail_after(GIT_TIMEOUT):
            done = await anyio.run_process(argv, input=stdin, check=False, env=_env())
    except FileNotFoundError as e:
        raise GitError(argv, 127, "git is not installed") from e
    except TimeoutError as e:
        raise GitError(argv, -1, f"timed out after {GIT_TIMEOUT:g} s") from e
    if check and done.returncode != 0:
        raise GitError(argv, done.returncode, done.stderr.decode("utf-8", "replace"))
    return done.stdout


async def _git(cwd: Path, *args: str, check: bool = True) -> str:
    """Run ``git -C cwd args``; its stdout as stripped text."""
    return (await _run(cwd, *args, check=check)).decode("utf-8", "replace").strip()


@remote
async def git_base(workdir: Path) -> tuple[Path, str] | str:
    """``(repository top, HEAD commit)`` when ``workdir`` is in a git repository with a commit; else why not."""
    try:
        top = await _git(workdir, "rev-parse", "--show-toplevel")
    except GitError:
        return "not a git repository"
    try:
        head = await _git(workdir, "rev-parse", "--verify", "HEAD^{commit}")
    except GitError:
        return "a git repository without a commit"
    return Path(top), head


@remote
async def create_worktree(workdir: Path, run_id: str, worker: str) -> Isolated | str:
    """A worktree and branch for ``worker`` at ``workdir``'s HEAD; a reason string when it cannot be isolated."""
    base = await git_base(workdir)
    if isinstance(base, str):
        return base
    top, head = base
    state = workdir / STATE_DIR
    await anyio.Path(state).mkdir(parents=True, exist_ok=True)
    await anyio.Path(state / ".gitignore").write_text("*\n")
    worktree = state / "worktrees" / run_id / worker
    branch = f"mcp-orchestrator/{run_id}/{worker}"
    # A run executed again (taken over after a crash) keeps its first attempt's branch: start a new one beside it.
    attempt = 1
    while await anyio.Path(worktree).exists() or await _git(
        top, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", check=False
    ):
        attempt += 1
        worktree = state / "worktrees" / run_id / f"{worker}.{attempt}"
        branch = f"mcp-orchestrator/{run_id}/{worker}.{attempt}"
    await _git(top, "worktree", "add", "--quiet", "-b", branch, str(worktree), head)
    inside = (await anyio.Path(workdir).resolve()).relative_to(await anyio.Path(top).resolve())
    inner = worktree / str(inside)
    record = Workspace(workdir=str(inner), branch=branch, base_commit=head, isolated=True)
    return Isolated(repo=top, worktree=worktree, workdir=inner, workspace=record)


@remote
async def finalize_worktree(iso: Isolated, worker: str) -> tuple[Workspace, list[str]]:
    """Commit what the writer left on its branch; the record (commit, diff stat) and the files changed."""
    ws = iso.workspace
    await _git(iso.worktree, "add", "--all")
    staged = await _git(iso.worktree, "diff", "--cached", "--name-only")
    if staged:
        message = f"{worker}: result of run step (mcp-orchestrator)"
        await _git(iso.worktree, *_IDENTITY, "commit", "--quiet", "--no-verify", "-m", message)
    head = await _git(iso.worktree, "rev-parse", "HEAD")
    if head == ws.base_commit:
        return ws.model_copy(update={"commit": None, "diff_stat": ""}), []
    stat = await _git(iso.worktree, "diff", "--stat=200", f"{ws.base_commit}..{head}")
    names = await _git(iso.worktree, "diff", "--name-only", f"{ws.base_commit}..{head}")
    return ws.model_copy(update={"commit": head, "diff_stat": stat}), [n for n in names.splitlines() if n]


@remote
async def change_of(repo: Path, ws: Workspace) -> str:
    """The writer's change as a unified diff (empty when it changed nothing)."""
    if not ws.commit or not ws.base_commit:
        return ""
    return await _git(repo, "diff", f"{ws.base_commit}..{ws.commit}")


@remote
async def remove_worktrees(isos: list[Isolated]) -> None:
    """Remove the worktrees (at once); a branch stays when it holds a commit and is deleted when it does not."""
    if not isos:
        return

    async def remove(iso: Isolated) -> None:
        await _git(iso.repo, "worktree", "remove", "--force", str(iso.worktree), check=False)

    async with anyio.create_task_group() as tg:
        for iso in isos:
            tg.start_soon(remove, iso)
    by_repo: dict[Path, list[str]] = {}
    for iso in isos:
        by_repo.setdefault(iso.repo, [])
        ref = f"refs/heads/{iso.workspace.branch}"
        head = await _git(iso.repo, "rev-parse", "--verify", "--quiet", ref, check=False)
        if iso.workspace.branch and head == iso.workspace.base_commit:
            by_repo[iso.repo].append(iso.workspace.branch)
    for repo, empty in by_repo.items():
        await _git(repo, "worktree", "prune", check=False)
        if empty:  # one call: concurrent ref deletions would race for the packed-refs lock
            await _git(repo, "branch", "--quiet", "-D", *empty, check=False)
    for run_dir in {iso.worktree.parent for iso in isos}:
        with contextlib.suppress(OSError):
            await anyio.Path(run_dir).rmdir()  # only when the run's last worktree is gone


@remote
async def discard_run_worktrees(workdir: Path, run_id: str) -> list[str]:
    """Remove every worktree a run left under ``workdir`` (after a crash); the paths removed.

    What a writer left uncommitted is committed on its branch first; branches holding a commit stay (they are
    the run's results), empty ones are deleted.
    """
    base = await git_base(workdir)
    if isinstance(base, str):
        return []
    top, _ = base
    run_dir = await anyio.Path(workdir / STATE_DIR / "worktrees" / run_id).resolve()
    listing = await _git(top, "worktree", "list", "--porcelain")
    isos: list[Isolated] = []
    entry: dict[str, str] = {}
    for line in [*listing.splitlines(), ""]:
        if line:
            key, _, value = line.partition(" ")
            entry[key] = value
            continue
        path = Path(entry.get("worktree", ""))
        if path.parent == Path(run_dir) and entry.get("branch", "").startswith("refs/heads/"):
            branch = entry["branch"].removeprefix("refs/heads/")
            merge_base = await _git(top, "merge-base", "HEAD", branch, check=False)
            ws = Workspace(workdir=str(path), branch=branch, base_commit=merge_base or None, isolated=True)
            isos.append(Isolated(repo=top, worktree=path, workdir=path, workspace=ws))
        entry = {}
    for iso in isos:  # what a writer left uncommitted is kept on its branch
        with contextlib.suppress(GitError):
            await finalize_worktree(iso, f"{iso.worktree.name} (recovered)")
    await remove_worktrees(isos)
    return [str(i.worktree) for i in isos]


@remote
async def remove_worktree(iso: Isolated) -> None:
    """Remove one worktree (see ``remove_worktrees``)."""
    await remove_worktrees([iso])


@remote
async def apply_workspace(workdir: Path, ws: Workspace) -> str:
    """Apply the writer's change (``base_commit..commit``) to ``workdir`` as an uncommitted change.

    Checks first (``git apply --check``); raises ``ApplyError`` and changes nothing when the change
    does not apply cleanly (the workdir moved on, or has uncommitted edits to the same lines).
    Returns the diff stat of what was applied.
    """
    if not ws.isolated or not ws.commit or not ws.base_commit:
        raise ApplyError("the chosen writer has no committed change to apply")
    base = await git_base(workdir)
    if isinstance(base, str):
        raise ApplyError(f"{workdir} is {base}")
    top, _ = base
    try:
        patch = await _run(top, "diff", "--binary", "--full-index", f"{ws.base_commit}..{ws.commit}")
    except GitError as e:
        raise ApplyError(f"the change on {ws.branch} cannot be read: {e}") from e
    if len(patch) > MAX_DIFF_BYTES:
        raise ApplyError(f"the change on {ws.branch} is larger than {MAX_DIFF_BYTES >> 20} MiB; merge it with git")
    try:
        await _run(top, "apply", "--check", "--whitespace=nowarn", "-", stdin=patch)
    except GitError as e:
        raise ApplyError(f"the change on {ws.branch} does not apply cleanly to {top}: {e.stderr.strip()[:500]}") from e
    await _run(top, "apply", "--whitespace=nowarn", "-", stdin=patch)
    return ws.diff_stat


@remote
async def pending_change(workdir: Path, limit: int = MAX_DIFF_BYTES) -> str | None:
    """The uncommitted work in ``workdir`` (status, ``git diff HEAD``, new files); ``None`` outside git."""
    base = await git_base(workdir)
    if isinstance(base, str):
        return None
    status = await _git(workdir, "status", "--short", "--untracked-files=all", "--", ".", f":!{STATE_DIR}")
    if not status:
        return ""
    parts = [
        f"git status --short:\n{status}",
        (await _run(workdir, "diff", "HEAD", "--", ".")).decode("utf-8", "replace"),
    ]
    new = await _git(workdir, "ls-files", "--others", "--exclude-standard", "--", ".", f":!{STATE_DIR}")
    for name in new.splitlines()[:MAX_NEW_FILES]:
        # Exit code 1 means "they differ", which a new file always does.
        shown = await _run(workdir, "diff", "--no-index", "--", "/dev/null", name, check=False)
        parts.append(shown.decode("utf-8", "replace")[:MAX_NEW_FILE_BYTES])
    return "\n".join(p for p in parts if p)[:limit]
