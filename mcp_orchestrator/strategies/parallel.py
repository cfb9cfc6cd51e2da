"""``parallel_dual_write_review``: two writers at once, each isolated, then one review comparing them.

When one writer fails the review goes on with the other (the run says so and completes); when both
fail there is nothing to review. The reviewer chooses the result to keep; with ``applyResult`` an
approved choice is applied to its writer's main workdir.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from mcp_orchestrator.contracts import WorkerRecord
from mcp_orchestrator.strategies.base import Strategy, StrategyContext, StrategyOptions, StrategyResult, run_options
from mcp_orchestrator.strategies.common import Ledger, reason, review
from mcp_orchestrator.strategies.pool import Candidate, apply_chosen, candidate_sections, write_all, writer_pool
from mcp_orchestrator.strategies.selection import Picker, is_reviewer, is_writer, missing
from mcp_orchestrator.strategies.verdicts import Choice

__all__ = ["ParallelDualWriteReview", "continue_with_survivors", "settle_choice", "write_then_judge"]


def continue_with_survivors(pool: list[Candidate], ledger: Ledger) -> list[Candidate]:
    """The writers that completed; each failed sibling is recorded and recovered from when any survived."""
    survivors = [c for c in pool if c.ok]
    names = ", ".join(c.worker.name for c in survivors)
    for c in pool:
        if c.ok or c.step is None:
            continue
        if survivors:
            ledger.recovered.add(c.step.index)
            ledger.add(f"continuing with {names}: {c.worker.name} {c.step.status} ({reason(c.step)})")
    return survivors


async def settle_choice(
    choice: Choice | None, survivors: list[Candidate], ledger: Ledger, options: StrategyOptions
) -> Candidate | None:
    """Record the reader's choice and apply it when asked and approved; the chosen candidate, if any."""
    chosen = next((c for c in survivors if choice is not None and c.worker.name == choice.choice), None)
    if chosen is None:
        ledger.add(f"no result chosen: {choice.note if choice is not None else 'the reader did not complete'}")
        if options.apply_result:
            ledger.fail("bad_output", "applyResult: no result was chosen, nothing was applied")
        return None
    ledger.add(f"chosen: {chosen.worker.name} ({chosen.worker.model})")
    assert choice is not None
    if choice.verdict.decision != "approve":
        if options.apply_result:
            ledger.add(f"not applied: the chosen result was judged {choice.verdict.decision}")
        return chosen
    await apply_chosen(chosen, ledger, options)
    return chosen


Merge = Callable[[StrategyContext, Choice, list[Candidate], Ledger], Awaitable[Choice | None]]


async def write_then_judge(
    ctx: StrategyContext, writers: list[WorkerRecord], judge: WorkerRecord, phase: str, merge: Merge | None = None
) -> StrategyResult:
    """Every writer at once, each isolated; then ``judge`` (read-only, ``phase``) chooses among the survivors.

    A choice of ``merge`` goes to ``merge`` when the plan has one. The chosen result is applied on request.
    """
    ledger = Ledger()
    options = run_options(ctx)
    async with writer_pool(ctx, writers, ledger, options) as pool:
        ledger.lines.extend((await write_all(ctx, pool, "writer")).lines)
        survivors = continue_with_survivors(pool, ledger)
        if not survivors:
            ledger.add(f"the {phase} step is skipped: every writer failed")
            return ledger.result()
        names = [c.worker.name for c in survivors]
        step, choice = await review(ctx, judge, phase, candidate_sections(pool), ledger, candidates=names)
        if step.status != "completed":
            return ledger.result()
        if choice is not None and choice.choice == "merge":
            if merge is None:
                choice = Choice(None, choice.verdict, note="a merge is not part of this strategy")
            else:
                choice = await merge(ctx, choice, survivors, ledger)
        await settle_choice(choice, survivors, ledger, options)
    return ledger.result()


class ParallelDualWriteReview(Strategy):
    """Two writers in parallel, then a review comparing them."""

    name = "parallel_dual_write_review"

    def select_workers(self, candidates: list[WorkerRecord]) -> list[WorkerRecord]:
        """Two writers (of different models when there is a choice) and a reviewer."""
        pick = Picker(candidates)
        reviewer = pick.take(is_reviewer)
        first = pick.take(is_writer)
        second = pick.take(is_writer, prefer=lambda w: first is not None and w.model != first.model)
        if reviewer is None or first is None or second is None:
            needs = "two writers (workers with a writing role) and a reviewer (a read-only role such as reviewer)"
            raise missing(self.name, needs, candidates)
        return [first, second, reviewer]

    async def run_plan(self, ctx: StrategyContext, workers: list[WorkerRecord]) -> StrategyResult:
        """Both writers at once in their own worktrees, then the comparing review."""
        *writers, reviewer = workers
        return await write_then_judge(ctx, writers, reviewer, "comparer")
