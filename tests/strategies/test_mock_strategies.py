"""Every strategy and playbook through the in-memory MCP server, with mock workers.

The mock runtime answers deterministically; a directive keyed to one worker or role
(``[[mock@wa fail=unavailable]]``, ``[[mock@reviewer say=...]]``) scripts just that step, so a test can
fail one parallel branch or give a reviewer its verdict. ``say`` values have no spaces and no ``]``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from strategies_support import AGENT, call, dispatch, git, read_text, spawn, tool_error
from support.temporal_workers import temporal_settings, worker_process

from mcp_orchestrator.config import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["local", "temporal"])
def settings(request: pytest.FixtureRequest, data_home: Path, root: Path, tmp_path: Path) -> Iterator[Settings]:
    """Every test here on both engines: the in-process scheduler, and Temporal with one worker process."""
    if request.param == "local":
        yield Settings(home=data_home, roots=(root,), retry_attempts=1)
        return
    server = request.getfixturevalue("temporal_server")
    prefix = request.getfixturevalue("temporal_prefix").rstrip("-")
    with worker_process(server, prefix, tmp_path / "worker-home", (root,)):
        yield temporal_settings(server, prefix, data_home, (root,), retry_attempts=1)


APPROVE = '[[mock@reviewer say={"decision":"approve","rationale":"fine"}]]'
CHOOSE_CX = '[[mock@reviewer say={"choice":"cx","decision":"approve","reasons":"smaller"}]]'
AUDIT_OK = '[[mock@auditor say={"decision":"approve"}]]'
FINDING = (
    '[[mock@auditor say={"decision":"request_changes","findings":{"severity":"high","location":"app.py:1",'
    '"description":"shell_injection","suggestedFix":"argv_list"},"rationale":"one_blocker"}]]'
)


async def team(c: Client, workdir: Path, **extra: Any) -> list[str]:
    """cx (codex_cli, writer), gm (gemini_cli, reviewer), wa (mock, writer), all on the mock runtime."""
    await spawn(c, "cx", "codex_cli", workdir=str(workdir), **extra)
    await spawn(c, "gm", "gemini_cli", role="reviewer", workdir=str(workdir))
    await spawn(c, "wa", "mock", workdir=str(workdir))
    return ["cx", "gm", "wa"]


def shape(run: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(s["workerName"], s["role"], s["status"]) for s in run["steps"]]


EXPECTED = {
    "single_worker": [("cx", "writer", "completed")],
    "codex_writes_gemini_reviews": [("cx", "writer", "completed"), ("gm", "reviewer", "completed")],
    "gemini_writes_codex_reviews": [("gm", "writer", "completed"), ("cx", "reviewer", "completed")],
    "parallel_dual_write_review": [
        ("cx", "writer", "completed"),
        ("wa", "writer", "completed"),
        ("gm", "reviewer", "completed"),
    ],
    "security_redteam_pass": [("gm", "auditor", "completed")],
    "reviewer_first_plan": [
        ("gm", "planner", "completed"),
        ("cx", "writer", "completed"),
        ("gm", "reviewer", "completed"),
    ],
    "parallel_generate_adjudicate": [
        ("cx", "writer", "completed"),
        ("wa", "writer", "completed"),
        ("gm", "reviewer", "completed"),
    ],
}


@pytest.mark.parametrize("strategy", list(EXPECTED))
async def test_every_strategy_completes(client: Client, root: Path, strategy: str) -> None:
    workers = await team(client, root / "work")
    directives = CHOOSE_CX if "parallel" in strategy else f"{APPROVE} {AUDIT_OK}"
    run = await dispatch(client, f"tidy up {directives}", strategy, workers)
    assert run["status"] == "completed", run["summary"]
    assert run["error"] is None
    assert shape(run) == EXPECTED[strategy]
    assert run["summary"]
    if strategy != "single_worker":
        final = run["steps"][-1]["verdict"]
        assert final["decision"] == "approve"
    if "parallel" in strategy:
        assert run["steps"][-1]["verdict"]["rationale"] == "chose cx: smaller"
        assert "chosen: cx (codex_cli)" in run["summary"]
        # Not a git repository: the writers share the workdir, and the run says so.
        for step in run["steps"][:2]:
            assert step["workspace"] == {
                "workdir": str(root / "work"),
                "branch": None,
                "baseCommit": None,
                "commit": None,
                "diffStat": "",
                "isolated": False,
            }
        assert "not isolated: not a git repository" in run["summary"]


async def test_an_unparseable_verdict_is_recorded_not_guessed(client: Client, root: Path) -> None:
    workers = await team(client, root / "work")
    run = await dispatch(client, "looks great to me, approve it", "codex_writes_gemini_reviews", workers)
    assert run["status"] == "completed"
    verdict = run["steps"][1]["verdict"]
    assert verdict["decision"] == "unparseable"
    assert verdict["findings"] == []
    assert "no verdict block" in verdict["rationale"]


async def test_red_team_returns_structured_findings(client: Client, root: Path) -> None:
    workers = await team(client, root / "work")
    run = await dispatch(client, f"attack it {FINDING}", "security_redteam_pass", workers)
    assert run["status"] == "completed"
    (step,) = run["steps"]
    assert step["role"] == "auditor"  # a read-only role in every CLI's own permission mode
    assert step["verdict"] == {
        "decision": "request_changes",
        "findings": [
            {"severity": "high", "location": "app.py:1", "description": "shell_injection", "suggestedFix": "argv_list"}
        ],
        "rationale": "one_blocker",
    }
    assert "verdict: request_changes (1 high)" in run["summary"]


async def test_missing_roles_are_named(client: Client, root: Path) -> None:
    await spawn(client, "m1", workdir=str(root / "work"))
    text = await tool_error(
        client, "dispatch_task", agentId=AGENT, task="x", strategy="codex_writes_gemini_reviews", workers=["m1"]
    )
    assert "codex_writes_gemini_reviews needs a writer (codex_cli) and a reviewer (gemini_cli)" in text
    assert "you gave: m1 (mock, writer)" in text
    text = await tool_error(
        client, "dispatch_task", agentId=AGENT, task="x", strategy="parallel_generate_adjudicate", workers=["m1"]
    )
    assert "two or more writers" in text
    text = await tool_error(client, "dispatch_task", agentId=AGENT, task="x", strategy="no_such_plan")
    assert "strategy" in text


async def test_parallel_writers_are_isolated_in_a_git_repository(client: Client, repo: Path) -> None:
    workers = await team(client, repo)
    head = git(repo, "rev-parse", "HEAD")
    run = await dispatch(client, f"edit shared.txt {CHOOSE_CX}", "parallel_dual_write_review", workers)
    assert run["status"] == "completed", run["summary"]
    writers = run["steps"][:2]
    for step in writers:
        ws = step["workspace"]
        assert ws["isolated"] is True
        assert ws["baseCommit"] == head
        assert ws["branch"] == f"mcp-orchestrator/{run['runId']}/{step['workerName']}"
        assert ws["workdir"] == str(repo / ".mcp-orchestrator" / "worktrees" / run["runId"] / step["workerName"])
        assert ws["commit"] is None  # mock writers change nothing
        assert not await anyio.Path(ws["workdir"]).exists()  # removed at the end
    assert "works in its own worktree" in run["summary"]
    assert git(repo, "branch", "--list", "mcp-orchestrator/*") == ""  # empty branches are not left behind
    assert git(repo, "status", "--porcelain") == ""


async def test_list_runs_by_strategy(client: Client, root: Path) -> None:
    workers = await team(client, root / "work")
    await dispatch(client, f"a {APPROVE}", "codex_writes_gemini_reviews", workers)
    await dispatch(client, "b", "single_worker", ["wa"])
    listed = await call(client, "list_worker_runs", strategy="codex_writes_gemini_reviews")
    assert [r["strategy"] for r in listed["runs"]] == ["codex_writes_gemini_reviews"]


async def test_summary_resource_is_an_audit(client: Client, root: Path) -> None:
    workers = await team(client, root / "work")
    run = await dispatch(client, f"tidy {APPROVE}", "reviewer_first_plan", workers)
    md = await read_text(client, f"runs://{run['runId']}/summary")
    assert md.startswith(f"# Run {run['runId']}: reviewer_first_plan, completed")
    assert "| 0 | gm | planner | mock | completed |" in md
    assert "| 1 | cx | writer | mock | completed |" in md
    assert "| 2 | gm | reviewer | mock | completed |" in md
    assert "### Step 2: gm (reviewer) - approve" in md
    assert "## Failures\n\nNone." in md
    templates = await client.list_resource_templates()
    summary = [t for t in templates.resource_templates if t.uri_template == "runs://{run_id}/summary"]
    assert summary and summary[0].mime_type == "text/markdown"
    with pytest.raises(Exception, match="No run"):
        await read_text(client, "runs://run_000000000000aaaaaaaa/summary")


async def test_the_adjudicator_can_ask_for_a_merge(client: Client, repo: Path) -> None:
    workers = await team(client, repo)
    merge = (
        '[[mock@reviewer say={"choice":"merge","base":"cx","mergeInstructions":"take_the_tests_of_wa",'
        '"decision":"approve","reasons":"both_half_right"}]]'
    )
    run = await dispatch(client, f"write it {merge}", "parallel_generate_adjudicate", workers)
    assert run["status"] == "completed", run["summary"]
    assert shape(run) == [
        ("cx", "writer", "completed"),
        ("wa", "writer", "completed"),
        ("gm", "reviewer", "completed"),
        ("cx", "writer", "completed"),
    ]
    merged = run["steps"][3]
    assert merged["workspace"]["isolated"] is True
    assert merged["workspace"]["branch"] == run["steps"][0]["workspace"]["branch"]  # merged on cx's own branch
    assert run["steps"][2]["verdict"]["rationale"] == "merge into cx: both_half_right"
    assert "merge: cx merges the other results into its own" in run["summary"]
    assert "chosen: cx (codex_cli)" in run["summary"]


async def test_a_huge_task_is_cut_to_the_prompt_budget(client: Client, root: Path) -> None:
    workers = await team(client, root / "work")
    task = "word " * 40_000  # 200,000 characters, the largest task dispatch accepts
    run = await dispatch(client, task, "codex_writes_gemini_reviews", workers)
    assert run["status"] == "completed"
    for step in run["steps"]:
        # The mock counts the prompt's words as its input tokens: 24,000 characters hold under 5,000 words.
        assert step["usage"]["inputTokens"] < 5_000, step["usage"]
