"""The auditable summary of a run, as Markdown: who did what in which order, and how it ended.

Built from the stored run alone (never from memory), so it reads the same from any process and
after a restart: the steps in order with their start offsets, durations, tokens and fallbacks;
each verdict with its findings; each writer's workspace and the files it changed; every failure
with its class and message; the plan's own summary.
"""

from __future__ import annotations

from datetime import datetime

from mcp_orchestrator.contracts import Run, Step, Verdict
from mcp_orchestrator.strategies.common import reason

__all__ = ["audit_summary"]

_CELL = 80


def _cell(text: str, limit: int = _CELL) -> str:
    """Text safe for one Markdown table cell."""
    flat = " ".join(text.split()).replace("|", "\\|")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _ms(value: int | None) -> str:
    return "-" if value is None else f"{value} ms"


def _offset(run: Run, at: datetime | None) -> str:
    base = run.started_at or run.created_at
    if at is None:
        return "-"
    return f"+{int((at - base).total_seconds() * 1000)} ms"


def _tokens(step: Step) -> str:
    if step.usage is None:
        return "-"
    return f"{step.usage.input_tokens}/{step.usage.output_tokens}"


def _fallback(step: Step) -> str:
    if step.fallback_from is None:
        return "-"
    fb = step.fallback_from
    return _cell(f"{fb.runtime_mode} -> {step.runtime_mode} ({fb.failure_class})", 40)


def _steps_table(run: Run) -> list[str]:
    lines = [
        "| # | worker | role | runtime | status | started | duration | tokens in/out | fallback | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in run.steps:
        verdict = s.verdict.decision if s.verdict is not None else "-"
        lines.append(
            f"| {s.index} | {_cell(s.worker_name, 40)} | {_cell(s.role, 20)} | {s.runtime_mode} | {s.status} | "
            f"{_offset(run, s.started_at)} | {_ms(s.duration_ms)} | {_tokens(s)} | {_fallback(s)} | {verdict} |"
        )
    return lines


def _verdict(step: Step, verdict: Verdict) -> list[str]:
    lines = [f"### Step {step.index}: {step.worker_name} ({step.role}) - {verdict.decision}", ""]
    if verdict.rationale:
        lines += [verdict.rationale.strip(), ""]
    if not verdict.findings:
        lines.append("No findings." if verdict.decision != "unparseable" else "No structured findings.")
    for f in verdict.findings:
        where = f" `{_cell(f.location, 120)}`" if f.location else ""
        fix = f" Suggested fix: {f.suggested_fix.strip()}" if f.suggested_fix.strip() else ""
        lines.append(f"- **{f.severity}**{where}: {f.description.strip()}{fix}")
    return [*lines, ""]


def _workspace(step: Step) -> list[str]:
    ws = step.workspace
    lines = [f"- step {step.index}, {step.worker_name} ({step.role}, {step.status}):"]
    if ws is not None:
        if ws.isolated:
            commit = ws.commit[:12] if ws.commit else "no commit (no changes)"
            base = ws.base_commit[:12] if ws.base_commit else "?"
            lines.append(f"  isolated worktree `{ws.workdir}`, branch `{ws.branch}`, base {base}, commit {commit}")
        else:
            lines.append(f"  worked in `{ws.workdir}` itself (not isolated)")
        if ws.diff_stat:
            lines += ["  ```", *(f"  {line}" for line in ws.diff_stat.splitlines()[:40]), "  ```"]
    files = ", ".join(f"`{f}`" for f in step.files_changed[:50]) or "none reported"
    more = f" and {len(step.files_changed) - 50} more" if len(step.files_changed) > 50 else ""
    lines.append(f"  files changed: {files}{more}")
    return lines


def audit_summary(run: Run) -> str:
    """The run as an auditable Markdown report."""
    wall = "-"
    if run.started_at is not None and run.ended_at is not None:
        wall = f"{int((run.ended_at - run.started_at).total_seconds() * 1000)} ms"
    task = run.task if len(run.task) <= 500 else run.task[:499] + "…"
    out = [
        f"# Run {run.run_id}: {run.strategy}, {run.status}",
        "",
        f"- agent: {run.agent_id}; priority: {run.priority}",
        f"- created {run.created_at.isoformat()}; started "
        f"{run.started_at.isoformat() if run.started_at else '-'}; ended "
        f"{run.ended_at.isoformat() if run.ended_at else '-'}; wall {wall}",
        f"- task: {_cell(task, 500)}",
    ]
    if run.error is not None:
        out.append(f"- error: {run.error.failure_class}: {run.error.message}")
    out += ["", "## Summary", "", run.summary.strip() or "(none yet)", "", "## Steps, in order", ""]
    out += _steps_table(run)
    done = [s for s in run.steps if s.usage is not None]
    totals = (
        sum(s.usage.input_tokens for s in done if s.usage),
        sum(s.usage.output_tokens for s in done if s.usage),
        sum(s.usage.total_tokens for s in done if s.usage),
    )
    out += ["", f"Tokens: {totals[0]} in, {totals[1]} out, {totals[2]} total over {len(done)} step(s).", ""]
    reviewed = [s for s in run.steps if s.verdict is not None]
    if reviewed:
        out += ["## Verdicts", ""]
        for s in reviewed:
            assert s.verdict is not None
            out += _verdict(s, s.verdict)
    writers = [s for s in run.steps if s.workspace is not None or s.files_changed]
    if writers:
        out += ["## Writers' workspaces and files", ""]
        for s in writers:
            out += _workspace(s)
        out.append("")
    fallbacks = [s for s in run.steps if s.fallback_from is not None]
    if fallbacks:
        out += ["## Runtime fallbacks", ""]
        for s in fallbacks:
            assert s.fallback_from is not None
            fb = s.fallback_from
            out.append(
                f"- step {s.index}, {s.worker_name}: {fb.runtime_mode} failed ({fb.failure_class}: "
                f"{_cell(fb.message, 200)}), then ran on {s.runtime_mode}"
            )
        out.append("")
    failed = [s for s in run.steps if s.status in ("failed", "canceled")]
    out += ["## Failures", ""]
    if not failed:
        out.append("None.")
    for s in failed:
        code = f", exit code {s.exit_code}" if s.exit_code is not None else ""
        out.append(f"- step {s.index}, {s.worker_name} ({s.role}): {s.status}, {_cell(reason(s), 300)}{code}")
    return "\n".join(out).rstrip() + "\n"
