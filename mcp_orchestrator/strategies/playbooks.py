"""Playbooks: longer plans built from the same steps.

``reviewer_first_plan``: the reviewer plans (read-only), the writer implements the plan, the
reviewer verifies the result against its plan. A failed writer hands over as in the handoffs.

``parallel_generate_adjudicate``: every writer does the task at once, each isolated; an adjudicator
(read-only) chooses the best result, with reasons, or asks for a merge, which the base writer then
does in its own worktree with the others' diffs in view.
"""

from __future__ import annotations

from pathlib import Path

from mcp_orchestrator.contracts import WorkerRecord
from mcp_orchestrator.strategies.base import Strategy, StrategyContext, StrategyResult
from mcp_orchestrator.strategies.common import Ledger, review, run_phase, workdir_sections, write_with_fallback
from mcp_orchestrator.strategies.parallel import write_then_judge
from mcp_orchestrator.strategies.pool import Candidate, candidate_sections, record
from mcp_orchestrator.strategies.prompts import Section
from mcp_orchestrator.strategies.selection import Picker, is_reviewer, is_writer, missing
from mcp_orchestrator.strategies.verdicts import Choice

__all__ = ["ParallelGenerateAdjudicate", "ReviewerFirstPlan"]


class ReviewerFirstPlan(Strategy):
    """The reviewer plans, the writer implements the plan, the reviewer verifies."""

    name = "reviewer_first_plan"

    def select_workers(self, candidates: list[WorkerRecord]) -> list[WorkerRecord]:
        """A writer and a reviewer."""
        pick = Picker(candidates)
        reviewer = pick.take(is_reviewer)
        writer = pick.take(is_writer)
        if writer is None or reviewer is None:
            needs = "a writer (a writing role) and a reviewer (a read-only role such as reviewer)"
            raise missing(self.name, needs, candidates)
        return [writer, reviewer]

    async def run_plan(self, ctx: StrategyContext, workers: list[WorkerRecord]) -> StrategyResult:
        """Plan, implement, verify; each step sees the earlier ones' outputs."""
        writer, reviewer = workers
        ledger = Ledger()
        workdir = Path(writer.workdir)
        plan = await run_phase(ctx, reviewer, "planner", await workdir_sections(workdir, ledger), workdir=workdir)
        ledger.step(plan, "planner")
        if plan.status != "completed":
            ledger.add("implementation skipped: there is no plan")
            return ledger.result()
        plan_section = Section(f"Plan by {reviewer.name} ({reviewer.model})", plan.output or "(empty plan)")
        step, who = await write_with_fallback(ctx, writer, reviewer, "implementer", [plan_section], ledger)
        if step.status != "completed":
            ledger.add("verification skipped: no writer completed the plan")
            return ledger.result()
        if who is reviewer:
            ledger.add(f"self-verification: {reviewer.name} implemented its own plan as the fallback writer")
        sections = [
            Section("Your plan", plan.output or "(empty plan)"),
            Section(f"Report of the implementer {who.name} ({who.model})", step.output or "(no report)"),
            *await workdir_sections(workdir, ledger),
        ]
        await review(ctx, reviewer, "verifier", sections, ledger, workdir=workdir)
        return ledger.result()


class ParallelGenerateAdjudicate(Strategy):
    """N writers in parallel; an adjudicator chooses one result or has them merged, with reasons."""

    name = "parallel_generate_adjudicate"

    def select_workers(self, candidates: list[WorkerRecord]) -> list[WorkerRecord]:
        """Every writer given (two at least, eight at most) and one adjudicator (a read-only worker)."""
        pick = Picker(candidates)
        adjudicator = pick.take(is_reviewer)
        writers = pick.take_all(is_writer)
        if adjudicator is None or len(writers) < 2:
            needs = "two or more writers (workers with a writing role) and an adjudicator (a read-only role)"
            raise missing(self.name, needs, candidates)
        return [*writers, adjudicator]

    async def run_plan(self, ctx: StrategyContext, workers: list[WorkerRecord]) -> StrategyResult:
        """All writers at once, the adjudication, the merge when asked for, the apply when requested."""
        *writers, adjudicator = workers
        return await write_then_judge(ctx, writers, adjudicator, "adjudicator", merge=_merge)


async def _merge(ctx: StrategyContext, choice: Choice, survivors: list[Candidate], ledger: Ledger) -> Choice | None:
    """The base writer merges the others' results into its own, following the adjudicator's instructions."""
    base = next(c for c in survivors if c.worker.name == choice.base)
    ledger.add(f"merge: {base.worker.name} merges the other results into its own")
    others = [c for c in survivors if c is not base]
    sections = [Section("Merge instructions", choice.merge_instructions or "(none given: use your judgement)")]
    sections += candidate_sections(others)
    workdir = base.iso.workdir if base.iso is not None else None
    base.step = await run_phase(ctx, base.worker, "merger", sections, workdir=workdir)
    ledger.step(base.step, "merger")
    await record(ctx, base, ledger)
    if not base.ok:
        return Choice(None, choice.verdict, note=f"the merge by {base.worker.name} {base.step.status}")
    return Choice(base.worker.name, choice.verdict)
