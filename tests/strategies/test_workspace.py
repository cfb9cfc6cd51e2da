"""Isolated writers with real git: worktrees, commits, diffs, clean-up and applying the chosen result."""

from __future__ import annotations

from pathlib import Path

import pytest
from strategies_support import git, make_repo

from mcp_orchestrator.strategies.workspace import (
    STATE_DIR,
    ApplyError,
    apply_workspace,
    change_of,
    create_worktree,
    discard_run_worktrees,
    finalize_worktree,
    git_base,
    pending_change,
    remove_worktree,
    remove_worktrees,
)

pytestmark = pytest.mark.anyio


async def test_two_writers_change_the_same_file_without_clobbering(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    a = await create_worktree(repo, "run_1", "wa")
    b = await create_worktree(repo, "run_1", "wb")
    assert not isinstance(a, str)
    assert not isinstance(b, str)
    assert a.worktree != b.worktree
    assert a.workspace.branch == "mcp-orchestrator/run_1/wa"
    assert a.workspace.base_commit == base
    (a.workdir / "shared.txt").write_text("base\nfrom a\n")
    (b.workdir / "shared.txt").write_text("base\nfrom b\n")
    (b.workdir / "new.txt").write_text("only b\n")

    ws_a, files_a = await finalize_worktree(a, "wa")
    ws_b, files_b = await finalize_worktree(b, "wb")
    assert files_a == ["shared.txt"]
    assert sorted(files_b) == ["new.txt", "shared.txt"]
    assert ws_a.commit and ws_b.commit and ws_a.commit != ws_b.commit
    assert "shared.txt" in ws_a.diff_stat
    assert "+from a" in await change_of(repo, ws_a)
    assert git(repo, "show", f"{ws_a.branch}:shared.txt") == "base\nfrom a"
    assert git(repo, "show", f"{ws_b.branch}:shared.txt") == "base\nfrom b"
    # The main checkout is untouched and clean: the state directory ignores itself.
    assert (repo / "shared.txt").read_text() == "base\n"
    assert git(repo, "status", "--porcelain") == ""

    await remove_worktree(a)
    await remove_worktree(b)
    assert not a.worktree.exists()
    assert not (repo / STATE_DIR / "worktrees" / "run_1").exists()
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    # Branches with a commit stay, so a result can still be applied after the run.
    assert git(repo, "branch", "--list", "mcp-orchestrator/*").split() == [
        "mcp-orchestrator/run_1/wa",
        "mcp-orchestrator/run_1/wb",
    ]

    stat = await apply_workspace(repo, ws_b)
    assert "new.txt" in stat
    assert (repo / "shared.txt").read_text() == "base\nfrom b\n"
    assert (repo / "new.txt").read_text() == "only b\n"
    assert git(repo, "rev-parse", "HEAD") == base  # applied as an uncommitted change


async def test_apply_that_does_not_fit_changes_nothing(repo: Path) -> None:
    iso = await create_worktree(repo, "run_2", "wa")
    assert not isinstance(iso, str)
    (iso.workdir / "shared.txt").write_text("base\nfrom a\n")
    ws, _ = await finalize_worktree(iso, "wa")
    await remove_worktree(iso)
    (repo / "shared.txt").write_text("edited meanwhile\n")
    with pytest.raises(ApplyError, match="does not apply cleanly"):
        await apply_workspace(repo, ws)
    assert (repo / "shared.txt").read_text() == "edited meanwhile\n"


async def test_a_writer_without_changes_leaves_no_branch(repo: Path) -> None:
    iso = await create_worktree(repo, "run_3", "idle")
    assert not isinstance(iso, str)
    ws, files = await finalize_worktree(iso, "idle")
    assert (ws.commit, files, ws.diff_stat) == (None, [], "")
    await remove_worktree(iso)
    assert git(repo, "branch", "--list", "mcp-orchestrator/*") == ""
    with pytest.raises(ApplyError, match="no committed change"):
        await apply_workspace(repo, ws)


async def test_subdirectory_workdir_and_non_git_dirs(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"pkg/mod.py": "x = 1\n"})
    iso = await create_worktree(repo / "pkg", "run_4", "w")
    assert not isinstance(iso, str)
    assert iso.workdir == iso.worktree / "pkg"
    assert (iso.workdir / "mod.py").read_text() == "x = 1\n"
    await remove_worktree(iso)

    plain = tmp_path / "plain"
    plain.mkdir()
    assert await create_worktree(plain, "run_4", "w") == "not a git repository"
    assert await pending_change(plain) is None
    unborn = tmp_path / "unborn"
    unborn.mkdir()
    git(unborn, "init", "--quiet")
    assert await git_base(unborn) == "a git repository without a commit"


async def test_pending_change_shows_edits_and_new_files(repo: Path) -> None:
    assert await pending_change(repo) == ""
    (repo / "app.py").write_text("import os\nos.system(input())\n")
    (repo / "secret.txt").write_text("token=abc\n")
    change = await pending_change(repo)
    assert change is not None
    assert "M app.py" in change
    assert "+os.system(input())" in change
    assert "+token=abc" in change


async def test_worktrees_left_by_a_crash_are_discarded_keeping_the_work(repo: Path) -> None:
    busy = await create_worktree(repo, "run_5", "busy")
    idle = await create_worktree(repo, "run_5", "idle")
    other = await create_worktree(repo, "run_6", "w")
    assert not isinstance(busy, str) and not isinstance(idle, str) and not isinstance(other, str)
    (busy.workdir / "half.txt").write_text("half done\n")  # the server died before committing this

    removed = await discard_run_worktrees(repo, "run_5")
    assert sorted(removed) == sorted([str(busy.worktree), str(idle.worktree)])
    assert not busy.worktree.exists() and not idle.worktree.exists()
    assert other.worktree.exists()  # another run's worktree is left alone
    assert git(repo, "show", "mcp-orchestrator/run_5/busy:half.txt") == "half done"
    assert git(repo, "branch", "--list", "mcp-orchestrator/run_5/*").split() == ["mcp-orchestrator/run_5/busy"]
    assert await discard_run_worktrees(repo, "run_5") == []
    await remove_worktrees([other])


async def test_a_run_executed_again_gets_fresh_branches(repo: Path) -> None:
    first = await create_worktree(repo, "run_7", "w")
    assert not isinstance(first, str)
    (first.workdir / "shared.txt").write_text("first attempt\n")
    await finalize_worktree(first, "w")
    await remove_worktrees([first])
    again = await create_worktree(repo, "run_7", "w")
    assert not isinstance(again, str)
    assert again.workspace.branch == "mcp-orchestrator/run_7/w.2"
    assert (again.workdir / "shared.txt").read_text() == "base\n"
    assert git(repo, "show", "mcp-orchestrator/run_7/w:shared.txt") == "first attempt"
    await remove_worktrees([again])
