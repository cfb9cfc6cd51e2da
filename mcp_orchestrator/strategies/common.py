"""What the multi-step plans share: phases and their roles, prompts, verdicts, the writer's fallback, the ledger.

A *phase* is what a step does in a plan (``writer``, ``comparer``, ``redteam``, ...); it names the
step's instructions template and maps to the role the step runs with, which sets its permissions:
every phase that only reads runs under a read-only role of the CLI templates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mcp_orchestrator.contracts import FailureClass, Step, Verdict, WorkerRecord, Workspace
from mcp_orchestrator.runtimes.cli.templates import is_read_only
from mcp_orchestrator.strategies.base import StrategyContext, StrategyResult
from mcp_orchestrator.strategies.prompts import Section, build_prompt, load_template
from mcp_orchestrator.strategies.verdicts import Choice, parse_choice, parse_verdict
from mcp_orchestrator.strategies.workspace import GitError, pending_change

__all__ = [
    "PHASE_ROLE",
    "READ_ONLY_PHASES",
    "Ledger",
    "reason",
    "review",
    "run_phase",
    "verdict_line",
    "workdir_sections",
    "write_with_fallback",
]

PHASE_ROLE: dict[str, str] = {
    "writer": "writer",
    "implementer": "writer",
    "merger": "writer",
    "reviewer": "reviewer",
    "comparer": "reviewer",
    "verifier": "reviewer",
    "adjudicator": "reviewer",
    "planner": "planner",
    "redteam": "auditor",
}
READ_ONLY_PHASES = frozenset({"reviewer", "comparer", "verifier", "adjudicator", "planner", "redteam"})
if not all(is_read_only(PHASE_ROLE[p]) for p in READ_ONLY_PHASES):  # pragma: no cover - a broken invariant
    raise RuntimeError("a read-only phase maps to a role the CLI templates let write")

# A writer that was canceled, or ran out of the run's time, is not worth a second model's attempt.
NO_FALLBACK: frozenset[str] = frozenset({"canceled", "deadline_exceeded"})


def reason(step: Step) -> str:
    """Why a step did not complete: its recorded ``class: message`` line."""
    first = step.output.split("\n", 1)[0].strip() if step.output else ""
    return first[:300] or (step.failure_class or step.status)


def step_line(step: Step, phase: str) -> str:
    """One summary line about a step."""
    who = f"step {step.index} {step.worker_name} ({phase})"
    if step.status == "completed":
        return f"{who}: completed in {step.duration_ms} ms"
    return f"{who}: {step.status} - {reason(step)}"


def verdict_line(verdict: Verdict) -> str:
    """The verdict in one line: the decision, the findings by severity, the rationale's start."""
    counts: dict[str, int] = {}
    for f in verdict.findings:
        counts[f.severity] = counts.get(f.severity, 0) + 1
    order = ("critical", "high", "medium", "low", "info")
    found = ", ".join(f"{counts[s]} {s}" for s in order if s in counts) or "no findings"
    why = verdict.rationale.replace("\n", " ")[:200]
    return f"verdict: {verdict.decision} ({found}){' - ' + why if why else ''}"


@dataclass
class Ledger:
    """What a plan did, line by line, plus the failures it recovered from and its own failure."""

    lines: list[str] = field(default_factory=list)
    recovered: set[int] = field(default_factory=set)
    failure: tuple[FailureClass, str] | None = None

    def add(self, line: str) -> None:
        """Record one line of the summary."""
        self.lines.append(line)

    def step(self, step: Step, phase: str) -> None:
        """Record how a step ended."""
        self.add(step_line(step, phase))

    def fail(self, failure_class: FailureClass, message: str) -> None:
        """Record the plan's own failure (the first one counts)."""
        if self.failure is None:
            self.failure = (failure_class, message)
        self.add(f"failed: {message}")

    def result(self) -> StrategyResult:
        """The plan's result."""
        return StrategyResult("\n".join(self.lines), frozenset(self.recovered), self.failure)


async def run_phase(
    ctx: StrategyContext, worker: WorkerRecord, phase: str, sections: list[Section], *, workdir: Path | None = None
) -> Step:
    """Run one step of ``phase``: its template's instructions, the task and ``sections`` as the prompt."""
    prompt = build_prompt(worker.name, phase, load_template(phase), ctx.task, sections)
    return await ctx.run_step(worker, role=PHASE_ROLE[phase], prompt=prompt, workdir=workdir)


async def review(
    ctx: StrategyContext,
    worker: WorkerRecord,
    phase: str,
    sections: list[Section],
    ledger: Ledger,
    *,
    candidates: list[str] | None = None,
    workdir: Path | None = None,
) -> tuple[Step, Choice | None]:
    """A read-only step whose answer carries a verdict (and, given ``candidates``, a choice among them)."""
    step = await run_phase(ctx, worker, phase, sections, workdir=workdir)
    ledger.step(step, phase)
    if step.status != "completed":
        return step, None
    choice = parse_choice(step.output, candidates) if candidates is not None else None
    verdict = choice.verdict if choice is not None else parse_verdict(step.output)
    step = step.model_copy(update={"verdict": verdict})
    await ctx.save_step(step)
    ledger.add(verdict_line(verdict))
    return step, choice


async def write_with_fallback(
    ctx: StrategyContext,
    writer: WorkerRecord,
    other: WorkerRecord | None,
    phase: str,
    sections: list[Section],
    ledger: Ledger,
) -> tuple[Step, WorkerRecord]:
    """A sequential writer's step; when it fails and its ``fallbackPolicy`` is ``on_error``, ``other`` writes.

    The fallback writes in the first writer's workdir, where any partial change of the failed attempt is.
    """
    workdir = Path(writer.workdir)
    step = await _write(ctx, writer, phase, sections, workdir)
    ledger.step(step, phase)
    if step.status == "completed" or other is None or step.failure_class in NO_FALLBACK:
        return step, writer
    if writer.fallback_policy != "on_error":
        ledger.add(f"no fallback: {writer.name}'s fallbackPolicy is {writer.fallback_policy}")
        return step, writer
    ledger.add(
        f"fallback: {other.name} ({other.model}) takes the {phase} role after {writer.name} ({writer.model}) "
        f"{step.status} ({step.failure_class}); fallbackPolicy on_error"
    )
    earlier = Section(
        "Earlier attempt",
        f"{writer.name} ({writer.model}) was given this task first and {step.status}: {reason(step)}. "
        "Any partial changes it made are still in the working directory.",
    )
    second = await _write(ctx, other, phase, [*sections, earlier], workdir)
    ledger.step(second, phase)
    if second.status == "completed":
        ledger.recovered.add(step.index)
    return second, other


async def _write(
    ctx: StrategyContext, worker: WorkerRecord, phase: str, sections: list[Section], workdir: Path
) -> Step:
    """A writer's step in ``workdir``, its workspace recorded (not isolated: it writes there itself)."""
    step = await run_phase(ctx, worker, phase, sections, workdir=workdir)
    step = step.model_copy(update={"workspace": Workspace(workdir=str(workdir), isolated=False)})
    await ctx.save_step(step)
    return step


async def workdir_sections(workdir: Path, ledger: Ledger | None = None) -> list[Section]:
    """The work pending in ``workdir`` for a reader: its uncommitted git change, or why there is none to show."""
    try:
        change = await pending_change(workdir)
    except GitError as e:
        if ledger is not None:
            ledger.add(f"could not read the pending change in {workdir}: {e}")
        return []
    if change is None:
        return [Section("Working directory", f"{workdir} is not a git repository: read the files as they are.")]
    if not change:
        return [Section("Working directory", f"{workdir} has no uncommitted changes: review it as it is.")]
    return [Section(f"Uncommitted changes in {workdir}", change)]
