"""Compact result views: what a calling model acts on, built from the full records.

A run's view carries its status, the final answer's excerpt, each step's outcome, the failure and
the next action; routing and attempts only for failed steps. Readiness and runtimes summaries put
what is broken first. The full records stay one ``detail: "full"`` (or ``runs://{id}``) away.
"""

from __future__ import annotations

import re

from mcp_orchestrator.contracts import (
    ProbeBrief,
    ReadinessSummary,
    Run,
    RuntimeBrief,
    RuntimeInfo,
    RuntimeSummary,
    RunView,
    Step,
    StepView,
)
from mcp_orchestrator.readiness import ReadinessReport

__all__ = ["ANSWER_CHARS", "FAILED_OUTPUT_CHARS", "answer_step", "readiness_summary", "run_view", "runtime_summary"]

ANSWER_CHARS = 2000
FAILED_OUTPUT_CHARS = 300

_CHOSEN = re.compile(r"^chosen: (\S+) ", re.MULTILINE)  # the plan summary's line for a picked candidate

_NEXT_ON_FAILURE: dict[str, str] = {
    "timeout": "A step ran out of time: raise timeoutSeconds or split the task.",
    "stalled": "A worker went silent: raise its stallSeconds, or check its CLI with readiness.",
    "auth": "The worker's runtime has no valid login or key: readiness says how to fix it.",
    "rate_limited": "The vendor rate-limited the worker: dispatch again later or use another worker.",
    "unavailable": "The worker's runtime cannot run here: runtimes says how to fix it.",
    "bad_output": "The worker's answer was unusable: read the failed step's output, then dispatch again.",
    "process_error": "The worker's process failed: read the failed step's output; readiness checks the CLI.",
    "interrupted": "The server stopped during the run: dispatch it again.",
    "deadline_exceeded": "The run passed its deadline: raise deadlineSeconds or split the task.",
    "budget_exceeded": "A step would exceed the run's budget: raise budget or shorten the task.",
    "internal": "An internal error: diag looks for the cause.",
}


def _cut(text: str, limit: int, more: str) -> tuple[str, bool]:
    text = text.strip()
    if len(text) <= limit:
        return text, False
    return f"{text[:limit].rstrip()}…[{len(text) - limit} more characters: {more}]", True


def answer_step(run: Run) -> Step | None:
    """The step whose output is the run's answer: the chosen (else the last) completed writer, else the last step."""
    done = [s for s in run.steps if s.status == "completed" and s.output.strip()]
    writers = [s for s in done if s.role == "writer"]
    chosen = _CHOSEN.search(run.summary)
    if chosen is not None:
        picked = [s for s in writers if s.worker_name == chosen.group(1)]
        writers = picked or writers
    pool = writers or done
    return pool[-1] if pool else None


def _step_view(run_id: str, step: Step) -> StepView:
    failed = step.status == "failed"
    output = ""
    if failed:
        output, _ = _cut(step.output, FAILED_OUTPUT_CHARS, f"runs://{run_id}/steps/{step.index}/output")
    return StepView(
        worker_name=step.worker_name,
        role=step.role,
        status=step.status,
        failure_class=step.failure_class,
        verdict=step.verdict.decision if step.verdict is not None else None,
        output=output,
        attempts=step.attempts if failed and len(step.attempts) > 1 else [],
        routing=step.routing if failed else None,
    )


def _next(run: Run, answer: Step | None, cut: bool) -> str:
    if not run.terminal:
        return f"The run is {run.status}: get_run with waitSeconds waits for its end; cancel_run stops it."
    if run.status == "failed":
        hint = _NEXT_ON_FAILURE.get(run.error.failure_class if run.error else "internal", "")
        failed = next((s for s in run.steps if s.status == "failed"), None)
        where = f" Its output: runs://{run.run_id}/steps/{failed.index}/output." if failed and "output" in hint else ""
        return hint + where
    if cut and answer is not None:
        return f"The whole answer: runs://{run.run_id}/steps/{answer.index}/output."
    return ""


def run_view(run: Run) -> RunView:
    """The compact view of ``run``."""
    step = answer_step(run)
    answer, cut = ("", False)
    if step is not None:
        answer, cut = _cut(step.output, ANSWER_CHARS, f"runs://{run.run_id}/steps/{step.index}/output")
    return RunView(
        run_id=run.run_id,
        status=run.status,
        strategy=run.strategy,
        answer=answer,
        steps=[_step_view(run.run_id, s) for s in run.steps],
        error=run.error,
        next=_next(run, step, cut),
        notice=run.notice,
    )


_PROBE_ORDER = {"fail": 0, "warn": 1, "ok": 2}


def readiness_summary(report: ReadinessReport) -> ReadinessSummary:
    """The report in short: failing, then warning probes with their fix; passing probes by name."""
    issues = sorted((p for p in report.probes if p.status != "ok"), key=lambda p: _PROBE_ORDER[p.status])
    return ReadinessSummary(
        status=report.status,
        counts=report.counts,
        probes=[
            ProbeBrief(probe=p.probe, status=p.status, summary=p.summary, remediation=p.remediation) for p in issues
        ],
        ok=[p.probe for p in report.probes if p.status == "ok"],
    )


def runtime_summary(runtimes: list[RuntimeInfo]) -> RuntimeSummary:
    """Runtimes in short: unavailable first, then ready ones with a remark, then the rest; no capabilities."""

    def rank(r: RuntimeInfo) -> int:
        return 0 if r.status == "unavailable" else 1 if r.detail else 2

    return RuntimeSummary(
        runtimes=[
            RuntimeBrief(mode=r.mode, model=r.model, status=r.status, version=r.version, detail=r.detail)
            for r in sorted(runtimes, key=rank)
        ]
    )
