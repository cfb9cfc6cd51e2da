"""Partial failures and the caller's options, with mock workers through the in-memory MCP server.

These need the execution side of the strategy seam: ``execute_run`` honours ``StrategyResult.recovered``
and ``StrategyResult.failure``, and ``dispatch_task`` passes ``applyResult`` and ``keepWorktrees``
to the plan as ``StrategyOptions``.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from mcp import Client
from strategies_support import dispatch, git, read_text, spawn

pytestmark = pytest.mark.anyio

CHOOSE_CX = '[[mock@reviewer say={"choice":"cx","decision":"approve","reasons":"smaller"}]]'


async def writers_and_reviewer(c: Client, workdir: Path, policy: str = "on_error") -> list[str]:
    await spawn(c, "cx", "codex_cli", workdir=str(workdir), fallbackPolicy=policy)
    await spawn(c, "wa", "mock", workdir=str(workdir))
    await spawn(c, "gm", "gemini_cli", role="reviewer", workdir=str(workdir))
    return ["cx", "wa", "gm"]


async def test_one_parallel_branch_fails_the_survivor_is_reviewed(client: Client, root: Path) -> None:
    workers = await writers_and_reviewer(client, root / "work")
    run = await dispatch(
        client, f"do it [[mock@wa fail=unavailable]] {CHOOSE_CX}", "parallel_dual_write_review", workers
    )
    assert run["status"] == "completed", run["summary"]
    assert run["error"] is None
    cx, wa, review = run["steps"]
    assert (cx["status"], wa["status"], review["status"]) == ("completed", "failed", "completed")
    assert wa["failureClass"] == "unavailable"
    assert cx["output"].startswith("mock answer")  # the survivor's result is kept
    assert "continuing with cx: wa failed (unavailable: scripted failure" in run["summary"]
    assert "chosen: cx" in run["summary"]
    md = await read_text(client, f"runs://{run['runId']}/summary")
    assert "- step 1, wa (writer): failed, unavailable: scripted failure (unavailable)" in md


async def test_every_parallel_branch_fails(client: Client, root: Path) -> None:
    workers = await writers_and_reviewer(client, root / "work")
    task = "do it [[mock@writer fail=rate_limited]]"
    run = await dispatch(client, task, "parallel_generate_adjudicate", workers)
    assert run["status"] == "failed"
    assert run["error"]["class"] == "rate_limited"
    assert [s["status"] for s in run["steps"]] == ["failed", "failed"]
    assert "the adjudicator step is skipped: every writer failed" in run["summary"]


async def test_a_failed_writer_hands_over_to_the_other_model(client: Client, root: Path) -> None:
    workers = await writers_and_reviewer(client, root / "work")
    run = await dispatch(
        client,
        'fix [[mock@cx fail=unavailable]] [[mock@reviewer say={"decision":"approve"}]]',
        "codex_writes_gemini_reviews",
        workers,
    )
    assert run["status"] == "completed", run["summary"]
    assert [(s["workerName"], s["role"], s["status"]) for s in run["steps"]] == [
        ("cx", "writer", "failed"),
        ("gm", "writer", "completed"),
        ("gm", "reviewer", "completed"),
    ]
    assert (
        "fallback: gm (gemini_cli) takes the writer role after cx (codex_cli) failed (unavailable); "
        "fallbackPolicy on_error" in run["summary"]
    )
    assert "self-review" in run["summary"]


async def test_no_handover_when_the_policy_says_never(client: Client, root: Path) -> None:
    workers = await writers_and_reviewer(client, root / "work", policy="never")
    run = await dispatch(client, "fix [[mock@cx fail=unavailable]]", "codex_writes_gemini_reviews", workers)
    assert run["status"] == "failed"
    assert run["error"]["class"] == "unavailable"
    assert len(run["steps"]) == 1
    assert "no fallback: cx's fallbackPolicy is never" in run["summary"]
    assert "review skipped" in run["summary"]


async def test_keep_worktrees_on_request(client: Client, repo: Path) -> None:
    workers = await writers_and_reviewer(client, repo)
    run = await dispatch(client, f"x {CHOOSE_CX}", "parallel_dual_write_review", workers, keepWorktrees=True)
    assert run["status"] == "completed", run["summary"]
    for step in run["steps"][:2]:
        assert await anyio.Path(step["workspace"]["workdir"]).is_dir()
    assert "(keepWorktrees)" in run["summary"]
    assert git(repo, "status", "--porcelain") == ""


async def test_apply_without_a_choice_fails_the_run(client: Client, repo: Path) -> None:
    workers = await writers_and_reviewer(client, repo)
    run = await dispatch(client, "x", "parallel_generate_adjudicate", workers, applyResult=True)
    assert run["status"] == "failed"
    assert run["error"] == {"class": "bad_output", "message": "applyResult: no result was chosen, nothing was applied"}
    assert run["steps"][-1]["verdict"]["decision"] == "unparseable"


async def test_apply_of_a_writer_that_changed_nothing(client: Client, repo: Path) -> None:
    workers = await writers_and_reviewer(client, repo)
    run = await dispatch(client, f"x {CHOOSE_CX}", "parallel_generate_adjudicate", workers, applyResult=True)
    assert run["status"] == "completed", run["summary"]
    assert "nothing to apply: cx changed no files" in run["summary"]
