"""Sequential plans: a writer hands its work to a reviewer, and a read-only red-team pass.

``codex_writes_gemini_reviews`` and ``gemini_writes_codex_reviews`` pick their workers by model;
the writer works in its own workdir, then the reviewer reads the writer's report and the pending
change there and gives a verdict. When the writer fails and its ``fallbackPolicy`` is ``on_error``,
the reviewer's model takes the writer role (and then reviews its own work, which the summary says).

``security_redteam_pass`` is one read-only step that attacks the work pending in the workdir (or
the workdir as it is) and returns structured findings.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from mcp_orchestrator.contracts import ModelName, WorkerRecord
from mcp_orchestrator.strategies.base import Strategy, StrategyContext, StrategyResult
from mcp_orchestrator.strategies.common import Ledger, review, workdir_sections, write_with_fallback
from mcp_orchestrator.strategies.prompts import Section
from mcp_orchestrator.strategies.selection import Picker, is_reviewer, is_writer, missing, of_model

__all__ = ["CodexWritesGeminiReviews", "GeminiWritesCodexReviews", "SecurityRedteamPass", "WriterReviewerHandoff"]


class WriterReviewerHandoff(Strategy):
    """A writer of one model, then a reviewer of another, chosen by model."""

    writer_model: ClassVar[ModelName]
    reviewer_model: ClassVar[ModelName]

    def select_workers(self, candidates: list[WorkerRecord]) -> list[WorkerRecord]:
        """The writer (``writer_model``, a writing role preferred) and the reviewer (``reviewer_model``)."""
        pick = Picker(candidates)
        writer = pick.take(of_model(self.writer_model), prefer=is_writer)
        reviewer = pick.take(of_model(self.reviewer_model), prefer=is_reviewer)
        if writer is None or reviewer is None:
            needs = f"a writer ({self.writer_model}) and a reviewer ({self.reviewer_model})"
            raise missing(self.name, needs, candidates)
        return [writer, reviewer]

    async def run_plan(self, ctx: StrategyContext, workers: list[WorkerRecord]) -> StrategyResult:
        """Write (with the fallback), then review the result in the writer's workdir."""
        writer, reviewer = workers
        ledger = Ledger()
        step, who = await write_with_fallback(ctx, writer, reviewer, "writer", [], ledger)
        if step.status != "completed":
            ledger.add("review skipped: no writer completed the task")
            return ledger.result()
        if who is reviewer:
            ledger.add(f"self-review: {reviewer.name} reviews work it wrote itself as the fallback writer")
        workdir = Path(writer.workdir)
        sections = [Section(f"Report of the writer {who.name} ({who.model})", step.output or "(no report)")]
        sections += await workdir_sections(workdir, ledger)
        await review(ctx, reviewer, "reviewer", sections, ledger, workdir=workdir)
        return ledger.result()


class CodexWritesGeminiReviews(WriterReviewerHandoff):
    """codex writes, gemini reviews."""

    name = "codex_writes_gemini_reviews"
    writer_model = "codex_cli"
    reviewer_model = "gemini_cli"


class GeminiWritesCodexReviews(WriterReviewerHandoff):
    """gemini writes, codex reviews."""

    name = "gemini_writes_codex_reviews"
    writer_model = "gemini_cli"
    reviewer_model = "codex_cli"


class SecurityRedteamPass(Strategy):
    """One read-only red-team review with structured findings."""

    name = "security_redteam_pass"

    def select_workers(self, candidates: list[WorkerRecord]) -> list[WorkerRecord]:
        """One worker, a read-only one preferred (the step runs read-only whatever the worker's own role)."""
        worker = Picker(candidates).take(prefer=is_reviewer)
        if worker is None:
            raise missing(self.name, "one worker (a reviewer, ideally)", candidates)
        return [worker]

    async def run_plan(self, ctx: StrategyContext, workers: list[WorkerRecord]) -> StrategyResult:
        """Attack the pending change in the worker's workdir, or the workdir as it is."""
        (worker,) = workers
        ledger = Ledger()
        sections = await workdir_sections(Path(worker.workdir), ledger)
        step, _ = await review(ctx, worker, "redteam", sections, ledger)
        if step.verdict is not None and step.verdict.decision == "unparseable":
            ledger.add("no structured findings: the red-team answer could not be parsed (see the step's output)")
        return ledger.result()
