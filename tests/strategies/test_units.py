"""The pure parts of the strategies: prompt budgets and templates, verdict parsing, worker selection, the audit."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from mcp_orchestrator.contracts import Finding, Run, Step, Usage, Verdict, WorkerRecord, Workspace, utcnow
from mcp_orchestrator.errors import UsageError
from mcp_orchestrator.strategies import audit_summary, get_strategy
from mcp_orchestrator.strategies.prompts import (
    TEMPLATE_NAMES,
    TEMPLATES_ENV,
    Section,
    build_prompt,
    cut_middle,
    heading,
    load_template,
)
from mcp_orchestrator.strategies.verdicts import parse_choice, parse_verdict

# ---- prompts ----------------------------------------------------------------------------------


def test_cut_middle_keeps_head_and_tail_within_the_limit() -> None:
    text = "HEAD" + "x" * 10_000 + "TAIL"
    cut = cut_middle(text, 500)
    assert len(cut) <= 500
    assert cut.startswith("HEAD")
    assert cut.endswith("TAIL")
    assert "characters cut" in cut
    assert cut_middle("short", 500) == "short"


def test_prompt_is_bounded_and_keeps_instructions_whole() -> None:
    big = "y" * 100_000
    prompt = build_prompt("w1", "reviewer", "INSTRUCTIONS " * 50, "the task", [Section("Huge", big)], budget=24_000)
    assert len(prompt) <= 24_000
    assert prompt.startswith(heading("w1", "reviewer"))
    assert ("INSTRUCTIONS " * 50).strip() in prompt
    assert "the task" in prompt  # a short section stays whole while a long one is cut
    assert "characters cut" in prompt


def test_sections_share_the_budget_fairly() -> None:
    parts = [Section("A", "a" * 30_000), Section("B", "b" * 30_000), Section("C", "c" * 100)]
    prompt = build_prompt("w", "comparer", "do it", "task", parts, budget=12_000)
    assert len(prompt) <= 12_000
    assert "c" * 100 in prompt
    assert 4_000 < prompt.count("a") < 7_000
    assert abs(prompt.count("a") - prompt.count("b")) < 50


def test_every_template_is_packaged_and_operators_can_override(tmp_path: Path) -> None:
    for name in TEMPLATE_NAMES:
        assert len(load_template(name, environ={})) > 100
    (tmp_path / "reviewer.md").write_text("Operator's own review rules.\n")
    env = {TEMPLATES_ENV: str(tmp_path)}
    assert load_template("reviewer", environ=env) == "Operator's own review rules."
    assert load_template("writer", environ=env) == load_template("writer", environ={})  # no override: packaged
    with pytest.raises(ValueError, match="unknown template"):
        load_template("../../etc/passwd", environ=env)


# ---- verdicts ---------------------------------------------------------------------------------

FENCED = """I looked at everything.

```json
{"decision": "request_changes",
 "findings": [{"severity": "High", "location": "app.py:3", "description": "shell injection",
               "suggestedFix": "use an argv list"},
              {"severity": "nit", "file": "README.md", "line": 2, "issue": "typo", "fix": "spell it"},
              {"severity": "medium"}],
 "rationale": "one blocker"}
```
Thanks!"""


def test_fenced_json_verdict_with_findings() -> None:
    v = parse_verdict(FENCED)
    assert v.decision == "request_changes"
    assert v.findings[0] == Finding(
        severity="high", location="app.py:3", description="shell injection", suggested_fix="use an argv list"
    )
    assert v.findings[1] == Finding(
        severity="info", location="README.md:2", description="typo", suggested_fix="spell it"
    )
    assert len(v.findings) == 2
    assert v.rationale.startswith("one blocker")
    assert "without a description" in v.rationale


@pytest.mark.parametrize(
    ("text", "decision"),
    [
        ('prose {"decision": "approve", "findings": []} more prose', "approve"),
        ("All good.\n\nVERDICT: APPROVE", "approve"),
        ("**Verdict:** request changes\nsee above", "request_changes"),
        ("> verdict = changes_requested", "request_changes"),
        ('```\n{"verdict": "LGTM"}\n```', "approve"),
        ("VERDICT: APPROVE\nVERDICT: REQUEST_CHANGES", "unparseable"),
        ("I think it is probably fine, mostly.", "unparseable"),
        ('```json\n{"decision": "maybe"}\n```', "unparseable"),
        ("```json\n{not json at all\n```\nno verdict line", "unparseable"),
    ],
)
def test_verdict_forms(text: str, decision: str) -> None:
    v = parse_verdict(text)
    assert v.decision == decision
    if decision == "unparseable":
        assert v.findings == []
        assert v.rationale  # says why


def test_the_last_verdict_block_wins() -> None:
    text = '```json\n{"decision": "approve"}\n```\nOn second thought:\n```json\n{"decision": "request_changes"}\n```'
    assert parse_verdict(text).decision == "request_changes"


def test_choice_names_a_candidate_or_nothing() -> None:
    ok = parse_choice('```json\n{"choice": "wb", "decision": "approve", "reasons": "tests pass"}\n```', ["wa", "wb"])
    assert ok.choice == "wb"
    assert ok.verdict.decision == "approve"
    assert ok.verdict.rationale == "chose wb: tests pass"
    bad = parse_choice('```json\n{"choice": "wz", "decision": "approve"}\n```', ["wa", "wb"])
    assert bad.choice is None
    assert "wz" in bad.note
    line = parse_choice("CHOICE: wa\nVERDICT: APPROVE", ["wa", "wb"])
    assert (line.choice, line.verdict.decision) == ("wa", "approve")
    merge = parse_choice(
        '{"choice": "merge", "base": "wa", "mergeInstructions": "take the tests from wb", "decision": "approve"}',
        ["wa", "wb"],
    )
    assert (merge.choice, merge.base, merge.merge_instructions) == ("merge", "wa", "take the tests from wb")
    assert parse_choice('{"choice": "merge", "decision": "approve"}', ["wa", "wb"]).choice is None


# ---- selection --------------------------------------------------------------------------------


def _worker(name: str, model: str = "mock", role: str = "writer", status: str = "idle") -> WorkerRecord:
    return WorkerRecord(
        name=name,
        model=model,  # type: ignore[arg-type]
        runtime_mode="mock",
        workdir="/tmp",
        role=role,
        status=status,  # type: ignore[arg-type]
        owner_agent_id="a",
        created_at=utcnow(),
    )


def test_handoff_picks_by_model_and_says_what_is_missing() -> None:
    strategy = get_strategy("codex_writes_gemini_reviews")
    cx, gm = _worker("cx", "codex_cli"), _worker("gm", "gemini_cli", role="reviewer")
    assert [w.name for w in strategy.select_workers([gm, _worker("m"), cx])] == ["cx", "gm"]
    with pytest.raises(UsageError) as info:
        strategy.select_workers([cx, _worker("m")])
    assert str(info.value).startswith(
        "codex_writes_gemini_reviews needs a writer (codex_cli) and a reviewer (gemini_cli); "
        "you gave: cx (codex_cli, writer), m (mock, writer)."
    )
    reverse = get_strategy("gemini_writes_codex_reviews").select_workers([cx, gm])
    assert [w.name for w in reverse] == ["gm", "cx"]


def test_roles_staff_the_parallel_plans() -> None:
    dual = get_strategy("parallel_dual_write_review")
    workers = [_worker("a"), _worker("b", status="busy"), _worker("c", "codex_cli"), _worker("r", role="reviewer")]
    # Idle first, and a second writer of another model when there is one.
    assert [w.name for w in dual.select_workers(workers)] == ["a", "c", "r"]
    with pytest.raises(UsageError, match=r"needs two writers .* you gave: a \(mock, writer\), r \(mock, reviewer\)"):
        dual.select_workers([workers[0], workers[3]])
    adjudicate = get_strategy("parallel_generate_adjudicate")
    assert [w.name for w in adjudicate.select_workers(workers)] == ["a", "c", "b", "r"]
    with pytest.raises(UsageError, match="you gave: no workers"):
        get_strategy("security_redteam_pass").select_workers([])
    with pytest.raises(UsageError, match="reviewer_first_plan needs a writer"):
        get_strategy("reviewer_first_plan").select_workers([_worker("a"), _worker("b")])


# ---- audit ------------------------------------------------------------------------------------


def test_audit_summary_reports_order_verdicts_files_and_failures() -> None:
    t0 = utcnow()
    steps = [
        Step(
            index=0,
            worker_name="wa",
            role="writer",
            runtime_mode="cli",
            status="completed",
            started_at=t0,
            duration_ms=1200,
            usage=Usage(input_tokens=10, output_tokens=5, total_tokens=15),
            files_changed=["shared.txt"],
            workspace=Workspace(
                workdir="/r/.mcp-orchestrator/worktrees/run/wa",
                branch="mcp-orchestrator/run/wa",
                base_commit="a" * 40,
                commit="b" * 40,
                diff_stat=" shared.txt | 1 +",
                isolated=True,
            ),
        ),
        Step(
            index=1,
            worker_name="wb",
            role="writer",
            runtime_mode="cli",
            status="failed",
            started_at=t0,
            failure_class="unavailable",
            output="unavailable: HTTP 500 | from the model",
            exit_code=1,
        ),
        Step(
            index=2,
            worker_name="rv",
            role="reviewer",
            runtime_mode="cli",
            status="completed",
            started_at=t0 + timedelta(seconds=2),
            verdict=Verdict(
                decision="request_changes",
                findings=[Finding(severity="high", location="shared.txt:2", description="bad", suggested_fix="fix")],
                rationale="chose wa: it works",
            ),
        ),
    ]
    run = Run(
        run_id="run_0123456789ab01234567",
        status="completed",
        strategy="parallel_dual_write_review",
        task="do | it",
        agent_id="a",
        created_at=t0,
        started_at=t0,
        ended_at=t0 + timedelta(seconds=3),
        steps=steps,
        summary="continuing with wa: wb failed",
    )
    md = audit_summary(run)
    assert md.startswith("# Run run_0123456789ab01234567: parallel_dual_write_review, completed")
    assert "| 2 | rv | reviewer | cli | completed | +2000 ms |" in md
    assert "| 1 | wb | writer | cli | failed |" in md
    assert "Tokens: 10 in, 5 out, 15 total over 1 step(s)." in md
    assert "- **high** `shared.txt:2`: bad Suggested fix: fix" in md
    assert "branch `mcp-orchestrator/run/wa`, base aaaaaaaaaaaa, commit bbbbbbbbbbbb" in md
    assert "files changed: `shared.txt`" in md
    assert "- step 1, wb (writer): failed, unavailable: HTTP 500 \\| from the model, exit code 1" in md
    assert "continuing with wa: wb failed" in md
    assert "wall 3000 ms" in md


def test_a_lone_survivor_needs_no_choice_but_a_verdict() -> None:
    alone = parse_choice('```json\n{"decision": "approve", "rationale": "fine"}\n```', ["wa"])
    assert alone.choice == "wa"
    assert alone.verdict.rationale == "reviewed the only candidate, wa: fine"
    assert parse_choice("no verdict at all", ["wa"]).choice is None
    assert parse_choice('{"decision": "approve"}', ["wa", "wb"]).choice is None
